"""One conformance suite for both backends (embedded SQLite and Elasticsearch) on the same real documents.

Every query's hits are checked against a reference evaluation of the query tree over the documents
(index.analysis + index.classification, as SEMANTICS.md states them), so both backends return the same sets;
`test_backends_agree` also compares the two backends directly. Scores differ (see README, "Embedded vs Elasticsearch"):
scored queries compare sets, non-scored ones compare order too.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from harvest.formats import parse_raw
from harvest.raw import RawDocument, Reject
from index.analysis import analyze
from index.base import Filters, Index, SearchRequest, StoredVectors, VectorModelTag
from index.model import PatentDocument
from index.query.ast import (
    MatchAll,
    Query,
    QuerySyntaxError,
)
from index.query.parser import parse_query
from tests.integration.es_support import unique_prefix
from tests.reference_semantics import expected_facets, matches

BACKENDS = ["embedded", "es"]

# (query, at least this many hits in the reference) — text terms, phrases, prefixes, booleans, NOT, pn
# spellings, class hierarchy/prefix, dates, Chinese.
QUERIES = [
    ("battery", 1), ("shielding", 2), ("ti:vacuum", 1), ('"light emitting"', 1), ('ab:"heat"', 1),
    ("shield*", 2), ("ti:elec*", 1), ("battery OR vacuum", 2), ("shielding AND electromagnetic", 1),
    ("electronic NOT shielding", 1), ("NOT shielding", 10), ("(cheese OR razor) AND NOT vacuum", 2),
    ("pa:raytheon", 2), ('pa:"polyplus battery"', 1), ("pn:US11646472B2", 1), ("pn:US-11,646,472", 1),
    ("pn:11646472", 1), ("pn:USD701016", 1), ("pn:US1164*", 1), ("cc:cn", 4), ("kind:s1", 1),
    ("ipc:H05K", 2), ("ipc:H05K9", 2), ("ipc:H05K9/00", 2), ("ipc:G06F15/16", 1), ("ipc:G0*", 3),
    ("cpc:H01L25/18", 1), ("pd:2023", 4), ("pd:[2014-01-01 TO 2015-12-31]", 4), ("pd:{2023-01-10 TO *]", 1),
    ("pd>=2022 AND ipc:H05K", 2), ("显示设备", 1), ("ti:医用", 1), ("治疗*", 1), ("ipc:A01G AND light", 1),
]
FACETS = ["ipc", "cpc", "applicant", "year", "country", "kind"]
BAD_QUERIES = ["ti:(battery", 'pd:"soon"', "foo:bar", "pd:wire*", "AND battery"]


# --- the documents ----------------------------------------------------------------------------------------

def _parse_file(path: Path, split: bool = False) -> list[PatentDocument]:
    data = path.read_bytes()
    parts = [b"<?xml" + p for p in data.split(b"<?xml") if p.strip()] if split else [data]
    docs: list[PatentDocument] = []
    for i, part in enumerate(parts, start=1):
        try:
            docs.extend(parse_raw(RawDocument(part, str(path), i), fetched_at="2026-01-01T00:00:00+00:00"))
        except Reject:
            continue  # sequence listings and the like
    return docs


def load_corpus(root: Path) -> list[PatentDocument]:
    """US single files (grants, applications), one weekly grant file split on `<?xml`, the CN files."""
    files = sorted((root / "uspto-grant" / "single").glob("*.xml"))
    files += sorted((root / "uspto-application" / "single").glob("*.xml"))
    files += sorted((root / "cn").glob("*.xml"))
    docs = [d for f in files for d in _parse_file(f)]
    docs += _parse_file(root / "uspto-grant" / "weekly" / "ipg230110.first3.xml", split=True)
    by_id = {d.id: d for d in docs}
    return [by_id[k] for k in sorted(by_id)]


@pytest.fixture(scope="module")
def corpus(shared_patents: Path) -> list[PatentDocument]:
    docs = load_corpus(shared_patents)
    assert len(docs) >= 20
    return docs


def vectors_for(docs: list[PatentDocument], dims: int = 16) -> dict[str, list[float]]:
    """Deterministic, distinct vectors from each document's own tokens (hashed bag of words)."""
    import zlib

    out = {}
    for d in docs:
        vec = [0.0] * dims
        for tok in analyze(d.title() + " " + d.abstract()):
            vec[zlib.crc32(tok.encode()) % dims] += 1.0
        vec[zlib.crc32(d.id.encode()) % dims] += 0.5
        out[d.id] = vec
    return out


# --- the backends -----------------------------------------------------------------------------------------

def _open(name: str, request: pytest.FixtureRequest, tmp: Path) -> Index:
    if name == "embedded":
        from index.embedded import EmbeddedIndex

        return EmbeddedIndex(tmp / "index.sqlite")
    url = request.getfixturevalue("es_url")
    from index.elastic import ElasticIndex

    return ElasticIndex(url, index_prefix=unique_prefix("conf"))


@pytest.fixture(scope="module")
def opened(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           corpus: list[PatentDocument]) -> Iterator[dict[str, Index]]:
    """Backends opened lazily (once per module), loaded with the corpus and its vectors."""
    cache: dict[str, Index] = {}

    class Lazy(dict):  # type: ignore[type-arg]
        def __missing__(self, name: str) -> Index:
            index = _open(name, request, tmp_path_factory.mktemp(name))
            report = index.upsert(corpus)
            assert not report.failed, report.failed
            index.set_vectors(vectors_for(corpus))
            cache[name] = self[name] = index
            return index

    yield Lazy()
    for index in cache.values():
        drop = getattr(index, "drop", None)
        if drop:
            drop()
        index.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, opened: dict[str, Index]) -> Index:
    return opened[request.param]


# --- reference evaluation (tests/reference_semantics.py) ----------------------------------------------------

def expected_ids(query: Query, corpus: list[PatentDocument]) -> set[str]:
    return {d.id for d in corpus if matches(query, d)}


def search(index: Index, text: str, **kw: Any) -> Any:
    return index.search(SearchRequest(parse_query(text), limit=kw.pop("limit", 100), **kw))


# --- the suite --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "at_least"), QUERIES)
def test_query_hits(backend: Index, corpus: list[PatentDocument], text: str, at_least: int) -> None:
    want = expected_ids(parse_query(text), corpus)
    assert len(want) >= at_least, f"reference finds too few documents for {text!r}: {sorted(want)}"
    result = search(backend, text)
    assert {h.id for h in result.hits} == want
    assert result.total == len(want)


def test_facets(backend: Index, corpus: list[PatentDocument]) -> None:
    result = backend.search(SearchRequest(MatchAll(), facets=FACETS, limit=0))
    expected = expected_facets(corpus)
    for name in FACETS:
        want = expected[name]
        got = [(v.value, v.count) for v in result.facets[name]]
        assert got == want, name


def test_highlights(backend: Index) -> None:
    result = search(backend, "shielding OR 显示设备")
    assert result.hits
    for hit in result.hits:
        snippets = [s for field in ("ti", "ab", "cl") for s in hit.highlights.get(field, [])]
        assert snippets and all("<mark>" in s and "</mark>" in s for s in snippets), hit.id
    assert "<mark>" in " ".join(search(backend, "ti:shielding").hits[0].highlights.get("ti", []))


def test_unscored_order_and_pagination(backend: Index, corpus: list[PatentDocument]) -> None:
    """A filter-only query has no scores: both order by publication date (newest first), then id; pages and
    cursors tile the result."""
    text = "pd>=2005"
    by_id = {d.id: d for d in corpus}
    want = sorted(expected_ids(parse_query(text), corpus), key=lambda i: (-by_id[i].publication_date.toordinal(), i))
    full = [h.id for h in search(backend, text).hits]
    assert full == want
    paged = [h.id for off in range(0, len(want), 4)
             for h in backend.search(SearchRequest(parse_query(text), limit=4, offset=off)).hits]
    assert paged == want
    cursor, walked = None, []
    while True:
        page = backend.search(SearchRequest(parse_query(text), limit=5, search_after=cursor))
        walked += [h.id for h in page.hits]
        if not page.next_cursor:
            break
        cursor = page.next_cursor
    assert walked == want


def _date_key(doc: PatentDocument, sort: str) -> int:
    """A document's sort date as a number (YYYYMMDD; 0 when it has none: those come last)."""
    day = doc.publication_date if sort == "pd" else doc.application_date
    return int(day.strftime("%Y%m%d")) if day else 0


@pytest.mark.parametrize("sort", ["pd", "ad"])
@pytest.mark.parametrize("text", ["pd>=2005", "shielding OR battery OR display OR light", "*"])
def test_sort_by_date(backend: Index, corpus: list[PatentDocument], sort: str, text: str) -> None:
    """sort="pd"/"ad": the same hits as by relevance, newest first by that date (no date last), ties by score then
    id; an unscored query orders exactly by (date desc, id); offset pages and cursors tile the order."""
    want = expected_ids(parse_query(text), corpus)
    full = search(backend, text, sort=sort)
    ids = [h.id for h in full.hits]
    assert set(ids) == want and full.total == len(want)
    keys = [_date_key(h.document, sort) for h in full.hits]
    assert keys == sorted(keys, reverse=True), keys
    assert len(set(keys)) > 2, "the corpus should give this sort something to order"
    if text in ("pd>=2005", "*"):
        by_id = {d.id: d for d in corpus}
        assert ids == sorted(want, key=lambda i: (-_date_key(by_id[i], sort), i))
    paged = [h.id for off in range(0, len(ids), 4) for h in search(backend, text, sort=sort, limit=4, offset=off).hits]
    assert paged == ids
    cursor, walked = None, []
    while True:
        page = search(backend, text, sort=sort, limit=3, search_after=cursor)
        walked += [h.id for h in page.hits]
        if not page.next_cursor:
            break
        cursor = page.next_cursor
    assert walked == ids


def test_unknown_sort_is_refused(backend: Index) -> None:
    with pytest.raises(ValueError, match="unknown sort"):
        search(backend, "battery", sort="title")


def test_scored_query_ranks_title_match_first(backend: Index) -> None:
    """Scores differ between engines; both rank a title hit above description-only hits (FIELD_BOOSTS)."""
    hits = search(backend, "shielding").hits
    assert "shielding" in analyze(hits[0].document.title())
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:], strict=False))


def test_filters(backend: Index, corpus: list[PatentDocument]) -> None:
    filters = Filters(countries=["us"], published_from=date(2014, 1, 1), ipc_prefixes=["H05K", "A01"])
    result = backend.search(SearchRequest(MatchAll(), filters=filters, limit=100))
    want = {d.id for d in corpus if d.pn.country == "US" and d.publication_date and
            d.publication_date >= date(2014, 1, 1) and any(c.symbol.startswith(("H05K", "A01")) for c in d.ipc)}
    assert want and {h.id for h in result.hits} == want


@pytest.mark.parametrize("text", BAD_QUERIES)
def test_bad_query_is_a_syntax_error(backend: Index, text: str) -> None:
    with pytest.raises(QuerySyntaxError) as err:
        backend.search(SearchRequest(parse_query(text)))
    assert err.value.query == text


def test_get_roundtrip(backend: Index, corpus: list[PatentDocument]) -> None:
    for doc in corpus[:5]:
        stored = backend.get(doc.id)
        assert stored is not None and stored.to_dict() == doc.to_dict()
    assert backend.get("XX-0000000-A1") is None


def test_knn_top1_is_the_document_itself(backend: Index, corpus: list[PatentDocument]) -> None:
    vectors = vectors_for(corpus)
    distinct = [d for d in corpus if sum(1 for v in vectors.values() if v == vectors[d.id]) == 1]
    for doc in distinct[:6]:
        hits = backend.knn(vectors[doc.id], 3)
        assert hits[0].id == doc.id
        assert hits[0].score == pytest.approx(1.0, abs=1e-3)
    only_cn = backend.knn(vectors[corpus[0].id], 10, Filters(countries=["CN"]))
    assert only_cn and {h.document.pn.country for h in only_cn} == {"CN"}


def test_knn_top10_is_exact_cosines_top10(backend: Index, corpus: list[PatentDocument]) -> None:
    """Nearest stored vectors (HNSW on the node; brute force embedded) against exact cosine, every document's
    vector as the query, unfiltered and in a date window: recall@10 (up to ties) 1.0 on this small index."""
    import numpy as np

    vectors = vectors_for(corpus)
    ids = [d.id for d in corpus]
    matrix = np.array([vectors[i] for i in ids], dtype=np.float64)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    window = date(2005, 1, 1)
    in_window = np.array([bool(d.publication_date and d.publication_date >= window) for d in corpus])
    assert 10 < in_window.sum() < len(corpus)
    recalls = []
    for filters, allowed in ((None, np.ones(len(ids), bool)), (Filters(published_from=window), in_window)):
        for q in matrix:
            cos = np.where(allowed, matrix @ q, -np.inf)
            tenth = float(np.sort(cos)[-10])
            hits = backend.knn(q.tolist(), 10, filters)
            assert len(hits) == 10 and all(allowed[ids.index(h.id)] for h in hits)
            recalls.append(sum(1 for h in hits if cos[ids.index(h.id)] >= tenth - 1e-3) / 10)
            assert hits[0].score == pytest.approx(float(cos.max()), abs=0.02)
    assert min(recalls) == 1.0, sum(recalls) / len(recalls)


def test_stored_vectors_and_their_model(backend: Index, corpus: list[PatentDocument]) -> None:
    """StoredVectors and VectorModelTag, which a preview needs to take its candidates from `knn`."""
    assert isinstance(backend, StoredVectors) and isinstance(backend, VectorModelTag)
    vectors = vectors_for(corpus)
    stored = backend.vectors([*[d.id for d in corpus[:5]], "XX-0000000-A1"])
    assert stored == {d.id: pytest.approx(vectors[d.id]) for d in corpus[:5]}
    assert backend.vectors([]) == {}
    assert backend.without_vectors() == (0, [])
    assert backend.without_vectors(Filters(countries=["CN"]), limit=1) == (0, [])
    assert backend.vector_model() is None
    try:
        backend.set_vector_model("model-a")
        assert backend.vector_model() == "model-a"
    finally:
        backend.set_vector_model(None)
    assert backend.vector_model() is None


def test_backends_agree(opened: dict[str, Index], request: pytest.FixtureRequest) -> None:
    """The same tree on both backends: same hit sets, totals, facet counts and highlight presence."""
    request.getfixturevalue("es_url")
    embedded, es = opened["embedded"], opened["es"]
    for text, _ in QUERIES:
        a, b = search(embedded, text, facets=FACETS), search(es, text, facets=FACETS)
        assert {h.id for h in a.hits} == {h.id for h in b.hits}, text
        assert a.total == b.total, text
        assert {k: [(v.value, v.count) for v in vs] for k, vs in a.facets.items()} == {
            k: [(v.value, v.count) for v in vs] for k, vs in b.facets.items()}, text
        assert {h.id: bool(h.highlights) for h in a.hits} == {h.id: bool(h.highlights) for h in b.hits}, text


def test_upsert_idempotent_delete_and_documents_since(
        backend: Index, corpus: list[PatentDocument]) -> None:
    """Mutating: runs last in the module (pytest keeps definition order)."""
    before = backend.count()
    assert before == len(corpus)
    since = list(backend.documents_since(0, limit=7))
    assert [d.id for _, d in since] and {d.id for _, d in since} == {d.id for d in corpus}
    assert [s for s, _ in since] == sorted(s for s, _ in since)
    watermark = since[-1][0]
    again = corpus[:3]
    report = backend.upsert(again)
    assert sorted(report.indexed) == sorted(d.id for d in again) and not report.failed
    assert backend.count() == before
    newer = list(backend.documents_since(watermark))
    assert [d.id for _, d in newer] == [d.id for d in again]
    assert backend.delete([again[0].id, "XX-0000000-A1"]) == 1
    assert backend.count() == before - 1
    assert backend.get(again[0].id) is None
    assert again[0].id not in {h.id for h in search(backend, "pn:" + again[0].pn.docdb).hits}


@pytest.mark.parametrize("name", BACKENDS)
def test_one_result_per_family_over_every_page(name: str, corpus: list[PatentDocument], tmp_path: Path,
                                               request: pytest.FixtureRequest,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Paging by families (patentsift.searching.family_page, read with the cursor a few documents at a time):
    every family of the result set shows exactly once, stood for by its first member in the sort order."""
    import dataclasses

    from patentsift import searching

    docs = [dataclasses.replace(d, family_id=f"F{i // 3}" if i % 4 else None) for i, d in enumerate(corpus)]
    index = _open(name, request, tmp_path)
    try:
        assert not index.upsert(docs).failed
        monkeypatch.setattr(searching, "FAMILY_SCAN_CHUNK", 4)  # many cursor steps even on a small corpus
        key = lambda d: d.family_id or f"doc:{d.id}"  # noqa: E731
        first: dict[str, str] = {}
        for hit in searching.collect_hits(index, "*", sort="pd")[0]:
            first.setdefault(key(hit.document), hit.id)
        assert len(docs) > len(first) == len({key(d) for d in docs})
        shown: list[str] = []
        offset = 0
        while True:
            page = searching.family_page(index, "*", offset=offset, size=3, facets=(), sort="pd")
            shown += [g.hit.id for g in page.groups]
            if not page.more:
                break
            offset += 3
        assert shown == list(first.values())
        assert page.result.total == len(docs)
    finally:
        if drop := getattr(index, "drop", None):
            drop()
        index.close()
