"""EmbeddingCache with the real all-MiniLM-L6-v2 model: what is cached is never encoded again."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harvest.ingest import parse_path
from matching.embedding_cache import EmbeddingCache
from matching.embeddings import Embedder, document_text, load_embedder


class CountingEmbedder:
    """A real embedder that records how many texts it was asked to encode."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.dim = inner.dim
        self.calls = 0
        self.texts: list[str] = []

    def encode(self, texts: list[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        self.calls += 1
        self.texts.extend(texts)
        return self.inner.encode(texts, batch_size=batch_size, progress=progress)


@pytest.fixture(scope="module")
def texts_by_id(shared_patents: Path) -> dict[str, str]:
    """document_text of the US application weekly sample of 2004 (two of its documents share their text)."""
    weekly = shared_patents / "uspto-application" / "weekly" / "pa040101.publications_sample_2004.xml"
    out: dict[str, str] = {}
    out.update({d.id: document_text(d) for d in parse_path(weekly)})
    return out


@pytest.fixture(scope="module")
def torch_embedder() -> Embedder:
    return load_embedder(backend="torch")


@pytest.fixture(scope="module")
def onnx_embedder(tmp_path_factory: pytest.TempPathFactory) -> Embedder:
    return load_embedder(backend="onnx", cache_dir=tmp_path_factory.mktemp("models"))


@pytest.fixture
def counting(torch_embedder: Embedder) -> CountingEmbedder:
    return CountingEmbedder(torch_embedder)


def test_second_call_encodes_nothing(tmp_path, texts_by_id, counting):
    texts = list(texts_by_id.values())
    distinct = len(set(texts))
    with EmbeddingCache(tmp_path / "emb.sqlite") as cache:
        first = cache.embed(texts, counting)
        assert counting.calls == 1 and len(counting.texts) == distinct
        assert (cache.hits, cache.misses) == (len(texts) - distinct, distinct)
        second = cache.embed(texts, counting)
        assert counting.calls == 1, "everything was cached: the embedder must not be called"
        assert cache.hits == 2 * len(texts) - distinct
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(first, counting.inner.encode(texts), atol=1e-5)


def test_an_application_and_a_document_sharing_its_text_are_embedded_once(tmp_path, texts_by_id, counting):
    a, b = texts_by_id["US-20040000001-A1"], texts_by_id["US-20040000005-A1"]
    assert a == b, "these two fixture documents carry the same title and abstract"
    with EmbeddingCache(tmp_path / "emb.sqlite") as cache:
        vectors = cache.embed([a, texts_by_id["US-20040000003-A1"], b], counting)
    assert counting.texts.count(a) == 1 and len(counting.texts) == 2
    np.testing.assert_array_equal(vectors[0], vectors[2])


def test_vectors_persist_across_reopen(tmp_path, texts_by_id, counting):
    texts = list(texts_by_id.values())[:6]
    with EmbeddingCache(tmp_path / "emb.sqlite") as cache:
        stored = cache.embed(texts, counting)
    encoded = len(counting.texts)
    with EmbeddingCache(tmp_path / "emb.sqlite") as reopened:
        again = reopened.embed(list(reversed(texts)), counting)
        assert reopened.misses == 0 and reopened.hits == len(texts)
        assert reopened.count(counting.model_id) == len(set(texts))
    assert len(counting.texts) == encoded
    np.testing.assert_array_equal(again, stored[::-1])


def test_models_do_not_share_vectors(tmp_path, texts_by_id, counting, onnx_embedder):
    texts = list(texts_by_id.values())[:5]
    fast = CountingEmbedder(onnx_embedder)
    assert fast.model_id != counting.model_id
    with EmbeddingCache(tmp_path / "emb.sqlite") as cache:
        torch_vectors = cache.embed(texts, counting)
        fast_vectors = cache.embed(texts, fast)
        assert len(fast.texts) == len(set(texts)), "another model_id must not be served torch's vectors"
        assert cache.count(counting.model_id) == cache.count(fast.model_id) == len(set(texts))
        np.testing.assert_array_equal(cache.embed(texts, counting), torch_vectors)
        np.testing.assert_array_equal(cache.embed(texts, fast), fast_vectors)
    assert counting.calls == 1 and fast.calls == 1
    assert not np.array_equal(torch_vectors, fast_vectors)


def test_empty_input_encodes_nothing(tmp_path, counting):
    with EmbeddingCache(tmp_path / "emb.sqlite") as cache:
        assert cache.embed([], counting).shape == (0, counting.dim)
    assert counting.calls == 0
