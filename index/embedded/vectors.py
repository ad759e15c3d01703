"""Brute-force cosine nearest neighbours over float32 vectors (pure numpy; the store keeps the blobs)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def as_vector(values: Sequence[float], dim: int | None = None) -> np.ndarray:
    """A 1-D float32 array; ValueError when it is empty, not finite or not `dim` long."""
    vec = np.asarray(values, dtype=np.float32)
    if vec.ndim != 1 or vec.size == 0:
        raise ValueError("a vector must be a non-empty sequence of numbers")
    if dim is not None and vec.size != dim:
        raise ValueError(f"vector dimension {vec.size} differs from the index's dimension {dim}")
    if not np.all(np.isfinite(vec)):
        raise ValueError("a vector must hold finite numbers")
    return vec


def to_blob(vec: np.ndarray) -> bytes:
    return vec.astype("<f4").tobytes()


class VectorMatrix:
    """Row ids and their unit-normalized vectors, ready for cosine scoring."""

    def __init__(self, rids: np.ndarray, matrix: np.ndarray) -> None:
        self.rids = rids
        norms = np.linalg.norm(matrix, axis=1, keepdims=True) if len(matrix) else np.ones((0, 1), np.float32)
        self.matrix = matrix / np.where(norms == 0, 1, norms)

    @classmethod
    def from_blobs(cls, rows: Sequence[tuple[int, bytes]], dim: int) -> VectorMatrix:
        rids = np.fromiter((r for r, _ in rows), dtype=np.int64, count=len(rows))
        matrix = np.frombuffer(b"".join(b for _, b in rows), dtype="<f4").reshape(len(rows), dim)
        return cls(rids, matrix.astype(np.float32))

    def top_k(self, query: np.ndarray, k: int, allowed: set[int] | None = None) -> list[tuple[int, float]]:
        """The k most similar rows as (row id, cosine), best first (ties by row id)."""
        norm = float(np.linalg.norm(query))
        if norm == 0 or k <= 0 or not len(self.rids):
            return []
        scores = self.matrix @ (query / norm)
        idx = np.arange(len(self.rids))
        if allowed is not None:
            idx = idx[np.isin(self.rids, np.fromiter(allowed, dtype=np.int64, count=len(allowed)))]
        if len(idx) > k:
            part = np.argpartition(-scores[idx], k - 1)[:k]
            idx = idx[part]
        order = sorted(idx.tolist(), key=lambda i: (-float(scores[i]), int(self.rids[i])))
        return [(int(self.rids[i]), float(scores[i])) for i in order]
