"""Why a document matched a profile: terms with highlighted snippets, classes, applicants, nearest seed. Pure."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from index.model import PatentDocument
from matching.applicants import matching_names

_MARK = re.compile(r"<mark>(.*?)</mark>", re.S)
FIELD_LABELS = {"ti": "title", "ab": "abstract", "cl": "claims"}


@dataclass
class Explanation:
    terms: list[str] = field(default_factory=list)  # query/description terms found in the document
    snippets: dict[str, list[str]] = field(default_factory=dict)  # field -> snippets with <mark>..</mark>
    classes: list[str] = field(default_factory=list)  # the document's classes under a watched prefix
    applicants: list[str] = field(default_factory=list)  # watched applicants that filed it
    seed: str | None = None  # the seed patent it most resembles
    seed_similarity: float | None = None  # cosine to that seed
    similarity: float | None = None  # cosine to the profile vector
    duplicates: list[str] = field(default_factory=list)  # other publications of this invention, not sent

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


def matched_classes(doc: PatentDocument, prefixes: Iterable[str]) -> list[str]:
    """The document's IPC/CPC symbols that start with one of the profile's class prefixes."""
    prefixes = tuple(prefixes)
    if not prefixes:
        return []
    return sorted({c.symbol for c in [*doc.ipc, *doc.cpc] if c.symbol.startswith(prefixes)})


def matched_applicants(doc: PatentDocument, watched: Iterable[str]) -> list[str]:
    """The document's applicants (as written) that are a watched applicant (as the profile writes it) in another
    spelling: case, width, punctuation and legal form aside (matching.applicants.applicant_key)."""
    return matching_names(watched, (p.name for p in doc.applicants))


def describe(exp: Explanation, breakdown: Mapping[str, Mapping[str, float]] | None = None) -> list[str]:
    """Human-readable lines (snippets keep their <mark> tags for the caller to render)."""
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
        lines.append("classes: " + ", ".join(exp.classes))
    if exp.applicants:
        lines.append("applicant: " + "; ".join(exp.applicants))
    if exp.seed:
        lines.append(f"resembles seed {exp.seed} (cosine {exp.seed_similarity:.2f})")
    elif exp.similarity is not None:
        lines.append(f"similar to the profile description (cosine {exp.similarity:.2f})")
    if exp.duplicates:
        lines.append("same invention as: " + ", ".join(exp.duplicates))
    return lines
