"""A profile's preview through the index's nearest neighbours (MatchingEngine._knn_candidates) against the full
path (every document of the window embedded and scored), on both backends, on every real fixture document
(shared/data/patents: US, EP, CN, JP), with the real embedding model; and the index's kNN against exact cosine
over the stored vectors."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from index.base import Filters, Index, StoredVectors, VectorModelTag
from index.model import PatentDocument
from matching.engine import EngineOptions, MatchingEngine
from patentsift.wiring import standalone_match_store
from subscribers.profiles import Profile, validate_profile
from tests.integration.es_support import unique_prefix
from tests.integration.fixture_documents import first_of_each_id

BACKENDS = ["embedded", "es"]
SINCE = [date(1800, 1, 1), date(2014, 1, 1)]
PROFILES = [  # few items each, so the nearest neighbours (knn_k) are a fraction of the documents
    Profile(name="semis", description="Semiconductor devices and their manufacture: transistors, wafers, packaging",
            query="semiconductor OR transistor OR wafer OR shielding", classes=["H01L", "H05K"], threshold=0.2,
            max_items=4),
    Profile(name="displays", description="display panels, pixels and light emitting diodes", threshold=0.2,
            max_items=4),
    Profile(name="batteries", description="battery cells with lithium electrodes and electrolytes",
            applicants=["Samsung Electronics", "PolyPlus Battery"], threshold=0.1, max_items=6),
    Profile(name="medical", description="医用放射治疗装置", classes=["A61"], threshold=0.15, max_items=3),
    Profile(name="everything", description="a method and an apparatus", threshold=0.0, max_items=5),
]


@pytest.fixture(scope="module")
def corpus(shared_patents: Path) -> list[PatentDocument]:
    """Every document the project's parsers read from the fixtures (distinct ids)."""
    docs = sorted(first_of_each_id(shared_patents), key=lambda d: d.id)
    assert len(docs) >= 100
    return docs


@dataclass
class World:
    index: Index
    engine: MatchingEngine
    before_run: tuple[int, list[str]]  # without_vectors() before the first run stored the vectors
    path_before_run: str | None  # the preview's path then


@pytest.fixture(scope="module", params=BACKENDS)
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, corpus: list[PatentDocument],
          embedder: Any, cache: Any) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp(request.param)
    index: Index
    if request.param == "embedded":
        from index.embedded import EmbeddedIndex

        index = EmbeddedIndex(tmp / "index.sqlite")
    else:
        from index.elastic import ElasticIndex

        index = ElasticIndex(request.getfixturevalue("es_url"), index_prefix=unique_prefix("knnprev"))
    store = standalone_match_store(tmp / "patentsift.sqlite")
    try:
        assert not index.upsert(corpus).failed
        for p in PROFILES:
            store.save_profile(validate_profile(p))
        engine = MatchingEngine(index, store, embedder, cache, EngineOptions(knn_min=10))
        assert isinstance(index, StoredVectors)
        before = index.without_vectors(Filters())
        engine.preview("semis", date(1800, 1, 1))
        path = engine.last_preview.path if engine.last_preview else None
        engine.run()  # embeds every document and stores the vectors (tagged with the model)
        yield World(index, engine, before, path)
    finally:
        store.close()
        drop = getattr(index, "drop", None)
        if drop:
            drop()
        index.close()


def test_without_stored_vectors_preview_reads_the_whole_window(world: World, corpus: list[PatentDocument]) -> None:
    total, ids = world.before_run
    assert total == len(corpus) and sorted(ids) == sorted(d.id for d in corpus)
    assert world.path_before_run == "full"
    assert isinstance(world.index, StoredVectors) and isinstance(world.index, VectorModelTag)
    assert world.index.without_vectors(Filters()) == (0, [])
    assert world.index.vector_model() == world.engine.embedder.model_id  # type: ignore[union-attr]


def test_another_models_vectors_are_not_searched(world: World) -> None:
    index = world.index
    assert isinstance(index, VectorModelTag)
    tag = index.vector_model()
    try:
        index.set_vector_model("some-other-model")
        world.engine.preview("semis", date(1800, 1, 1))
        assert world.engine.last_preview is not None and world.engine.last_preview.path == "full"
    finally:
        index.set_vector_model(tag)
    assert index.vector_model() == tag


@pytest.mark.parametrize("since", SINCE, ids=str)
@pytest.mark.parametrize("name", [p.name for p in PROFILES])
def test_knn_preview_gives_the_full_previews_matches(world: World, corpus: list[PatentDocument], name: str,
                                                     since: date) -> None:
    """Same documents, order, scores, breakdowns and explanations as embedding and scoring the whole window,
    from a fraction of it."""
    engine = world.engine
    full = engine.preview(name, since, knn=False)
    assert engine.last_preview is not None and engine.last_preview.path == "full"
    window = engine.last_preview.candidates
    assert window == sum(1 for d in corpus if d.publication_date and d.publication_date >= since)
    fast = engine.preview(name, since)
    assert engine.last_preview.path == "knn"
    assert engine.last_preview.candidates < window
    assert full, name  # every profile matches something on the fixtures
    assert [(m.doc.id, m.score) for m in fast] == [(m.doc.id, m.score) for m in full]
    assert [m.breakdown for m in fast] == [m.breakdown for m in full]
    assert [m.explanation.to_dict() for m in fast] == [m.explanation.to_dict() for m in full]


def test_knn_recall_at_10_against_exact_cosine(world: World, corpus: list[PatentDocument]) -> None:
    """The index's nearest stored vectors against exact cosine over the same vectors (`StoredVectors.vectors`),
    for every document's own vector as the query, unfiltered and in a date window. Up to ties: a hit counts when
    its exact cosine reaches the 10th best."""
    index = world.index
    assert isinstance(index, StoredVectors)
    stored = index.vectors([d.id for d in corpus])
    assert set(stored) == {d.id for d in corpus}
    ids = sorted(stored)
    matrix = np.array([stored[i] for i in ids], dtype=np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    dated = {d.id: d.publication_date for d in corpus}
    recalls: list[float] = []
    for window in (None, date(2014, 1, 1)):
        allowed = np.array([window is None or (dated[i] is not None and dated[i] >= window) for i in ids])
        for q in matrix[::3]:
            cos = np.where(allowed, matrix @ q, -np.inf)
            tenth = float(np.sort(cos)[-10])
            hits = index.knn(q.tolist(), 10, Filters(published_from=window) if window else None)
            assert len(hits) == 10
            got = {ids.index(h.id) for h in hits}
            assert all(allowed[i] for i in got)
            recalls.append(sum(1 for i in got if cos[i] >= tenth - 1e-5) / 10)
            best = int(np.argmax(cos))
            assert hits[0].score == pytest.approx(float(cos[best]), abs=0.02)
    assert np.mean(recalls) >= 0.95, np.mean(recalls)
    if not hasattr(index, "es"):
        assert min(recalls) == 1.0  # the embedded index compares exactly
