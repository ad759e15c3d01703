"""The query tree the parser produces and every backend translates (never a raw string passed through)."""

from __future__ import annotations

from dataclasses import dataclass, field

# Canonical field names. The parser maps aliases (e.g. `title:` -> `ti`) onto these.
TEXT_FIELDS = ("ti", "ab", "cl", "desc")  # title, abstract, claims, description
NAME_FIELDS = ("pa", "in")  # applicant/assignee, inventor: analyzed text, phrase-matchable
CLASS_FIELDS = ("ipc", "cpc")  # hierarchical symbol match (see index.classification.class_matches)
DATE_FIELDS = ("pd", "ad")  # publication date, application date
KEYWORD_FIELDS = ("pn", "an", "cc", "kind", "lang", "fam")  # exact (case-insensitive) keywords
ALL_FIELDS = TEXT_FIELDS + NAME_FIELDS + CLASS_FIELDS + DATE_FIELDS + KEYWORD_FIELDS
DEFAULT_FIELDS = TEXT_FIELDS  # a term with no field searches these
# BM25 field boosts, shared by both backends.
FIELD_BOOSTS = {"ti": 3.0, "ab": 2.0, "cl": 1.5, "desc": 1.0, "pa": 1.0, "in": 1.0}


@dataclass(frozen=True)
class Term:
    """A word (or several words that analysis splits, matched as a phrase). field None = DEFAULT_FIELDS."""

    field: str | None
    text: str


@dataclass(frozen=True)
class Phrase:
    field: str | None
    text: str


@dataclass(frozen=True)
class Prefix:
    """`wire*`: a token prefix on text fields, a symbol prefix on ipc/cpc, a key prefix on keywords."""

    field: str | None
    text: str


@dataclass(frozen=True)
class Range:
    """Dates as ISO `YYYY-MM-DD` (the parser normalizes `2020`, `20200101`); None is an open end."""

    field: str
    low: str | None
    high: str | None
    include_low: bool = True
    include_high: bool = True


@dataclass(frozen=True)
class And:
    children: tuple[Query, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Query, ...]


@dataclass(frozen=True)
class Not:
    child: Query


@dataclass(frozen=True)
class MatchAll:
    pass


Query = Term | Phrase | Prefix | Range | And | Or | Not | MatchAll


@dataclass
class QuerySyntaxError(ValueError):
    """An invalid query: `message` says what, `position` (0-based character offset) says where."""

    message: str
    query: str
    position: int = 0
    hints: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        caret = " " * self.position + "^"
        return f"invalid query at position {self.position + 1}: {self.message}\n  {self.query}\n  {caret}"
