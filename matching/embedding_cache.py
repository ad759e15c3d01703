"""A persistent embedding cache: (model_id, sha256 of the text) -> float32 vector, in SQLite.

An application and its later grant often share an abstract, and profiles are re-matched against documents already
seen: `EmbeddingCache.embed` encodes each distinct text once per model and reads it back afterwards.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from matching.embeddings import Embedder

_SCHEMA = """
CREATE TABLE IF NOT EXISTS embeddings (
    model_id TEXT NOT NULL,
    text_sha256 TEXT NOT NULL,
    dim INTEGER NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (model_id, text_sha256)
) WITHOUT ROWID
"""
_LOOKUP_CHUNK = 500  # stays under SQLite's bound-parameter limit


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    """Vectors by (model_id, text hash); `hits` counts texts answered from the cache, `misses` texts encoded."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path))
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(_SCHEMA)
        self.db.commit()
        self.hits = 0
        self.misses = 0

    def embed(self, texts: Sequence[str], embedder: Embedder, *, batch_size: int = 64,
              progress: bool = False) -> np.ndarray:
        """Vectors for `texts` in order; only distinct texts the cache lacks for `embedder.model_id` are encoded."""
        keys = [text_key(t) for t in texts]
        found = self.get_many(embedder.model_id, keys)
        todo: dict[str, str] = {}
        for key, text in zip(keys, texts, strict=True):
            if key not in found:
                todo.setdefault(key, text)
        if todo:
            vectors = embedder.encode(list(todo.values()), batch_size=batch_size, progress=progress)
            new = dict(zip(todo, np.asarray(vectors, dtype=np.float32), strict=True))
            self.put_many(embedder.model_id, new.items())
            found.update(new)
        self.misses += len(todo)
        self.hits += len(texts) - len(todo)
        out = np.zeros((len(texts), embedder.dim), dtype=np.float32)
        for row, key in enumerate(keys):
            out[row] = found[key]
        return out

    def get_many(self, model_id: str, keys: Iterable[str]) -> dict[str, np.ndarray]:
        wanted = list(dict.fromkeys(keys))
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(wanted), _LOOKUP_CHUNK):
            chunk = wanted[start:start + _LOOKUP_CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(
                f"SELECT text_sha256, dim, vector FROM embeddings WHERE model_id = ? AND text_sha256 IN ({marks})",
                [model_id, *chunk],
            )
            for key, dim, blob in rows:
                found[key] = np.frombuffer(blob, dtype="<f4", count=dim).astype(np.float32)
        return found

    def put_many(self, model_id: str, items: Iterable[tuple[str, np.ndarray]]) -> None:
        rows = [(model_id, key, int(vec.shape[-1]), np.asarray(vec, dtype="<f4").tobytes()) for key, vec in items]
        with self.db:
            self.db.executemany(
                "INSERT OR REPLACE INTO embeddings (model_id, text_sha256, dim, vector) VALUES (?, ?, ?, ?)", rows
            )

    def count(self, model_id: str | None = None) -> int:
        if model_id is None:
            return int(self.db.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0])
        return int(self.db.execute("SELECT COUNT(*) FROM embeddings WHERE model_id = ?", [model_id]).fetchone()[0])

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
