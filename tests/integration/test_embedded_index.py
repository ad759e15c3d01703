"""EmbeddedIndex on real patent-office documents: every query node and field, facets, highlights, pagination,
vectors, persistence and failure modes. Expected hits come from a naive evaluation over the documents."""

from __future__ import annotations

import dataclasses
import re
import sqlite3
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from harvest.formats import parse_raw
from harvest.raw import RawDocument, Reject
from index.analysis import analyze
from index.base import Filters, IndexError_, SearchRequest
from index.embedded import EmbeddedIndex
from index.model import PatentDocument
from index.query.ast import (
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
from index.query.parser import parse_query

PN = "US-11646472-B2"
CN = "CN-115212463-A"


# --- documents and index ------------------------------------------------------------------------------------

def _parse(path: Path) -> list[PatentDocument]:
    data = path.read_bytes().removeprefix(b"\xef\xbb\xbf")
    docs: list[PatentDocument] = []
    for i, part in enumerate(p for p in re.split(rb"(?=<\?xml[\s?])", data) if p.strip()):
        try:
            docs.extend(parse_raw(RawDocument(part, str(path), i + 1), fetched_at="2026-01-01T00:00:00+00:00"))
        except Reject as exc:
            assert exc.skip, exc.reason  # only sequence listings are expected to be refused
    return docs


@pytest.fixture(scope="module")
def docs(shared_patents: Path) -> list[PatentDocument]:
    files = [shared_patents / "uspto-grant" / "weekly" / "ipg130416.xml",
             *sorted((shared_patents / "uspto-grant" / "single").glob("*.xml")),
             *sorted((shared_patents / "cn").glob("*.xml"))]
    out = [d for f in files for d in _parse(f)]
    assert len(out) >= 35 and len({d.id for d in out}) == len(out)
    return out


@pytest.fixture(scope="module")
def index(docs: list[PatentDocument], tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedIndex]:
    ix = EmbeddedIndex(tmp_path_factory.mktemp("embedded") / "index.sqlite")
    report = ix.upsert(docs)
    assert report.failed == [] and sorted(report.indexed) == sorted(d.id for d in docs)
    yield ix
    ix.close()


@pytest.fixture()
def small(docs: list[PatentDocument], tmp_path: Path) -> Iterator[EmbeddedIndex]:
    """A fresh index of a few documents, for tests that write."""
    ix = EmbeddedIndex(tmp_path / "small.sqlite", timeout=0.2)
    ix.upsert(_subset(docs))
    yield ix
    ix.close()


def _subset(docs: list[PatentDocument]) -> list[PatentDocument]:
    return [d for d in docs if d.id in (PN, CN)] + [d for d in docs if d.id not in (PN, CN)][:8]


def _search(ix: EmbeddedIndex, query: str | Query, **kw: object) -> list[str]:
    q = parse_query(query) if isinstance(query, str) else query
    return [h.id for h in ix.search(SearchRequest(q, limit=1000, **kw)).hits]  # type: ignore[arg-type]


from tests.reference_semantics import expected_facets, matches  # noqa: E402

# Every node type on every field it applies to, booleans and NOT; each must find at least one document.
QUERIES = [
    "battery", "ti:battery", "ab:semiconductor", "cl:wherein", "desc:embodiment", "pa:samsung", "in:kim",
    "pa:\"polyplus battery\"", '"light emitting"', 'ti:"printed circuit board"', "ab:\"insulating layer\"",
    "wire*", "ti:semicon*", "cl:compris*", "pa:hyn*",
    "ipc:H01L", "ipc:H01L21", "ipc:H01L21/336", "ipc:\"H01L 21/336\"", "ipc:H01*", "ipc:G06F15", "cpc:H01M",
    "cpc:G01S7/486*", "pd:2013", "pd:2013-04", "pd:2023-05-09", "pd:[2014-01-01 TO 2018-12-31]",
    "pd:{2013-04-16 TO *]", "pd:[* TO 2005-02-22}", "ad:[2012-01-01 TO 2012-12-31]",
    "pn:11646472", "pn:US11646472", "pn:US-11646472-B2", "pn:US1164*", "pn:D680087", "an:US13299685",
    "an:us132*", "cc:cn", "kind:s1", "kind:B*", "lang:zh",
    "battery OR semiconductor", "semiconductor AND device", "semiconductor AND NOT transistor", "NOT cc:US",
    "(ti:apparatus OR ti:device) AND pd:2013", "NOT (battery OR wire*) AND ipc:H01*",
    "ti:放射治疗", "显示设备", "放射*", "ti:医用 OR ti:battery",
]


@pytest.mark.parametrize("text", QUERIES)
def test_query_hits_match_reference(index: EmbeddedIndex, docs: list[PatentDocument], text: str) -> None:
    q = parse_query(text)
    want = {d.id for d in docs if matches(q, d)}
    assert want, f"reference finds nothing for {text!r}: pick another word"
    result = index.search(SearchRequest(q, limit=1000))
    assert {h.id for h in result.hits} == want
    assert result.total == len(want)


def test_pn_in_every_spelling(index: EmbeddedIndex) -> None:
    for spelling in ("11646472", "US11646472", "US-11646472-B2", "US11646472B2", "us 11,646,472 b2"):
        assert _search(index, Term("pn", spelling)) == [PN], spelling
    assert _search(index, Term("pn", "11646473")) == []


def test_chinese_title_query(index: EmbeddedIndex) -> None:
    result = index.search(SearchRequest(parse_query("ti:放射治疗")))
    assert [h.id for h in result.hits] == [CN]
    assert result.hits[0].highlights["ti"] == ["一种医用<mark>放射治疗</mark>装置"]
    assert _search(index, "ti:治疗放射") == []  # bigrams in order, adjacent


def test_node_types_built_directly(index: EmbeddedIndex, docs: list[PatentDocument]) -> None:
    trees = [
        And((Term(None, "semiconductor"), Not(Phrase("ti", "thin film")))),
        Or((Prefix("ipc", "H02"), Term("kind", "s1"), Range("pd", None, "2003-12-31"))),
        And((MatchAll(), Not(Term("cc", "US")))),
        Not(MatchAll()),
        Range("ad", "2011-01-01", "2011-12-31", include_low=False),
    ]
    for tree in trees:
        assert set(_search(index, tree)) == {d.id for d in docs if matches(tree, d)}, tree


def test_queries_a_field_cannot_take_are_errors(index: EmbeddedIndex) -> None:
    for tree in (Range("ti", "a", "b"), Prefix("pd", "2013"), Phrase("ad", "2013"), Term("pd", "soon"),
                 Range("cc", "A", "B")):
        with pytest.raises(QuerySyntaxError):
            index.search(SearchRequest(tree))
    with pytest.raises(ValueError, match="cursor"):
        index.search(SearchRequest(MatchAll(), search_after="not-a-cursor"))


def test_text_matches_rank_by_bm25_with_field_boosts(index: EmbeddedIndex) -> None:
    hits = index.search(SearchRequest(parse_query("battery"), limit=100)).hits
    assert len(hits) >= 3 and all(h.score > 0 for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    title_hits = [h for h in hits if "battery" in analyze(h.document.title())]
    assert title_hits and hits[0].id in {h.id for h in title_hits}


def test_unscored_results_order_by_publication_date_then_id(index: EmbeddedIndex,
                                                             docs: list[PatentDocument]) -> None:
    hits = index.search(SearchRequest(parse_query("cc:US OR cc:CN"), limit=1000)).hits
    assert {h.score for h in hits} == {0.0}
    by_date = sorted(docs, key=lambda d: d.id)
    by_date.sort(key=lambda d: d.publication_date or date.min, reverse=True)
    assert [h.id for h in hits] == [d.id for d in by_date]


@pytest.mark.parametrize("text", ["semiconductor OR battery OR wire*", "pd>=2005"])
def test_offset_and_cursor_pages_give_the_same_sequence(index: EmbeddedIndex, text: str) -> None:
    q = parse_query(text)
    full = index.search(SearchRequest(q, limit=1000))
    everything = [h.id for h in full.hits]
    assert len(everything) > 8 and full.next_cursor is None
    by_offset = [h.id for off in range(0, len(everything), 3)
                 for h in index.search(SearchRequest(q, limit=3, offset=off)).hits]
    cursor, by_cursor, pages = None, [], 0
    while True:
        page = index.search(SearchRequest(q, limit=3, search_after=cursor, facets=("year",)))
        assert page.total == len(everything)
        by_cursor += [h.id for h in page.hits]
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert by_offset == everything and by_cursor == everything
    assert pages == -(-len(everything) // 3)


@pytest.mark.parametrize("text", ["*", "pd:2013 AND NOT ipc:H01L", "battery OR 显示设备"])
def test_facets_count_the_whole_result_set(index: EmbeddedIndex, docs: list[PatentDocument], text: str) -> None:
    q = MatchAll() if text == "*" else parse_query(text)
    result = index.search(SearchRequest(q, facets=("ipc", "cpc", "applicant", "year", "country", "kind"), limit=1))
    want = expected_facets([d for d in docs if matches(q, d)])
    assert {k: [(v.value, v.count) for v in vs] for k, vs in result.facets.items()} == want
    assert len(result.hits) == 1 and result.total > 1


def test_highlights_mark_matched_tokens_in_original_text(index: EmbeddedIndex) -> None:
    hits = index.search(SearchRequest(parse_query('ab:battery OR cl:"light emitting" OR ti:semicon*'), limit=50)).hits
    assert hits
    for hit in hits:
        snippets = [s for field in ("ti", "ab", "cl") for s in hit.highlights.get(field, [])]
        assert snippets and all("<mark>" in s for s in snippets), hit.id
        for field in ("ab", "cl"):
            assert all(len(re.sub(r"</?mark>", "", s)) <= 260 for s in hit.highlights.get(field, []))
        if "ti" in hit.highlights:
            assert re.sub(r"</?mark>", "", hit.highlights["ti"][0]) == " ".join(hit.document.title().split())
    marked = {m.lower() for h in hits for ss in h.highlights.values() for s in ss for m in re.findall(
        r"<mark>(.*?)</mark>", s)}
    assert "battery" in marked and "light emitting" in marked
    assert all(m == "battery" or m == "light emitting" or m.startswith("semicon") for m in marked), marked
    plain = index.search(SearchRequest(parse_query("battery"), highlight=False)).hits
    assert plain and all(h.highlights == {} for h in plain)
    negated = index.search(SearchRequest(parse_query("cc:US AND NOT battery"))).hits
    assert negated and all(h.highlights == {} for h in negated)


def test_filters(index: EmbeddedIndex, docs: list[PatentDocument]) -> None:
    first = docs[0]
    cases = [
        (Filters(countries=["cn"]), lambda d: d.pn.country == "CN"),
        (Filters(kinds=["S1", "b1"]), lambda d: d.pn.kind in ("S1", "B1")),
        (Filters(published_from=date(2014, 1, 1), published_to=date(2018, 12, 31)),
         lambda d: d.publication_date and date(2014, 1, 1) <= d.publication_date <= date(2018, 12, 31)),
        (Filters(ipc_prefixes=["H01L21", "B26D"]),
         lambda d: any(c.symbol.startswith(("H01L21", "B26D")) for c in d.ipc)),
        (Filters(cpc_prefixes=["H01G"]), lambda d: any(c.symbol.startswith("H01G") for c in d.cpc)),
        (Filters(applicants=["Samsung Electronics Co., Ltd."]),
         lambda d: "SAMSUNG ELECTRONICS" in {p.normalized for p in d.applicants}),
        (Filters(ids=[first.id, PN, "XX-1-A"]), lambda d: d.id in (first.id, PN)),
        (Filters(countries=["US"], ipc_prefixes=["H01"]),
         lambda d: d.pn.country == "US" and any(c.symbol.startswith("H01") for c in d.ipc)),
    ]
    for filters, keep in cases:
        want = {d.id for d in docs if keep(d)}
        assert want, filters
        assert set(_search(index, MatchAll(), filters=filters)) == want, filters
    assert set(_search(index, "battery", filters=Filters(countries=["CN"]))) == set()


# --- writes, persistence, sequence numbers --------------------------------------------------------------

def test_persistence_across_reopen(small: EmbeddedIndex, docs: list[PatentDocument]) -> None:
    path, n, last = small.path, small.count(), small.last_seq()
    small.close()
    with pytest.raises(IndexError_, match="closed"):
        small.count()
    with EmbeddedIndex(path) as again:
        assert again.count() == n == len(_subset(docs))
        stored = again.get(PN)
        assert stored is not None and stored.to_dict() == next(d for d in docs if d.id == PN).to_dict()
        assert again.get("US11646472B2") is not None and again.get("XX-0-A") is None
        assert _search(again, "pn:11646472") == [PN] and _search(again, "ti:放射治疗") == [CN]
        again.upsert([stored])
        assert again.last_seq() == last + 1


def test_upsert_is_idempotent_and_replaces(small: EmbeddedIndex, docs: list[PatentDocument]) -> None:
    subset = _subset(docs)
    n = small.count()
    report = small.upsert(subset + subset[:2])  # the same documents again, some twice in one batch
    assert report.failed == [] and small.count() == n
    assert len(_search(small, "pn:11646472")) == 1
    doc = next(d for d in subset if d.id == PN)
    changed = dataclasses.replace(doc, titles={"en": "Zyxwv flux capacitor"}, ipc=[], cpc=[])
    small.upsert([changed])
    assert small.count() == n
    assert _search(small, "ti:zyxwv") == [PN] and _search(small, "ti:seawater") == []
    assert PN not in _search(small, "ipc:H01M")
    facets = small.search(SearchRequest(MatchAll(), facets=("ipc",))).facets["ipc"]
    assert "H01M" not in {f.value for f in facets}


def test_partial_documents_merge_into_the_stored_record(small: EmbeddedIndex, docs: list[PatentDocument]) -> None:
    doc = next(d for d in docs if d.id == PN)
    partial = PatentDocument(pn=doc.pn, abstracts={"en": "Qwertyuiop abstract from a second source"}, partial=True)
    small.upsert([partial])
    merged = small.get(PN)
    assert merged is not None and merged.claims == doc.claims and merged.titles == doc.titles
    assert _search(small, "ab:qwertyuiop") == [PN] and _search(small, "ti:seawater") == [PN]


def test_delete(small: EmbeddedIndex) -> None:
    n = small.count()
    small.set_vectors({PN: [1.0, 0.0], CN: [0.0, 1.0]})
    assert small.delete([PN, "XX-0000000-A1"]) == 1
    assert small.count() == n - 1 and small.get(PN) is None
    assert _search(small, "pn:11646472") == [] and PN not in _search(small, "battery")
    assert _search(small, "ipc:H01M") == []
    assert [h.id for h in small.knn([1.0, 0.0], 5)] == [CN]
    assert small.delete([PN]) == 0


def test_documents_since(small: EmbeddedIndex) -> None:
    rows = list(small.documents_since(0, limit=3))  # read three at a time, all of them
    seqs = [s for s, _ in rows]
    assert len(rows) == small.count() and seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    mark = seqs[-1]
    assert list(small.documents_since(mark)) == []
    first = rows[0][1]
    small.upsert([first])
    newer = list(small.documents_since(mark))
    assert [d.id for _, d in newer] == [first.id] and newer[0][0] > mark
    assert _search(small, MatchAll(), filters=Filters(min_seq=mark)) == [first.id]
    small.delete([first.id])
    small.upsert([rows[1][1]])
    assert list(small.documents_since(mark))[-1][0] > newer[0][0]  # sequence numbers are never reused


def test_a_document_that_cannot_be_indexed_is_reported(small: EmbeddedIndex, docs: list[PatentDocument]) -> None:
    good = docs[-1]
    bad = dataclasses.replace(docs[-2], publication_date="2013-13-45")  # type: ignore[arg-type]
    report = small.upsert([bad, good])
    assert report.indexed == [good.id]
    assert [i for i, _ in report.failed] == [bad.id] and "AttributeError" in report.failed[0][1]


# --- vectors ------------------------------------------------------------------------------------------------

def test_knn_orders_by_cosine(small: EmbeddedIndex) -> None:
    ids = [d.id for _, d in small.documents_since(0)]
    rng = np.random.default_rng(7)
    vectors = {i: rng.normal(size=8).astype(np.float32) for i in ids}
    small.set_vectors({i: v.tolist() for i, v in vectors.items()})
    query = rng.normal(size=8)
    cos = {i: float(v @ query / np.linalg.norm(v) / np.linalg.norm(query)) for i, v in vectors.items()}
    want = sorted(cos, key=lambda i: -cos[i])[:4]
    hits = small.knn(query.tolist(), 4)
    assert [h.id for h in hits] == want
    assert [h.score for h in hits] == pytest.approx([cos[i] for i in want], abs=1e-5)
    assert small.knn(vectors[PN].tolist(), 1)[0].id == PN
    only_cn = small.knn(query.tolist(), 4, Filters(countries=["CN"]))
    assert [h.id for h in only_cn] == [i for i in sorted(cos, key=lambda i: -cos[i]) if i.startswith("CN")][:4]
    with pytest.raises(IndexError_, match="dimension"):
        small.set_vectors({PN: [1.0, 2.0]})
    with pytest.raises(ValueError, match="dimension"):
        small.knn([1.0, 2.0], 3)
    with pytest.raises(KeyError):
        small.set_vectors({"XX-1-A": [0.0] * 8})


def test_vectors_survive_reupsert_unless_the_text_changes(small: EmbeddedIndex, docs: list[PatentDocument]) -> None:
    small.set_vectors({PN: [1.0, 0.0, 0.0], CN: [0.0, 1.0, 0.0]})
    doc = next(d for d in docs if d.id == PN)
    small.upsert([doc])
    assert [h.id for h in small.knn([1.0, 0.0, 0.0], 1)] == [PN]
    small.upsert([dataclasses.replace(doc, titles={"en": "A different title"})])
    assert [h.id for h in small.knn([1.0, 0.0, 0.0], 5)] == [CN]


# --- failures a user can act on ------------------------------------------------------------------------------

def test_corrupt_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite"
    path.write_bytes(b"this is not an SQLite database" * 100)
    with pytest.raises(IndexError_, match="corrupt"):
        EmbeddedIndex(path)


def test_locked_database_is_a_clear_error(small: EmbeddedIndex, docs: list[PatentDocument]) -> None:
    other = sqlite3.connect(small.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        assert small.count() > 0  # readers are not blocked (WAL)
        with pytest.raises(IndexError_, match="locked"):
            small.upsert(docs[:1])
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert small.upsert(docs[:1]).indexed == [docs[0].id]


def test_a_directory_path_holds_index_sqlite(tmp_path: Path, docs: list[PatentDocument]) -> None:
    with EmbeddedIndex(tmp_path) as ix:
        ix.upsert(docs[:2])
    assert (tmp_path / "index.sqlite").exists()


def test_highlight_rendering_escapes_html_and_windows_long_text(docs: list[PatentDocument]) -> None:
    from index.embedded.compile import compile_query
    from index.embedded.highlight import highlight

    matches = compile_query(parse_query('battery OR "light emitting"')).matches
    out = highlight({"ti": "A <b>Battery</b> & LIGHT-EMITTING   diode"}, matches)
    assert out == {"ti": ["A &lt;b&gt;<mark>Battery</mark>&lt;/b&gt; &amp; <mark>LIGHT-EMITTING</mark> diode"]}
    doc = next(d for d in docs if d.id == PN)
    claims = "\n".join(c.text for c in doc.claims)
    snippets = highlight({"cl": claims}, matches)["cl"]
    assert 1 <= len(snippets) <= 3
    for s in snippets:
        plain = re.sub(r"</?mark>", "", s)
        assert "<mark>battery</mark>" in s.lower() and len(plain) <= 260
        assert " ".join(plain.split()) in " ".join(claims.split()).replace("&", "&amp;")
