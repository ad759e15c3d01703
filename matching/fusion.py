"""Score fusion, pure: reciprocal rank fusion and the calibrated linear mix the engine uses.

Why a calibrated linear mix for matching: a profile is a standing filter over a stream of small batches, and a
threshold must mean the same thing in every batch. RRF scores depend only on ranks within the batch, so the best of
three irrelevant new documents would score as high as the best of a thousand relevant ones. Each signal is
therefore mapped to [0, 1] against the profile's own background distribution over the whole index (dense: z-score
of the cosine; lexical: BM25 against the profile's background median), then mixed with fixed weights that are
renormalized over the signals a profile actually defines. Both signals give 0 to what a typical document scores:
for dense that is z <= DENSE_Z_LOW; for BM25 of a query derived from the description (an OR of its words, which
nearly every document matches weakly) it is the median match (`bm25_floor`), while a match of the user's own
boolean query is evidence in itself (floor 0). Otherwise weak lexical matches would outscore strong dense ones. RRF stays here for ranking-only uses (benchmarks).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

RRF_K = 60
WEIGHTS = {"dense": 0.5, "lexical": 0.3, "classes": 0.1, "applicants": 0.1}
DENSE_Z_LOW, DENSE_Z_HIGH = 1.0, 4.0  # z at or below LOW -> 0 (typical document), at or above HIGH -> 1


def rrf(rankings: Sequence[Sequence[str]], k: int = RRF_K) -> dict[str, float]:
    """Reciprocal rank fusion: sum over rankings of 1 / (k + rank), rank 1-based."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, doc_id in enumerate(ranking, start=1):
            scores[doc_id] = scores.get(doc_id, 0.0) + 1.0 / (k + rank)
    return scores


def ranked(scores: Mapping[str, float]) -> list[str]:
    """Ids by score descending, ties by id (deterministic)."""
    return sorted(scores, key=lambda i: (-scores[i], i))


@dataclass(frozen=True)
class Background:
    """A profile's calibration: its dense cosine mean/std over a background sample, its BM25 median, and the BM25
    at or below which a match is no evidence (0, or the median for description-derived queries)."""

    dense_mean: float = 0.0
    dense_std: float = 1.0
    bm25_median: float = 1.0
    bm25_floor: float = 0.0


def calibrate_dense(cosine: float | np.ndarray, bg: Background) -> float | np.ndarray:
    """Cosine -> [0, 1] by the profile's background z-score, linear between DENSE_Z_LOW and DENSE_Z_HIGH."""
    z = (np.asarray(cosine, dtype=np.float64) - bg.dense_mean) / max(bg.dense_std, 1e-6)
    out = np.clip((z - DENSE_Z_LOW) / (DENSE_Z_HIGH - DENSE_Z_LOW), 0.0, 1.0)
    return float(out) if np.ndim(out) == 0 else out


def calibrate_bm25(score: float | np.ndarray, bg: Background) -> float | np.ndarray:
    """BM25 -> [0, 1): (s - floor) / (s + median), 0 at or below the floor. With floor 0 a typical match of the
    query scores 0.5; with floor = median it scores 0 and three times the median scores 0.5."""
    s = np.asarray(score, dtype=np.float64)
    floor = max(bg.bm25_floor, 0.0)
    ok = (s > floor) & (s > 0) & np.isfinite(s)
    safe = np.where(ok, s, 0.0)
    out = np.where(ok, (safe - floor) / (safe + max(bg.bm25_median, 1e-6)), 0.0)
    return float(out) if np.ndim(out) == 0 else out


def background_stats(cosines: np.ndarray, bm25_scores: Sequence[float] = (), *,
                     floor_at_median: bool = False) -> Background:
    """Calibration from a sample: cosines of the profile vector to background documents, BM25 of its matches.
    `floor_at_median`: a typical match of the query is no evidence (description-derived queries)."""
    mean = float(np.mean(cosines)) if len(cosines) else 0.0
    std = float(np.std(cosines)) if len(cosines) > 1 else 1.0
    positive = [s for s in bm25_scores if s > 0]
    median = float(np.median(positive)) if positive else 1.0
    return Background(mean, std if std > 1e-6 else 1.0, median, median if floor_at_median and positive else 0.0)


def active_weights(signals: Sequence[str], weights: Mapping[str, float] = WEIGHTS) -> dict[str, float]:
    """The weights of the signals a profile defines, renormalized to sum to 1."""
    chosen = {s: weights[s] for s in signals if weights.get(s, 0) > 0}
    total = sum(chosen.values())
    return {s: w / total for s, w in chosen.items()} if total else {}


def linear_mix(components: Mapping[str, float], weights: Mapping[str, float]) -> float:
    """Weighted sum of calibrated components (missing components count 0); in [0, 1] when inputs are."""
    return float(sum(w * components.get(s, 0.0) for s, w in weights.items()))
