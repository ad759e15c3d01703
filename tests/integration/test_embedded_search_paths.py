"""EmbeddedIndex.search's fast paths (scores cut in numpy, facets from cached columns, the newest-first index)
give exactly what the generic SQL (COUNT, ORDER BY over every match, GROUP BY per facet) gives; the facet cache
follows writes from this object and from other connections; an index file older than the pdkey index gets it."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from bench.corpus import CorpusGenerator
from index.base import FACETS, Filters, SearchRequest
from index.embedded import EmbeddedIndex
from index.embedded.compile import compile_cached, compile_filters
from index.embedded.store import _ADKEY
from index.model import PatentDocument
from index.query.parser import parse_query


@pytest.fixture(scope="module")
def corpus() -> list[PatentDocument]:
    return list(CorpusGenerator(5, max_description=300).documents(400))


@pytest.fixture(scope="module")
def ix(corpus: list[PatentDocument], tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedIndex]:
    index = EmbeddedIndex(tmp_path_factory.mktemp("paths") / "index.sqlite")
    assert not index.upsert(corpus).failed
    yield index
    index.close()


def _reference(ix: EmbeddedIndex, request: SearchRequest) -> tuple[Any, ...]:
    """The generic SQL path: (total, [(id, score)], facets, next cursor)."""
    compiled = compile_cached(request.query)
    fwhere, fparams = compile_filters(request.filters)
    params = [*compiled.params, *fparams]
    m_cte = (f"m AS (SELECT d.rid, d.id, d.pdkey, {_ADKEY} AS adkey, d.year, d.cc, d.kind FROM documents d "
             f"WHERE {compiled.where} AND {fwhere})")
    conn = ix.conn
    total = conn.execute(f"WITH {m_cte} SELECT COUNT(*) FROM m", params).fetchone()[0]
    rows, cursor = ix._page(conn, m_cte, params, compiled, request) if total else ([], None)
    ids = dict(conn.execute("SELECT rid, id FROM documents WHERE rid IN (SELECT value FROM json_each(?))",
                            (json.dumps([r for r, _ in rows]),)).fetchall())
    facets = {name: [(f.value, f.count) for f in ix._facet(conn, m_cte, params, name)] for name in request.facets}
    return total, [(ids[r], s) for r, s in rows], facets, cursor


def _fast(ix: EmbeddedIndex, request: SearchRequest) -> tuple[Any, ...]:
    res = ix.search(request)
    return (res.total, [(h.id, h.score) for h in res.hits],
            {k: [(f.value, f.count) for f in v] for k, v in res.facets.items()}, res.next_cursor)


QUERIES = ["*", "device", "device OR system", '"semiconductor device"', "devic*", "ti:method", "ipc:H01L",
           "device AND pd:[2005 TO 2012]", "(device OR method) AND ipc:H*", "device AND NOT system",
           "NOT device", "device OR cc:CN", "method OR NOT system", "ipc:G06F AND pd>=2010", "显示", "zzzqqq"]
FILTERS = [Filters(), Filters(countries=["US", "CN"]), Filters(published_from=date(2010, 1, 1)),
           Filters(ipc_prefixes=["H01", "G06"]), Filters(kinds=["B2"], published_to=date(2020, 6, 30))]


@pytest.mark.parametrize("text", QUERIES)
def test_fast_paths_give_what_the_generic_sql_gives(ix: EmbeddedIndex, text: str) -> None:
    q = parse_query(text)
    for filters in FILTERS:
        for sort in ("relevance", "pd", "ad"):
            for offset, limit in ((0, 7), (5, 3), (0, 0), (390, 20)):
                request = SearchRequest(q, filters, facets=FACETS if offset == 0 else (), limit=limit,
                                        offset=offset, sort=sort)
                want = _reference(ix, request)
                assert _fast(ix, request) == want, (text, filters, sort, offset)
            cursor, pages = None, 0
            while pages < 4:  # cursor pages continue the same sequence on both paths
                request = SearchRequest(q, filters, limit=4, search_after=cursor, sort=sort)
                want = _reference(ix, request)
                assert _fast(ix, request) == want, (text, filters, sort, "cursor", pages)
                cursor, pages = want[3], pages + 1
                if cursor is None:
                    break


def test_facets_follow_writes_here_and_from_other_connections(corpus: list[PatentDocument], tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite"
    with EmbeddedIndex(path) as one, EmbeddedIndex(path) as two:
        one.upsert(corpus[:50])
        everything = SearchRequest(parse_query("*"), facets=FACETS, limit=0)
        device = SearchRequest(parse_query("device"), facets=FACETS, limit=0)
        for request in (everything, device):
            assert _fast(one, request) == _reference(one, request)
        one.upsert(corpus[50:80])  # a write by this object
        for request in (everything, device):
            assert _fast(one, request) == _reference(one, request)
        assert one.search(everything).facets["country"][0].count <= 80
        two.upsert(corpus[80:120])  # a write by another connection
        two.delete([corpus[0].id, corpus[60].id])
        for request in (everything, device):
            assert _fast(one, request) == _reference(one, request)
        assert sum(f.count for f in one.search(everything).facets["kind"]) == 118


def test_an_index_file_without_the_pdkey_index_gets_it_when_opened(corpus: list[PatentDocument],
                                                                   tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite"
    with EmbeddedIndex(path) as ix:
        ix.upsert(corpus[:60])
        request = SearchRequest(parse_query("*"), facets=FACETS, limit=10)
        before = _fast(ix, request)
    conn = sqlite3.connect(path)
    conn.execute("DROP INDEX documents_pdkey")  # as written before the index existed
    conn.close()
    with EmbeddedIndex(path) as ix:
        assert ix.conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'documents_pdkey'").fetchone()
        assert ix.count() == 60 and _fast(ix, request) == before == _reference(ix, request)
