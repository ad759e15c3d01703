"""Matching end to end on real documents in an EmbeddedIndex with the real embedding model (tens of documents)."""

from __future__ import annotations

import dataclasses
from datetime import date
from pathlib import Path

import pytest

from index.embedded import EmbeddedIndex
from index.model import PatentDocument, PublicationNumber
from matching.engine import EngineOptions, MatchingEngine
from patentsift.wiring import standalone_match_store
from subscribers.profiles import Profile, validate_profile
from tests.integration.fixture_documents import first_of_each_id

N_DOCS = 40


@pytest.fixture(scope="module")
def corpus(shared_patents: Path) -> list[PatentDocument]:
    """Real documents: every semiconductor (H01L) one plus others, in file order, up to N_DOCS."""
    docs = first_of_each_id(shared_patents / "uspto-grant")
    semis = [d for d in docs if any(c.symbol.startswith("H01L") for c in d.ipc)]
    others = [d for d in docs if d not in semis and d.abstract()]
    chosen = (semis + others)[:N_DOCS]
    assert len(semis) >= 4 and len(chosen) == N_DOCS
    return chosen


@pytest.fixture
def world(tmp_path: Path, corpus: list[PatentDocument], embedder, cache):  # noqa: ANN001, ANN201
    index = EmbeddedIndex(tmp_path / "index.sqlite")
    assert not index.upsert(corpus).failed
    store = standalone_match_store(tmp_path / "patentsift.sqlite")
    semis = next(d for d in corpus if any(c.symbol.startswith("H01L") for c in d.ipc))
    profile = validate_profile(Profile(
        name="semis", owner="test", description="semiconductor device manufacturing: transistors, wafers, chips",
        query="semiconductor OR transistor OR wafer", classes=["H01L"], seeds=[semis.id], threshold=0.25,
        max_items=100), known_document=lambda pn: index.get(pn) is not None)
    store.save_profile(profile)
    yield index, store, MatchingEngine(index, store, embedder, cache), semis
    store.close()
    index.close()


def test_run_stores_explained_matches_and_rerun_adds_nothing(world) -> None:  # noqa: ANN001
    index, store, engine, seed = world
    report = engine.run()
    matches = report.matches["semis"]
    assert matches and len(report.stored["semis"]) == len(matches)
    assert [m.score for m in matches] == sorted((m.score for m in matches), reverse=True)
    assert all(m.score >= 0.25 for m in matches)
    semis = [m for m in matches if m.explanation.classes]
    assert semis and all(c.startswith("H01L") for m in semis for c in m.explanation.classes)
    worded = [m for m in matches if m.explanation.terms]
    assert worded and any("<mark>" in s for m in worded for v in m.explanation.snippets.values() for s in v)
    assert all(m.explanation.seed == seed.id and m.explanation.seed_similarity is not None for m in matches)
    assert {"dense", "lexical", "classes"} <= set(matches[0].breakdown)
    best_seed_match = next(m for m in matches if m.doc.id == seed.id)
    assert best_seed_match.explanation.seed_similarity == pytest.approx(1.0, abs=1e-3)
    # vectors were stored in the index as part of the run: the seed's nearest neighbour is itself
    assert index.knn(engine.embed_documents([seed])[0], 1)[0].id == seed.id
    assert store.watermark("semis") == index.last_seq()
    stored = store.matches("semis")
    assert {m.doc_id for m in stored} == {m.doc.id for m in matches}
    assert stored[0].explanation["terms"] is not None and stored[0].breakdown

    again = engine.run()
    assert again.stored["semis"] == [] if "semis" in again.stored else True
    assert len(store.matches("semis")) == len(stored)
    # a forced rerun from watermark 0 is still idempotent: the same documents are never stored twice
    store.set_watermark("semis", 0)
    forced = engine.run()
    assert forced.stored["semis"] == [] and len(store.matches("semis")) == len(stored)


def test_one_invention_is_sent_once_also_across_runs(world) -> None:  # noqa: ANN001
    index, store, engine, seed = world
    application = dataclasses.replace(seed, pn=PublicationNumber(seed.pn.country, "2099" + seed.pn.number[-7:], "A1"))
    assert application.application_number == seed.application_number
    index.upsert([application])
    report = engine.run()
    ids = {m.doc.id for m in report.matches["semis"]}
    assert len(ids & {seed.id, application.id}) == 1
    kept = next(m for m in report.matches["semis"] if m.doc.id in {seed.id, application.id})
    assert set(kept.explanation.duplicates) == {seed.id, application.id} - {kept.doc.id}
    # a later publication of the same invention (its grant re-issued under another kind) is not sent again
    later = dataclasses.replace(seed, pn=PublicationNumber(seed.pn.country, seed.pn.number, "B9"))
    index.upsert([later])
    rerun = engine.run()
    assert rerun.stored["semis"] == [] and rerun.suppressed["semis"] >= 1


def test_interrupted_run_resumes_from_watermark(world, tmp_path: Path, embedder, cache) -> None:  # noqa: ANN001
    index, store, _, _ = world
    engine = MatchingEngine(index, store, embedder, cache, EngineOptions(batch_size=10))

    def crash(seq: int) -> None:
        raise RuntimeError(f"killed after storing the batch up to seq {seq}")

    with pytest.raises(RuntimeError, match="killed"):
        engine.run(on_batch_stored=crash)
    assert store.watermark("semis") == 10
    first = {m.doc_id for m in store.matches("semis")}
    assert all(m.seq <= 10 for m in store.matches("semis"))
    engine.run()
    resumed = [m.doc_id for m in store.matches("semis")]
    assert len(resumed) == len(set(resumed)) and first <= set(resumed)
    assert store.watermark("semis") == index.last_seq()
    # the same as one uninterrupted run
    other = standalone_match_store(tmp_path / "other.sqlite")
    other.save_profile(store.profile("semis"))
    MatchingEngine(index, other, embedder, cache).run()
    assert {m.doc_id for m in other.matches("semis")} == set(resumed)
    other.close()


def test_preview_stores_nothing(world) -> None:  # noqa: ANN001
    _, store, engine, _ = world
    preview = engine.preview("semis", since=date(1900, 1, 1))
    assert preview and all(m.explanation for m in preview)
    assert store.matches("semis") == [] and store.watermark("semis") == 0
    later = engine.preview("semis", since=date(2100, 1, 1))
    assert later == []


def test_feedback_changes_the_ranking(world) -> None:  # noqa: ANN001
    _, store, engine, _ = world
    store.save_profile(dataclasses.replace(store.profile("semis"), query=None, classes=[], seeds=[], threshold=0.0))
    report = engine.run()
    before = [m.doc.id for m in report.matches["semis"]]
    assert len(before) >= 6  # 3 disliked, 2 liked and some unjudged (only documents with evidence score > 0)
    stored = {m.doc_id: m.id for m in store.matches("semis")}
    # the subscriber dislikes the top results and likes two from the bottom half
    for doc_id in before[:3]:
        store.add_feedback(stored[doc_id], relevant=False)
    liked = before[-2:]
    for doc_id in liked:
        store.add_feedback(stored[doc_id], relevant=True)
    after = [m.doc.id for m in engine.preview("semis", since=date(1900, 1, 1))]
    assert after != before
    for doc_id in liked:
        assert after.index(doc_id) < before.index(doc_id)
    disliked = [d for d in before[:3] if d in after]  # on average, the disliked ones move down
    assert sum(after.index(d) for d in disliked) > sum(before.index(d) for d in disliked)
    state = store.state("semis")
    assert state.vector is not None and state.base_vector is not None
    assert float(state.vector @ state.base_vector) < 0.999  # the stored profile vector moved
