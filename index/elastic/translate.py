"""Query tree -> Elasticsearch query DSL (pure functions; never a raw query_string).

Follows index/query/SEMANTICS.md: text clauses score with BM25 and FIELD_BOOSTS, every other clause filters
with a zero-boost constant score, so both backends return the same hit sets for the same tree.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from index.analysis import analyze, is_cjk
from index.base import Filters
from index.classification import normalize_class_query
from index.elastic.mapping import ANALYZED_FIELDS, HIGHLIGHT_FIELDS, TEXT_ANALYZER
from index.model import pn_query_key
from index.query.ast import (
    CLASS_FIELDS,
    DATE_FIELDS,
    DEFAULT_FIELDS,
    FIELD_BOOSTS,
    KEYWORD_FIELDS,
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

MATCH_NONE: dict[str, Any] = {"match_none": {}}
FACET_FIELDS = {"ipc": "ipc_subclass", "cpc": "cpc_subclass", "applicant": "applicant_norm", "year": "year",
                "country": "cc", "kind": "kind"}
FACET_SIZE = 20


@dataclass(frozen=True)
class Analysis:
    """How text leaves become DSL: `client` = pre-analyzed tokens in `tok.<f>`; otherwise server analysis."""

    mode: str = "client"

    def field(self, name: str) -> str:
        return f"tok.{name}" if self.mode == "client" else name


def to_dsl(query: Query, analysis: Analysis) -> dict[str, Any]:
    """Translate a query tree; raise QuerySyntaxError for a node a field cannot take (e.g. a phrase on `pd`)."""
    if isinstance(query, MatchAll):
        return {"match_all": {}}
    if isinstance(query, And):
        return {"bool": {"must": [to_dsl(c, analysis) for c in query.children]}}
    if isinstance(query, Or):
        return {"bool": {"should": [to_dsl(c, analysis) for c in query.children], "minimum_should_match": 1}}
    if isinstance(query, Not):
        return {"bool": {"must": [{"match_all": {}}], "must_not": [to_dsl(query.child, analysis)]}}
    if isinstance(query, Range):
        return _filter(_range(query))
    field = query.field
    if field is None or field in ANALYZED_FIELDS:
        fields = DEFAULT_FIELDS if field is None else (field,)
        clauses = [_text_leaf(query, f, analysis, FIELD_BOOSTS.get(f, 1.0)) for f in fields]
        if len(clauses) == 1:
            return clauses[0]
        return {"bool": {"should": clauses, "minimum_should_match": 1}}
    if field in CLASS_FIELDS:
        return _filter(_class_leaf(query, field))
    if field in KEYWORD_FIELDS:
        return _filter(_keyword_leaf(query, field))
    if field in DATE_FIELDS:
        return _filter(_date_leaf(query, field))
    raise QuerySyntaxError(f"unknown field `{field}`", "", 0)


def _filter(clause: dict[str, Any]) -> dict[str, Any]:
    return {"constant_score": {"filter": clause, "boost": 0.0}}


def _text_leaf(node: Term | Phrase | Prefix, field: str, analysis: Analysis, boost: float) -> dict[str, Any]:
    target = analysis.field(field)
    if isinstance(node, Prefix) and not is_cjk(node.text):
        text = node.text.lower()
        return {"prefix": {target: {"value": text, "boost": boost}}} if text else MATCH_NONE
    tokens = analyze(node.text)  # Term, Phrase and a CJK prefix: the tokens, adjacent and in order
    if not tokens:
        return MATCH_NONE
    if analysis.mode == "client":
        if len(tokens) == 1:
            return {"term": {target: {"value": tokens[0], "boost": boost}}}
        return {"match_phrase": {target: {"query": " ".join(tokens), "boost": boost}}}
    return {"match_phrase": {target: {"query": node.text, "analyzer": TEXT_ANALYZER, "boost": boost}}}


def _class_leaf(node: Term | Phrase | Prefix, field: str) -> dict[str, Any]:
    """Hierarchical match on the compact symbol, as index.classification.class_matches."""
    q = normalize_class_query(node.text)
    if not q:
        return MATCH_NONE
    if isinstance(node, Prefix) or ("/" not in q and len(q) <= 4):
        return {"prefix": {field: q}}
    if "/" in q:
        return {"term": {field: q}}
    return {"prefix": {field: q + "/"}}


def _keyword_leaf(node: Term | Phrase | Prefix, field: str) -> dict[str, Any]:
    text = node.text.strip()
    if field == "pn":
        key = pn_query_key(text) if not isinstance(node, Prefix) else re.sub(r"[\s\-,/.]", "", text).upper()
        value = key
    elif field == "an":
        value = text.upper().replace(" ", "")
    else:
        value = text
    if not value:
        return MATCH_NONE
    kind = "prefix" if isinstance(node, Prefix) else "term"
    return {kind: {field: {"value": value, "case_insensitive": True}}}


def _date_leaf(node: Term | Phrase | Prefix, field: str) -> dict[str, Any]:
    if not isinstance(node, Term):
        raise QuerySyntaxError(f"`{field}` takes a date, a year or a range, not a phrase or prefix", "", 0)
    from index.query.parser import date_period

    period = date_period(node.text.strip())
    if period is None:
        raise QuerySyntaxError(f"invalid date `{node.text}` for `{field}`", "", 0)
    return {"range": {field: {"gte": period[0].isoformat(), "lte": period[1].isoformat()}}}


def _range(node: Range) -> dict[str, Any]:
    if node.field not in DATE_FIELDS:
        raise QuerySyntaxError(f"ranges only work on date fields (pd, ad), not on `{node.field}`", "", 0)
    bounds: dict[str, str] = {}
    if node.low is not None:
        bounds["gte" if node.include_low else "gt"] = node.low
    if node.high is not None:
        bounds["lte" if node.include_high else "lt"] = node.high
    return {"range": {node.field: bounds}} if bounds else {"exists": {"field": node.field}}


# --- filters, facets, highlighting, cursors ---------------------------------------------------------------

def filter_clauses(filters: Filters) -> list[dict[str, Any]]:
    """Structured filters as bool.filter clauses (no scoring)."""
    out: list[dict[str, Any]] = []
    if filters.countries:
        out.append({"terms": {"cc": [c.upper() for c in filters.countries]}})
    if filters.kinds:
        out.append({"terms": {"kind": [k.upper() for k in filters.kinds]}})
    if filters.published_from or filters.published_to:
        rng: dict[str, str] = {}
        if filters.published_from:
            rng["gte"] = filters.published_from.isoformat()
        if filters.published_to:
            rng["lte"] = filters.published_to.isoformat()
        out.append({"range": {"pd": rng}})
    for name, prefixes in (("ipc", filters.ipc_prefixes), ("cpc", filters.cpc_prefixes)):
        if prefixes:
            out.append({"bool": {"should": [{"prefix": {name: normalize_class_query(p)}} for p in prefixes],
                                 "minimum_should_match": 1}})
    if filters.applicants:
        out.append({"terms": {"applicant_norm": list(filters.applicants)}})
    if filters.ids is not None:
        out.append({"ids": {"values": list(filters.ids)}})
    if filters.min_seq is not None:
        out.append({"range": {"seq": {"gt": filters.min_seq}}})
    return out


def facet_aggs(names: Sequence[str]) -> dict[str, Any]:
    """Terms aggregations: top 20, count desc then value asc."""
    aggs: dict[str, Any] = {}
    for name in names:
        if name not in FACET_FIELDS:
            raise ValueError(f"unknown facet {name!r}; known: {', '.join(FACET_FIELDS)}")
        aggs[name] = {"terms": {"field": FACET_FIELDS[name], "size": FACET_SIZE,
                                "order": [{"_count": "desc"}, {"_key": "asc"}]}}
    return aggs


def highlight_spec(query: Query, analysis: Analysis) -> dict[str, Any] | None:
    """Highlight ti/ab/cl with <mark> around what the positive text clauses matched."""
    should: list[dict[str, Any]] = []
    for node in positive_text_leaves(query):
        fields = [f for f in (HIGHLIGHT_FIELDS if node.field is None else (node.field,)) if f in HIGHLIGHT_FIELDS]
        for f in fields:
            should.append(_display_leaf(node, f, analysis))
    if not should:
        return None
    return {
        "pre_tags": ["<mark>"], "post_tags": ["</mark>"], "require_field_match": False,
        "fields": {f: {"number_of_fragments": 3, "fragment_size": 160} for f in HIGHLIGHT_FIELDS},
        "highlight_query": {"bool": {"should": should}},
    }


def _display_leaf(node: Term | Phrase | Prefix, field: str, analysis: Analysis) -> dict[str, Any]:
    """The clause on the original (stored) text field the highlighter re-analyzes."""
    if isinstance(node, Prefix) and not is_cjk(node.text):
        return {"prefix": {field: node.text.lower()}}
    if analysis.mode == "client":  # the display field uses the standard analyzer: CJK unigrams, words as-is
        return {"match_phrase": {field: node.text}}
    return {"match_phrase": {field: {"query": node.text, "analyzer": TEXT_ANALYZER}}}


def positive_text_leaves(query: Query, negated: bool = False) -> list[Term | Phrase | Prefix]:
    if isinstance(query, And | Or):
        return [leaf for c in query.children for leaf in positive_text_leaves(c, negated)]
    if isinstance(query, Not):
        return positive_text_leaves(query.child, not negated)
    if isinstance(query, Term | Phrase | Prefix) and not negated and (
            query.field is None or query.field in ANALYZED_FIELDS):
        return [query]
    return []


def encode_cursor(sort_values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(sort_values).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> list[Any]:
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except ValueError as exc:
        raise ValueError(f"invalid search_after cursor: {cursor!r}") from exc
    if not isinstance(values, list) or len(values) != 3:
        raise ValueError(f"invalid search_after cursor: {cursor!r}")
    return values
