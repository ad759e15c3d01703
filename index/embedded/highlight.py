"""Highlight matched query tokens in the original text: `<mark>`..`</mark>` around them, HTML-escaped (pure).

The index stores analyzed token streams, so FTS5's own snippet() cannot map back to the original text; instead
the original text is re-analyzed with offsets and the query's phrases are found in it.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence

from index.analysis import analyze_spans
from index.embedded.compile import TextMatch

HIGHLIGHT_FIELDS = ("ti", "ab", "cl")
SNIPPET_CHARS = 200
MAX_SNIPPETS = 3


def match_spans(text: str, matches: Iterable[TextMatch], field: str) -> list[tuple[int, int]]:
    """Merged [start, end) character ranges of `text` where a query phrase for `field` occurs."""
    wanted = [m for m in matches if field in m.fields]
    if not wanted or not text:
        return []
    spans = analyze_spans(text)
    tokens = [t for t, _, _ in spans]
    found: list[tuple[int, int]] = []
    for m in wanted:
        n = len(m.tokens)
        for i in range(len(tokens) - n + 1):
            if _phrase_at(tokens, i, m):
                found.append((spans[i][1], spans[i + n - 1][2]))
    return _merge(found)


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


def highlight(texts: dict[str, str], matches: Sequence[TextMatch]) -> dict[str, list[str]]:
    """Highlights for ti (the whole title), ab and cl (snippets), only for fields with a match."""
    out: dict[str, list[str]] = {}
    for field in HIGHLIGHT_FIELDS:
        text = texts.get(field) or ""
        spans = match_spans(text, matches, field)
        if not spans:
            continue
        out[field] = [render(text, spans)] if field == "ti" else snippets(text, spans)
    return out
