"""Learning from feedback, pure: Rocchio on the profile vector.

q' = alpha * q0 + beta * mean(relevant) - gamma * mean(irrelevant), renormalized. q0 is the profile's base vector
(description + seeds), recomputed from scratch with all judgements each time, so feedback never compounds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

ALPHA, BETA, GAMMA = 1.0, 0.75, 0.25


def normalize(vec: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vec))
    return (vec / norm).astype(np.float32) if norm > 0 else vec.astype(np.float32)


def rocchio(base: np.ndarray, relevant: Sequence[np.ndarray], irrelevant: Sequence[np.ndarray],
            alpha: float = ALPHA, beta: float = BETA, gamma: float = GAMMA) -> np.ndarray:
    """The adapted, L2-normalized profile vector."""
    q = alpha * normalize(np.asarray(base, dtype=np.float32))
    if len(relevant):
        q = q + beta * normalize(np.mean(np.asarray(relevant, dtype=np.float32), axis=0))
    if len(irrelevant):
        q = q - gamma * normalize(np.mean(np.asarray(irrelevant, dtype=np.float32), axis=0))
    return normalize(q)


def profile_base_vector(description_vec: np.ndarray | None, seed_vecs: Sequence[np.ndarray],
                        seed_weight: float = 1.0) -> np.ndarray | None:
    """Description and seed patents combined: the mean of the description vector and the seeds' centroid."""
    parts: list[np.ndarray] = []
    if description_vec is not None:
        parts.append(normalize(np.asarray(description_vec, dtype=np.float32)))
    if len(seed_vecs):
        parts.append(seed_weight * normalize(np.mean(np.asarray(seed_vecs, dtype=np.float32), axis=0)))
    if not parts:
        return None
    return normalize(np.sum(parts, axis=0))
