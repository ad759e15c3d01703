"""Highlight matched query tokens in the original text: `<mark>`..`</mark>` around them, HTML-escaped (pure).

The index stores analyzed token streams, so FTS5's own snippet() cannot map back to the original text; instead
the original text is re-analyzed with offsets and the query's phrases are found in it.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence

from index.analysis import MAX_TOKEN_LENGTH, MID_CHARS, analyze_spans
from index.embedded.compile import TextMatch

HIGHLIGHT_FIELDS = ("ti", "ab", "cl")
SNIPPET_CHARS = 200
MAX_SNIPPETS = 3


_CANDIDATE = re.compile(rf"\w+(?:[{re.escape(MID_CHARS)}]\w+)*")  # a span tokens lie inside (as in analyze)
_MID = re.compile(f"[{re.escape(MID_CHARS)}]")


def token_spans(text: str) -> list[tuple[str, int, int]]:
    """analyze_spans(text), with analyze()'s fast path for ASCII text: only word runs joined by mid punctuation
    (`u.s.a`, `1,000.5`) or over-long runs go through the exact rules."""
    if not text.isascii():
        return analyze_spans(text)
    out: list[tuple[str, int, int]] = []
    for m in _CANDIDATE.finditer(text):
        start, end = m.span()
        if end - start > MAX_TOKEN_LENGTH or _MID.search(text, start, end):
            out.extend((tok, start + s, start + e) for tok, s, e in analyze_spans(m.group()))
        else:
            out.append((m.group().lower(), start, end))
    return out


class AnalyzedText:
    """A text's tokens with offsets and where each token occurs: analyzed once, matched against many queries."""

    def __init__(self, text: str) -> None:
        self.spans = token_spans(text)
        self.tokens = [t for t, _, _ in self.spans]
        self.where: dict[str, list[int]] = {}
        for i, tok in enumerate(self.tokens):
            self.where.setdefault(tok, []).append(i)

    def match_spans(self, matches: Iterable[TextMatch]) -> list[tuple[int, int]]:
        """Merged [start, end) character ranges where one of the phrases occurs."""
        found: list[tuple[int, int]] = []
        for m in matches:
            n = len(m.tokens)
            if m.prefix and n == 1:
                starts = [i for tok, at in self.where.items() if tok.startswith(m.tokens[0]) for i in at]
            else:
                starts = self.where.get(m.tokens[0], [])
            for i in starts:
                if i + n <= len(self.tokens) and _phrase_at(self.tokens, i, m):
                    found.append((self.spans[i][1], self.spans[i + n - 1][2]))
        return _merge(found)


def match_spans(text: str, matches: Iterable[TextMatch], field: str) -> list[tuple[int, int]]:
    """Merged [start, end) character ranges of `text` where a query phrase for `field` occurs."""
    wanted = [m for m in matches if field in m.fields]
    if not wanted or not text:
        return []
    return AnalyzedText(text).match_spans(wanted)


def _phrase_at(tokens: Sequence[str], i: int, m: TextMatch) -> bool:
    last = len(m.tokens) - 1
    for k, want in enumerate(m.tokens):
        tok = tokens[i + k]
        if not (tok.startswith(want) if (k == last and m.prefix) else tok == want):
            return False
    return True


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def render(text: str, spans: Sequence[tuple[int, int]], start: int = 0, end: int | None = None) -> str:
    """text[start:end] with the spans marked, HTML-escaped, whitespace runs collapsed to one space."""
    end = len(text) if end is None else end
    parts: list[str] = []
    pos = start
    for s, e in spans:
        s, e = max(s, start), min(e, end)
        if s >= e:
            continue
        parts.append(_plain(text[pos:s]))
        parts.append(f"<mark>{_plain(text[s:e])}</mark>")
        pos = e
    parts.append(_plain(text[pos:end]))
    return "".join(parts).strip()


def _plain(text: str) -> str:
    return html.escape(re.sub(r"\s+", " ", text), quote=False)


def snippets(text: str, spans: Sequence[tuple[int, int]], size: int = SNIPPET_CHARS,
             limit: int = MAX_SNIPPETS) -> list[str]:
    """Up to `limit` windows of about `size` characters around the marked spans, cut at whitespace."""
    out: list[str] = []
    i = 0
    while i < len(spans) and len(out) < limit:
        s, e = spans[i]
        start = max(0, s - max(0, size - (e - s)) // 3)
        if start > 0:
            cut = text.find(" ", start, s)
            start = cut + 1 if cut >= 0 else start
        end = min(len(text), max(e, start + size))
        if end < len(text):
            cut = text.rfind(" ", e, end)
            end = cut if cut > e else end
        while i < len(spans) and spans[i][0] < end:
            end = max(end, spans[i][1])
            i += 1
        out.append(render(text, spans, start, end))
    return out


class AnalyzedFields:
    """One document's highlightable texts; each is analyzed on first use, then shared by every query."""

    def __init__(self, texts: Mapping[str, str]) -> None:
        self.texts = texts
        self._lower: dict[str, str] = {}
        self._analyzed: dict[str, AnalyzedText] = {}

    def highlight(self, matches: Sequence[TextMatch]) -> dict[str, list[str]]:
        """Highlights for ti (the whole title), ab and cl (snippets), only for fields with a match."""
        out: dict[str, list[str]] = {}
        for field in HIGHLIGHT_FIELDS:
            text = self.texts.get(field) or ""
            wanted = [m for m in matches if field in m.fields]
            if not text or not wanted or not self._may_occur(field, text, wanted):
                continue
            if field not in self._analyzed:
                self._analyzed[field] = AnalyzedText(text)
            spans = self._analyzed[field].match_spans(wanted)
            if spans:
                out[field] = [render(text, spans)] if field == "ti" else snippets(text, spans)
        return out

    def _may_occur(self, field: str, text: str, wanted: Sequence[TextMatch]) -> bool:
        """False when no phrase's first token occurs in the (ASCII) text at all: no need to analyze it."""
        if not text.isascii():
            return True
        if field not in self._lower:
            self._lower[field] = text.lower()
        lower = self._lower[field]
        return any(m.tokens[0] in lower for m in wanted)


def highlight(texts: dict[str, str], matches: Sequence[TextMatch]) -> dict[str, list[str]]:
    """Highlights for ti (the whole title), ab and cl (snippets), only for fields with a match."""
    return AnalyzedFields(texts).highlight(matches)
