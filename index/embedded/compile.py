"""Translate a query tree (index.query.ast) and Filters into SQLite SQL over the embedded schema (pure).

Each node becomes a boolean SQL expression over the documents table (alias `d`) that is never NULL, so `NOT`
means "the child does not match" even for documents lacking the field. Text nodes become FTS5 MATCH
subqueries on pre-analyzed token streams; see index/query/SEMANTICS.md for the semantics followed here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache

from index.analysis import MID_CHARS, analyze, is_cjk
from index.base import Filters
from index.classification import normalize_class_query
from index.model import normalize_party_name, pn_query_key
from index.query.ast import (
    CLASS_FIELDS,
    DATE_FIELDS,
    DEFAULT_FIELDS,
    KEYWORD_FIELDS,
    NAME_FIELDS,
    TEXT_FIELDS,
    And,
    MatchAll,
    Not,
    Or,
    Phrase,
    Prefix,
    Query,
    QuerySyntaxError,
    Range,
    Term,
)
from index.query.parser import date_period

_TOP = "\U0010ffff"  # sorts after every symbol/key character: `x >= p AND x < p || _TOP` is "starts with p"
_TOKEN_CHARS = re.compile(rf"[\w{re.escape(MID_CHARS)}]+")  # what can occur inside a token
_KEYWORD_COLUMNS = {"an": "an", "cc": "cc", "kind": "kind", "lang": "lang", "fam": "fam"}


@dataclass(frozen=True)
class TextMatch:
    """A positive text clause: what scores (as an FTS5 expression) and what is highlighted (tokens)."""

    fields: tuple[str, ...]
    tokens: tuple[str, ...]
    prefix: bool  # the last token is a prefix
    fts: str


@dataclass
class Compiled:
    where: str
    params: list[object] = field(default_factory=list)
    matches: list[TextMatch] = field(default_factory=list)  # positive text clauses (not under a Not)
    text_only: bool = False  # an OR of text clauses: `where` holds exactly where `score_expr` matches

    @property
    def score_expr(self) -> str | None:
        """One FTS5 expression ORing every positive text clause (BM25 over the query's text terms)."""
        if not self.matches:
            return None
        return " OR ".join(f"({m.fts})" for m in dict.fromkeys(self.matches))


def compile_query(query: Query) -> Compiled:
    out = Compiled(where="")
    out.where = _node(query, out, negated=False)
    out.text_only = _text_disjunction(query)
    return out


@lru_cache(maxsize=4096)
def compile_cached(query: Query) -> Compiled:
    """compile_query, memoized (query trees are immutable); callers must not mutate the result."""
    return compile_query(query)


def _text_disjunction(q: Query) -> bool:
    """True for a text leaf or an OR of them (every one compiles to one FTS5 phrase, or to nothing)."""
    if isinstance(q, Or):
        return all(_text_disjunction(c) for c in q.children)
    return isinstance(q, Term | Phrase | Prefix) and (q.field is None or q.field in TEXT_FIELDS + NAME_FIELDS)


def _node(q: Query, out: Compiled, negated: bool) -> str:
    if isinstance(q, MatchAll):
        return "1"
    if isinstance(q, And):
        parts = [_node(c, out, negated) for c in q.children]
        return "(" + " AND ".join(parts) + ")" if parts else "1"
    if isinstance(q, Or):
        parts = [_node(c, out, negated) for c in q.children]
        return "(" + " OR ".join(parts) + ")" if parts else "0"
    if isinstance(q, Not):
        return f"(NOT {_node(q.child, out, not negated)})"
    if isinstance(q, Term | Phrase | Prefix | Range):
        return _leaf(q, out, negated)
    raise TypeError(f"not a query node: {q!r}")


def _error(q: Term | Phrase | Prefix | Range, message: str) -> QuerySyntaxError:
    text = f"{q.field}:{q.text}" if not isinstance(q, Range) else f"{q.field}:[{q.low} TO {q.high}]"
    return QuerySyntaxError(message, text, 0)


def _leaf(q: Term | Phrase | Prefix | Range, out: Compiled, negated: bool) -> str:
    fld = q.field
    if fld is None or fld in TEXT_FIELDS or fld in NAME_FIELDS:
        if isinstance(q, Range):
            raise _error(q, f"ranges apply to dates ({', '.join(DATE_FIELDS)}), not to text")
        return _text(q, out, negated)
    if fld in DATE_FIELDS:
        return _date(q, out)
    if isinstance(q, Range):
        raise _error(q, f"ranges apply to dates ({', '.join(DATE_FIELDS)}), not to {fld}")
    if fld in CLASS_FIELDS:
        return _classification(q, out)
    if fld in KEYWORD_FIELDS:
        return _keyword(q, out)
    raise _error(q, f"unknown field {fld!r}")


def fts_phrase(tokens: list[str] | tuple[str, ...], prefix: bool = False) -> str:
    quoted = '"' + " ".join(t.replace('"', '""') for t in tokens) + '"'
    return quoted + "*" if prefix else quoted


def _text(q: Term | Phrase | Prefix, out: Compiled, negated: bool) -> str:
    fields = DEFAULT_FIELDS if q.field is None else (q.field,)
    if isinstance(q, Prefix) and not is_cjk(q.text):
        # A token starting with the lower-cased text; text that no token can contain matches nothing.
        prefix = q.text.lower()
        if not prefix or not _TOKEN_CHARS.fullmatch(prefix):
            return "0"
        tokens, star = [prefix], True
    else:
        tokens, star = analyze(q.text), False  # Term, Phrase, CJK prefix: the tokens, adjacent, in order
        if not tokens:
            return "0"  # nothing to match (like a match query whose analysis yields no token)
    expr = "{" + " ".join(fields) + "}: " + fts_phrase(tokens, star)
    if not negated:
        out.matches.append(TextMatch(tuple(fields), tuple(tokens), star, expr))
    out.params.append(expr)
    return "d.rid IN (SELECT rowid FROM fts WHERE fts MATCH ?)"


def _starts_with(column: str, prefix: str, params: list[object]) -> str:
    params.extend([prefix, prefix + _TOP])
    return f"({column} >= ? AND {column} < ?)"


def _classification(q: Term | Phrase | Prefix, out: Compiled) -> str:
    code = normalize_class_query(q.text)
    if not code:
        return "0"
    params: list[object] = [q.field]
    if isinstance(q, Prefix):
        cond = _starts_with("symbol", code, params)
    elif "/" in code:
        params.append(code)
        cond = "symbol = ?"
    elif len(code) <= 4:
        cond = _starts_with("symbol", code, params)
    else:
        cond = _starts_with("symbol", code + "/", params)
    out.params.extend(params)
    return f"d.rid IN (SELECT doc FROM classes WHERE scheme = ? AND {cond})"


def _keyword(q: Term | Phrase | Prefix, out: Compiled) -> str:
    if not q.text.strip():
        return "0"
    if q.field == "pn":
        if isinstance(q, Prefix):
            cond = _starts_with("key", re.sub(r"[\s\-,/.]", "", q.text).upper(), out.params)
        else:
            out.params.append(pn_query_key(q.text))
            cond = "key = ?"
        return f"d.rid IN (SELECT doc FROM keys WHERE {cond})"
    column = "d." + _KEYWORD_COLUMNS[str(q.field)]
    value = q.text.strip().upper()
    if q.field == "an":
        value = re.sub(r"\s+", "", value)
    if isinstance(q, Prefix):
        return "IFNULL(" + _starts_with(column, value, out.params) + ", 0)"
    out.params.append(value)
    return f"IFNULL({column} = ?, 0)"


def _period(text: str) -> tuple[str, str]:
    """First and last ISO day of a year, month or day (index.query.parser.date_period spellings)."""
    period = date_period(str(text).strip())
    if period is None:
        raise ValueError(f"invalid date {text!r} (use YYYY, YYYY-MM or YYYY-MM-DD)")
    return period[0].isoformat(), period[1].isoformat()


def _date(q: Term | Phrase | Prefix | Range, out: Compiled) -> str:
    column = "d." + str(q.field)
    try:
        if isinstance(q, Term):
            low, high = _period(q.text)
            out.params.extend([low, high])
            return f"IFNULL({column} >= ? AND {column} <= ?, 0)"
        if isinstance(q, Range):
            conds: list[str] = []
            if q.low not in (None, "", "*"):
                first, last = _period(str(q.low))
                conds.append(f"{column} >= ?" if q.include_low else f"{column} > ?")
                out.params.append(first if q.include_low else last)
            if q.high not in (None, "", "*"):
                first, last = _period(str(q.high))
                conds.append(f"{column} <= ?" if q.include_high else f"{column} < ?")
                out.params.append(last if q.include_high else first)
            return f"IFNULL({' AND '.join(conds)}, 0)" if conds else f"({column} IS NOT NULL)"
    except ValueError as exc:
        raise _error(q, str(exc)) from None
    kind = "phrases" if isinstance(q, Phrase) else "prefixes"
    raise _error(q, f"{kind} do not apply to dates ({q.field}); use a date, a year or a range")


def compile_filters(filters: Filters | None) -> tuple[str, list[object]]:
    """Structured filters as one SQL condition over `d` (\"1\" when there are none)."""
    if filters is None:
        return "1", []
    conds: list[str] = []
    params: list[object] = []

    def json_in(column: str, values: list[str]) -> None:
        conds.append(f"{column} IN (SELECT value FROM json_each(?))")
        params.append(json.dumps(values))

    if filters.countries:
        json_in("d.cc", [c.strip().upper() for c in filters.countries])
    if filters.kinds:
        json_in("d.kind", [k.strip().upper() for k in filters.kinds])
    if filters.published_from:
        conds.append("d.pd >= ?")
        params.append(filters.published_from.isoformat())
    if filters.published_to:
        conds.append("d.pd <= ?")
        params.append(filters.published_to.isoformat())
    for scheme, prefixes in (("ipc", filters.ipc_prefixes), ("cpc", filters.cpc_prefixes)):
        if prefixes:
            alts: list[str] = []
            sub_params: list[object] = [scheme]
            for p in prefixes:
                alts.append(_starts_with("symbol", normalize_class_query(p), sub_params))
            conds.append(f"d.rid IN (SELECT doc FROM classes WHERE scheme = ? AND ({' OR '.join(alts)}))")
            params.extend(sub_params)
    if filters.applicants:
        conds.append("d.rid IN (SELECT doc FROM applicants WHERE name IN (SELECT value FROM json_each(?)))")
        params.append(json.dumps([normalize_party_name(a) for a in filters.applicants]))
    if filters.ids is not None:
        json_in("d.id", list(filters.ids))
    if filters.min_seq is not None:
        conds.append("d.seq > ?")
        params.append(int(filters.min_seq))
    return (" AND ".join(conds) if conds else "1"), params
