"""The embedded index's batch paths for matching (`lexical_scores`, `highlight_many`) on real documents: they must
give exactly what one `search` per query gives, and the engine must match the same with or without them."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from index.analysis import MAX_TOKEN_LENGTH, analyze_spans
from index.base import Filters, SearchRequest
from index.embedded import EmbeddedIndex
from index.embedded.highlight import token_spans
from index.embedded.store import _highlight_texts
from index.model import PatentDocument, PublicationNumber
from index.query.ast import Or, Query, Term
from index.query.parser import parse_query
from matching import fusion
from matching.engine import MatchingEngine, lexical_query
from patentsift.wiring import standalone_match_store
from subscribers.profiles import Profile
from tests.integration.fixture_documents import first_of_each_id

N_COPIES = 60  # documents upserted again under new numbers: the "new documents" window
QUERIES = [
    "battery OR semiconductor OR display OR wafer",
    '"light emitting" OR "printed circuit" OR ti:device',
    "semicon* OR batt*",
    "semiconductor AND NOT battery",
    "ipc:H01L AND layer",
    "battery OR ipc:H01M",
    "ab:(substrate OR electrode) AND pd:[2010 TO 2030]",
    "显示设备 OR 电池",
    "pa:samsung OR in:kim",
    "zzzunknownword",
]


@pytest.fixture(scope="module")
def corpus(shared_patents: Path) -> list[PatentDocument]:
    docs = first_of_each_id(shared_patents)
    assert len(docs) >= 100
    return docs


@pytest.fixture(scope="module")
def world(corpus: list[PatentDocument], tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, ...]]:
    """An index of the corpus, then a window of new documents: copies under new numbers, and three old
    documents upserted again (new sequence numbers, old row ids)."""
    ix = EmbeddedIndex(tmp_path_factory.mktemp("batch") / "index.sqlite")
    assert not ix.upsert(corpus).failed
    mark = ix.last_seq()
    texts = [d for d in corpus if d.abstract() and d.claims]  # the many bibliographic-only records have no text
    assert len(texts) >= N_COPIES + 3
    copies = [dataclasses.replace(d, pn=PublicationNumber("XX", f"{7_000_000 + k}", "A1"), application_number=f"XX{k}",
                                  family_id=None, priorities=[]) for k, d in enumerate(texts[:N_COPIES])]
    assert not ix.upsert([*copies, *texts[-3:]]).failed
    window = [d for _, d in ix.documents_since(mark, 10_000)]
    assert len(window) == N_COPIES + 3
    queries: list[Query] = [parse_query(q) for q in QUERIES]
    queries += [q for q in (lexical_query(Profile(name="x", description=d.title())) for d in texts[::7]) if q]
    yield ix, mark, window, queries
    ix.close()


def _reference(ix: EmbeddedIndex, q: Query, filters: Filters, limit: int) -> list[tuple[str, float]]:
    hits = ix.search(SearchRequest(query=q, filters=filters, limit=limit, highlight=False)).hits
    return [(h.id, h.score) for h in hits if h.score > 0]


def test_lexical_scores_equal_one_search_per_query(world) -> None:  # noqa: ANN001
    ix, mark, window, queries = world
    last = ix.last_seq()
    first_half = [d.id for d in window[: len(window) // 2]]
    cases = [  # (filters, max_seq) for lexical_scores; the filters search needs for the same documents
        ((Filters(min_seq=mark), None), Filters(min_seq=mark)),
        ((Filters(min_seq=mark), mark + len(first_half)), Filters(min_seq=mark, ids=first_half)),
        ((Filters(min_seq=mark + 5, countries=["XX"]), last), Filters(min_seq=mark + 5, countries=["XX"])),
        ((None, None), Filters()),
    ]
    nonempty = 0
    for (filters, max_seq), same in cases:
        for limit in (5, 200):
            got = ix.lexical_scores(queries, filters, limit, max_seq)
            assert len(got) == len(queries)
            for q, scores in zip(queries, got, strict=True):
                want = _reference(ix, q, same, limit)
                assert [i for i, _ in want] == list(scores), q
                assert [s for _, s in want] == pytest.approx(list(scores.values()), rel=1e-12), q
                nonempty += bool(scores)
    assert nonempty > len(queries)  # most queries find something in most windows
    assert ix.lexical_scores(queries[:2], Filters(min_seq=last)) == [{}, {}]


def test_highlight_many_equals_search_highlights(world) -> None:  # noqa: ANN001
    ix, _, window, queries = world
    requests = [(q, window[k % 7::3]) for k, q in enumerate(queries)]
    got = ix.highlight_many(requests)
    marked = 0
    for (q, docs), marks in zip(requests, got, strict=True):
        hits = ix.search(SearchRequest(query=q, filters=Filters(ids=[d.id for d in docs]), limit=len(docs))).hits
        assert marks == {h.id: h.highlights for h in hits if h.highlights}, q
        marked += len(marks)
    assert marked > 50


def test_token_spans_equal_analyze_spans(corpus: list[PatentDocument]) -> None:
    texts = [t for d in corpus for t in _highlight_texts(d).values()]
    texts += ["U.S.A. don't 1,000.5 x_y a.b. ,x, 3.5% e.g.", "a" * (MAX_TOKEN_LENGTH * 2 + 7) + " b.c" + "d" * 300]
    assert sum(t.isascii() for t in texts) > 100 and any(not t.isascii() for t in texts)
    for text in texts:
        assert token_spans(text) == analyze_spans(text)


def test_calibrate_bm25_takes_arrays() -> None:
    bg = fusion.Background(bm25_median=4.0)
    raw = np.array([0.0, 4.0, 12.0, -1.0, np.inf, 1e9])
    assert list(fusion.calibrate_bm25(raw, bg)) == [fusion.calibrate_bm25(float(s), bg) for s in raw]
    assert isinstance(fusion.calibrate_bm25(4.0, bg), float)


class _SearchOnly:
    """The index without its batch paths: the engine falls back to one search per profile."""

    def __init__(self, ix: EmbeddedIndex) -> None:
        self.ix = ix

    def __getattr__(self, name: str) -> Any:
        if name in ("lexical_scores", "highlight_many"):
            raise AttributeError(name)
        return getattr(self.ix, name)


def test_engine_matches_the_same_with_and_without_batch_paths(world, tmp_path: Path) -> None:  # noqa: ANN001
    ix, mark, window, _ = world
    results = []
    for k, index in enumerate((ix, _SearchOnly(ix))):
        store = standalone_match_store(tmp_path / f"p{k}.sqlite")
        profiles = [
            Profile(name="semis", description="semiconductor wafer transistor", query="semicon* OR wafer OR chip",
                    classes=["H01L"], threshold=0.05, max_items=15),
            Profile(name="batteries", description="battery electrode electrolyte", threshold=0.05, max_items=15,
                    exclude_terms=["lithium ion"]),
            Profile(name="boolean", query="(device OR display) AND NOT battery", classes=["G09G"], threshold=0.05),
            Profile(name="words", description=window[0].title(), applicants=[
                a.name for a in window[1].applicants], threshold=0.05, max_items=30),
        ]
        for p in profiles:
            store.save_profile(p)
            store.set_watermark(p.name, mark)
        engine = MatchingEngine(index, store)  # no embedder: lexical, classes and applicants
        engine.options.batch_size = 25  # several batches, the last one partial
        report = engine.run()
        results.append({name: [(m.doc.id, m.seq, m.score, m.breakdown, m.explanation.to_dict()) for m in ms]
                        for name, ms in report.matches.items()})
        store.close()
    fast, slow = results
    assert fast == slow
    assert all(fast.get(p) for p in ("semis", "batteries", "words"))
    assert any(e["terms"] for ms in fast.values() for *_, e in ms)


def test_or_of_terms_is_a_text_disjunction() -> None:
    from index.embedded.compile import compile_query

    assert compile_query(Or((Term(None, "a"), Term("ti", "b")))).text_only
    assert compile_query(parse_query('"light emitting" OR semi*')).text_only
    assert not compile_query(parse_query("a AND b")).text_only
    assert not compile_query(parse_query("a OR ipc:H01L")).text_only
    assert not compile_query(parse_query("a OR NOT b")).text_only
