"""A deliberately naive evaluation of index/query/SEMANTICS.md: the reference both backends are tested against."""

from __future__ import annotations

import re
from collections import Counter

from index.analysis import analyze, is_cjk
from index.classification import class_matches, normalize_class_query
from index.fields import index_fields
from index.model import PatentDocument, pn_query_key
from index.query.ast import DEFAULT_FIELDS, And, MatchAll, Not, Or, Phrase, Prefix, Query, Range, Term
from index.query.parser import date_period


def _has_run(tokens: list[str], run: list[str]) -> bool:
    return bool(run) and any(tokens[i:i + len(run)] == run for i in range(len(tokens) - len(run) + 1))


_VIEWS: dict[int, tuple[PatentDocument, dict[str, object], dict[str, list[str]]]] = {}


def _view(doc: PatentDocument) -> tuple[dict[str, object], dict[str, list[str]]]:
    """index_fields(doc) and its analyzed text fields, computed once per document object."""
    if id(doc) not in _VIEWS or _VIEWS[id(doc)][0] is not doc:
        f = index_fields(doc)
        _VIEWS[id(doc)] = (doc, f, {k: analyze(f[k] or "") for k in ("ti", "ab", "cl", "desc", "pa", "in")})
    return _VIEWS[id(doc)][1], _VIEWS[id(doc)][2]


def matches(q: Query, doc: PatentDocument) -> bool:
    f, tokens = _view(doc)
    if isinstance(q, MatchAll):
        return True
    if isinstance(q, And | Or):
        return (all if isinstance(q, And) else any)(matches(c, doc) for c in q.children)
    if isinstance(q, Not):
        return not matches(q.child, doc)
    if q.field in ("pd", "ad"):
        value = f[q.field]
        if value is None:
            return False
        if isinstance(q, Range):
            lo = q.low is None or (value >= q.low if q.include_low else value > q.low)
            return lo and (q.high is None or (value <= q.high if q.include_high else value < q.high))
        first, last = date_period(q.text)  # type: ignore[misc]
        return first.isoformat() <= value <= last.isoformat()
    assert isinstance(q, Term | Phrase | Prefix)
    if q.field in ("ipc", "cpc"):
        code = normalize_class_query(q.text)
        return bool(code) and any(class_matches(s, code, prefix=isinstance(q, Prefix)) for s in f[q.field])
    if q.field == "pn":
        keys = [k.upper() for k in f["pn"]]
        if isinstance(q, Prefix):
            return any(k.startswith(re.sub(r"[\s\-,/.]", "", q.text).upper()) for k in keys)
        return pn_query_key(q.text) in keys
    if q.field in ("an", "cc", "kind", "lang", "fam"):
        value, want = (f[q.field] or "").upper(), q.text.strip().upper()
        return value.startswith(want) if isinstance(q, Prefix) else value == want
    streams = [tokens[name] for name in (DEFAULT_FIELDS if q.field is None else (q.field,))]
    if isinstance(q, Prefix) and not is_cjk(q.text):
        return any(t.startswith(q.text.lower()) for s in streams for t in s)
    return any(_has_run(s, analyze(q.text)) for s in streams)


def expected_facets(docs: list[PatentDocument]) -> dict[str, list[tuple[str, int]]]:
    """Facet counts (top 20, count desc then value) computed straight from the documents."""
    counts: dict[str, Counter[str]] = {k: Counter() for k in ("ipc", "cpc", "applicant", "year", "country", "kind")}
    for d in docs:
        f = index_fields(d)
        counts["ipc"].update(f["ipc_subclass"])
        counts["cpc"].update(f["cpc_subclass"])
        counts["applicant"].update(f["applicant_norm"])
        counts["year"].update([str(f["year"])] if f["year"] else [])
        counts["country"].update([f["cc"]])
        counts["kind"].update([f["kind"]] if f["kind"] else [])
    return {k: sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[:20] for k, c in counts.items()}
