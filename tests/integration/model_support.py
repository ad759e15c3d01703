"""The matching tests' model fixtures: the default embedding model, loaded once per module, and an embedding
cache in a temporary file (registered in tests/integration/conftest.py)."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(scope="module")
def embedder() -> Any:
    """The default model (the one a fresh install uses), loaded once per module."""
    from matching.embeddings import load_embedder

    return load_embedder()


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """An empty embedding cache of the module's own."""
    from matching.embedding_cache import EmbeddingCache

    return EmbeddingCache(tmp_path_factory.mktemp("emb") / "cache.sqlite")
