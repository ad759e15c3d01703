"""Index settings and mappings for the flat view in index.fields, and the document body sent per patent.

Two ways to get SEMANTICS.md's analysis (lower-cased UAX #29 words, CJK bigrams):
* `server` — a custom analyzer on the node: standard tokenizer + cjk_width + lowercase + cjk_bigram. Needs the
  `analysis-common` module, which every full distribution has (the bare integ-test distribution does not).
* `client` — the client analyzes with index.analysis.analyze (the embedded backend's analyzer) and sends the
  tokens, joined by spaces, to `tok.<field>` fields that the node splits on whitespace: the same tokens by
  construction. The original text stays in `ti`/`ab`/`cl` (standard analyzer) for highlighting only.
Plugin analyzers (`icu`, `smartcn`, `kuromoji`, `nori`) and language analyzers (`english`, `german`, ...) are
server-side too; they stem or segment differently from SEMANTICS.md (see README, "Embedded vs Elasticsearch").
"""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson

from index.analysis import analyze
from index.fields import index_fields
from index.model import PatentDocument
from index.query.ast import NAME_FIELDS, TEXT_FIELDS

SCHEMA_VERSION = 1
ANALYZED_FIELDS = TEXT_FIELDS + NAME_FIELDS  # ti ab cl desc pa in
HIGHLIGHT_FIELDS = ("ti", "ab", "cl")
TEXT_ANALYZER = "patentsift_text"

# Custom analyzers per `analyzers=` choice; a plain name (english, german, ...) is a built-in language analyzer.
SERVER_ANALYZERS: dict[str, dict[str, Any]] = {
    "server": {"type": "custom", "tokenizer": "standard", "filter": ["cjk_width", "lowercase", "cjk_bigram"]},
    "icu": {"type": "custom", "tokenizer": "icu_tokenizer", "filter": ["icu_folding"]},
    "smartcn": {"type": "custom", "tokenizer": "smartcn_tokenizer", "filter": ["lowercase"]},
    "kuromoji": {"type": "custom", "tokenizer": "kuromoji_tokenizer", "filter": ["cjk_width", "lowercase"]},
    "nori": {"type": "custom", "tokenizer": "nori_tokenizer", "filter": ["lowercase"]},
}
PROBE_FILTERS = {"server": ["cjk_width", "lowercase", "cjk_bigram"]}


def index_settings(mode: str, vector_dims: int | None, shards: int = 1, replicas: int = 0) -> dict[str, Any]:
    """`settings` + `mappings` for a new versioned index; `mode` is `client` or a server analyzer choice."""
    analysis: dict[str, Any] = {}
    if mode != "client":
        analysis = {"analyzer": {TEXT_ANALYZER: SERVER_ANALYZERS.get(mode, {"type": mode})}}
    settings: dict[str, Any] = {"number_of_shards": shards, "number_of_replicas": replicas}
    if analysis:
        settings["analysis"] = analysis
    return {"settings": settings, "mappings": mappings(mode, vector_dims)}


def mappings(mode: str, vector_dims: int | None) -> dict[str, Any]:
    kw = {"type": "keyword"}
    props: dict[str, Any] = {
        "id": kw, "pn": kw, "cc": kw, "kind": kw, "number": kw, "an": kw, "lang": kw, "fam": kw,
        "pd": {"type": "date", "format": "strict_date"},
        "ad": {"type": "date", "format": "strict_date"},
        "year": {"type": "short"},
        "applicant_norm": kw, "ipc": kw, "cpc": kw, "ipc_subclass": kw, "cpc_subclass": kw,
        "seq": {"type": "long"},
        "doc": {"type": "object", "enabled": False},  # the PatentDocument JSON but `description` (= `desc`), stored, not indexed
        "vec": vector_mapping(vector_dims),
    }
    if mode == "client":
        for f in ANALYZED_FIELDS:  # originals: highlighting only (ti ab cl); desc (stored) pa in not indexed twice
            props[f] = {"type": "text", "analyzer": "standard"} if f in HIGHLIGHT_FIELDS else {
                "type": "text", "index": False}
        props["tok"] = {"properties": {f: {"type": "text", "analyzer": "whitespace"} for f in ANALYZED_FIELDS}}
        # tokens are derived; rebuild() recomputes them from `doc`. Only in this mode: a source filter makes the
        # node parse and re-serialize every source (a third of its indexing CPU on patent-sized documents)
        source = {"_source": {"excludes": ["tok.*"]}}
    else:
        source = {}
        for f in ANALYZED_FIELDS:
            props[f] = {"type": "text", "analyzer": TEXT_ANALYZER}
    return {
        "dynamic": "strict",
        **source,
        "_meta": {"schema": SCHEMA_VERSION, "analysis": mode, "vector_dims": vector_dims},
        "properties": props,
    }


def vector_mapping(dims: int | None) -> dict[str, Any]:
    """HNSW over int8-quantized vectors (a quarter of the memory of float32; the node keeps the float vectors
    too, for exact rescoring), cosine; without `dims` the first stored vector fixes the dimension."""
    out: dict[str, Any] = {"type": "dense_vector", "index": True, "similarity": "cosine",
                           "index_options": {"type": "int8_hnsw", "m": 16, "ef_construction": 100}}
    if dims:
        out["dims"] = dims
    return out


def document_body(doc: PatentDocument, mode: str, seq: int, vector: list[float] | None = None) -> dict[str, Any]:
    """What is indexed for one document (the `_source` minus the derived tokens)."""
    body = {k: v for k, v in index_fields(doc).items() if v not in (None, "", [])}
    body["seq"] = seq
    # stored once, as `desc` (the biggest field: half the request otherwise); `doc` goes out as JSON that
    # orjson writes from the dataclass, several times faster than to_dict()
    stored = dataclasses.replace(doc, description="")
    try:
        body["doc"] = orjson.Fragment(stored.to_json())
    except UnicodeEncodeError:  # a lone surrogate: the bulk line's own fallback writes it
        body["doc"] = stored.to_dict()
    if mode == "client":
        body["tok"] = {f: " ".join(analyze(body[f])) for f in ANALYZED_FIELDS if body.get(f)}
        for f in set(ANALYZED_FIELDS) - set(HIGHLIGHT_FIELDS) - {"desc"}:  # not indexed as text; `doc` has them
            body.pop(f, None)
    if vector is not None:
        body["vec"] = vector
    return body
