"""Why a document matched a profile: terms with highlighted snippets (title, abstract, claims and description:
every field whose words scored), classes (with their titles in the reader's language, where the caller knows
them), applicants, nearest seed. Pure."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from index.analysis import analyze, analyze_spans
from index.model import PatentDocument
from index.query.ast import And, Not, Or, Phrase, Prefix, Query, Term
from matching.applicants import ApplicantAliases, matching_names

_MARK = re.compile(r"<mark>(.*?)</mark>", re.S)
FIELD_LABELS = {"ti": "title", "ab": "abstract", "cl": "claims", "desc": "description"}
SNIPPET_CHARS = 200  # description snippets: about this many characters around the first matches
MAX_DESCRIPTION_SNIPPETS = 2


@dataclass
class Explanation:
    terms: list[str] = field(default_factory=list)  # query/description terms found in the document
    snippets: dict[str, list[str]] = field(default_factory=dict)  # field -> snippets with <mark>..</mark>
    classes: list[str] = field(default_factory=list)  # the document's classes under a watched prefix
    related_classes: list[str] = field(default_factory=list)  # its subclasses among the profile's related ones
    applicants: list[str] = field(default_factory=list)  # watched applicants that filed it
    seed: str | None = None  # the seed patent it most resembles
    seed_similarity: float | None = None  # cosine to that seed
    similarity: float | None = None  # cosine to the profile vector
    duplicates: list[str] = field(default_factory=list)  # other publications of this invention, not sent
    learned_from: int | None = None  # ranked by the profile's classifier, trained on this many judgements

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Explanation:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def matched_terms(highlights: Mapping[str, list[str]]) -> list[str]:
    """The distinct marked words in highlight snippets, lower-cased, in order of first appearance."""
    seen: dict[str, None] = {}
    for snippets in highlights.values():
        for snippet in snippets:
            for m in _MARK.findall(snippet):
                seen.setdefault(m.strip().lower(), None)
    return [t for t in seen if t]


def query_phrases(query: Query | None, negated: bool = False) -> list[tuple[tuple[str, ...], bool]]:
    """The analyzed token sequences (and whether the last is a prefix) of the query's positive text clauses that
    search the description (no field, `desc` or `all`)."""
    if query is None:
        return []
    if isinstance(query, And | Or):
        return [x for c in query.children for x in query_phrases(c, negated)]
    if isinstance(query, Not):
        return query_phrases(query.child, not negated)
    if isinstance(query, Term | Phrase | Prefix) and not negated and query.field in (None, "desc"):
        tokens = tuple(analyze(query.text))
        return [(tokens, isinstance(query, Prefix))] if tokens else []
    return []


def description_highlights(query: Query | None, text: str, limit: int = MAX_DESCRIPTION_SNIPPETS) -> list[str]:
    """Snippets of the description with <mark> around what the query's clauses matched (HTML-escaped), the first
    `limit` places; the index highlights title, abstract and claims, this adds the description's share."""
    return DescriptionText(text).highlights(query, limit)


class DescriptionText:
    """One description, lower-cased and analyzed on first need, then highlighted for any number of queries (a
    batch's explanations share one per document: descriptions are long, and many profiles match one document)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._ascii = text.isascii()
        self._lower: str | None = None
        self._spans: list[tuple[str, int, int]] | None = None
        self._tokens: list[str] = []
        self._where: dict[str, list[int]] = {}

    def _may_occur(self, first_token: str) -> bool:
        if not self._ascii:
            return True
        if self._lower is None:
            self._lower = self.text.lower()
        return first_token in self._lower

    def _analyzed(self) -> tuple[list[tuple[str, int, int]], list[str], dict[str, list[int]]]:
        if self._spans is None:
            self._spans = analyze_spans(self.text)
            self._tokens = [t for t, _, _ in self._spans]
            for i, tok in enumerate(self._tokens):
                self._where.setdefault(tok, []).append(i)
        return self._spans, self._tokens, self._where

    def highlights(self, query: Query | None, limit: int = MAX_DESCRIPTION_SNIPPETS) -> list[str]:
        """`description_highlights` of this text."""
        text = self.text
        phrases = [(w, prefix) for w, prefix in query_phrases(query) if self._may_occur(w[0])] if text else []
        if not phrases:
            return []
        spans, tokens, where = self._analyzed()
        found: list[tuple[int, int]] = []
        for words, prefix in phrases:
            n = len(words)
            if prefix and n == 1:
                starts = [i for tok, at in where.items() if tok.startswith(words[0]) for i in at]
            else:
                starts = where.get(words[0], [])
            for i in starts:
                if i + n <= len(tokens) and all(
                        tokens[i + k] == words[k] or (prefix and k == n - 1 and tokens[i + k].startswith(words[k]))
                        for k in range(1, n)):
                    found.append((spans[i][1], spans[i + n - 1][2]))
        if not found:
            return []
        merged: list[list[int]] = []
        for a, b in sorted(found):
            if merged and a <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        out: list[str] = []
        while merged and len(out) < limit:
            start = max(0, merged[0][0] - SNIPPET_CHARS // 3)
            end = min(len(text), start + SNIPPET_CHARS)
            inside = [m for m in merged if m[1] <= end]
            merged = [m for m in merged if m[1] > end]
            pieces, at = [], start
            for a, b in inside:
                pieces += [html.escape(text[at:a]), f"<mark>{html.escape(text[a:b])}</mark>"]
                at = b
            pieces.append(html.escape(text[at:end]))
            snippet = " ".join("".join(pieces).split())
            out.append(("… " if start else "") + snippet + (" …" if end < len(text) else ""))
        return out


def matched_classes(doc: PatentDocument, prefixes: Iterable[str]) -> list[str]:
    """The document's IPC/CPC symbols that start with one of the profile's class prefixes."""
    prefixes = tuple(prefixes)
    if not prefixes:
        return []
    return sorted({c.symbol for c in [*doc.ipc, *doc.cpc] if c.symbol.startswith(prefixes)})


def matched_applicants(doc: PatentDocument, watched: Iterable[str], aliases: ApplicantAliases | None = None
                       ) -> list[str]:
    """The document's applicants (as written) that are a watched applicant (as the profile writes it) in another
    spelling: case, width, punctuation and legal form aside (matching.applicants.applicant_key), or another script
    the documents gave for it (`aliases`)."""
    return matching_names(watched, (p.name for p in doc.applicants), aliases)


def describe(exp: Explanation, breakdown: Mapping[str, Mapping[str, float]] | None = None,
             class_title: Callable[[str], str | None] | None = None) -> list[str]:
    """Human-readable lines (snippets keep their <mark> tags for the caller to render); `class_title` gives a
    class symbol's title in the reader's language (the shell passes distribution's IPC titles)."""
    lines: list[str] = []
    if breakdown:
        parts = [f"{name} {b.get('calibrated', 0.0):.2f}x{b.get('weight', 0.0):.2f}" for name, b in breakdown.items()]
        lines.append("score: " + ", ".join(parts))
    if exp.terms:
        lines.append("terms: " + ", ".join(exp.terms))
    for fld, snippets in exp.snippets.items():
        for snippet in snippets[:1]:
            lines.append(f"{FIELD_LABELS.get(fld, fld)}: {snippet}")
    if exp.classes:
        lines.append("classes: " + ", ".join(titled_classes(exp.classes, class_title)))
    if exp.related_classes:
        lines.append("in the field of the profile's nearest documents: "
                     + ", ".join(titled_classes(exp.related_classes, class_title)))
    if exp.applicants:
        lines.append("applicant: " + "; ".join(exp.applicants))
    if exp.seed:
        lines.append(f"resembles seed {exp.seed} (cosine {exp.seed_similarity:.2f})")
    elif exp.similarity is not None:
        lines.append(f"similar to the profile description (cosine {exp.similarity:.2f})")
    if exp.learned_from:
        lines.append(f"ranked by a classifier learned from {exp.learned_from} judgements of this profile")
    if exp.duplicates:
        lines.append("same invention as: " + ", ".join(exp.duplicates))
    return lines


def titled_classes(classes: Iterable[str], class_title: Callable[[str], str | None] | None) -> list[str]:
    """Each class symbol, followed by its title in parentheses where `class_title` knows one."""
    out = []
    for c in classes:
        title = class_title(c) if class_title else None
        out.append(f"{c} ({title})" if title else c)
    return out
