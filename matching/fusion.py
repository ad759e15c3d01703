"""Score fusion, pure: reciprocal rank fusion and the calibrated linear mix the engine uses.

Why a calibrated linear mix for matching: a profile is a standing filter over a stream of small batches, and a
threshold must mean the same thing in every batch. RRF scores depend only on ranks within the batch, so the best of
three irrelevant new documents would score as high as the best of a thousand relevant ones. Each signal is
therefore mapped to [0, 1] against the profile's own background distribution over the whole index (dense: z-score
of the cosine; lexical: BM25 against the profile's background median), then mixed linearly. Both signals give 0 to
what a typical document scores: for dense that is z <= DENSE_Z_LOW; for BM25 of a query derived from the description
(an OR of its words, which nearly every document matches weakly) it is the median match (`bm25_floor`), while a
match of the user's own boolean query is evidence in itself (floor 0). Otherwise weak lexical matches would outscore
strong dense ones. RRF stays here for ranking-only uses (benchmarks).

The weights are chosen per profile (`profile_weights`) and fixed between runs: they are computed when the profile
is prepared, from what it is and what is known about it, never from the batch, so a threshold keeps its meaning.
The rule: side signals (watched classes, applicants) weigh SIDE_WEIGHT each, and a profile that watches no class has
its related classes instead (`related_classes`: those of its nearest documents) at RELATED_WEIGHT; dense and lexical
share the rest by `lexical_share`: the user's own boolean query keeps LEXICAL_SHARE_QUERY (the old fixed 0.3 : 0.5);
a query derived from the description keeps LEXICAL_SHARE_DERIVED unless its ranking contradicts the dense one on the
background sample (`agreement` below AGREEMENT_MIN: its best matches lie below the dense median) or matches nothing
there, when it gets 0. Judgements (curators' and readers') then pull every weight towards the signal's separation of
the judged documents (`separation`, an AUC), by n / (n + JUDGED_PRIOR); with enough of them a classifier takes over
part of the score (matching.learned). The weights are renormalized over the signals the profile defines.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

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
    agreement: float | None = None  # fusion.agreement of the two halves over the background sample
    related: dict[str, float] = field(default_factory=dict)  # `related_classes` of the profile's nearest documents


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


# --- per-profile weights ---------------------------------------------------------------------------------------
KINDS = ("query", "description", "seeds")  # what the lexical half comes from: the user's query, or derived text
LEXICAL_SHARE_QUERY = 0.375  # the user's own boolean query: its share of dense + lexical (0.3 : 0.5, as before)
LEXICAL_SHARE_DERIVED = 0.375  # a query derived from the description, when its ranking does not contradict dense
AGREEMENT_MIN = 0.5  # ... i.e. its best matches lie, on average, at or above the sample's dense median
SIDE_WEIGHT = 0.1  # classes, applicants (and each further binary signal): weight before judgements
RELATED_WEIGHT = 0.3  # the subclasses of the profile's nearest documents, for a profile that watches no class
RELATED_NEIGHBOURS = 5  # how many nearest index documents give a profile its related subclasses
JUDGED_PRIOR = 10  # judgements count like this many pseudo-judgements of the prior weights


def agreement(dense: np.ndarray, lexical: np.ndarray, k: int = 10) -> float:
    """How well the lexical half agrees with the dense half on one sample of documents: the mean dense percentile
    (0 worst .. 1 best) of the lexical top-k documents (those with BM25 > 0). 0.5 is chance; 0 when none match."""
    dense, lexical = np.asarray(dense, dtype=np.float64), np.asarray(lexical, dtype=np.float64)
    n = len(dense)
    hits = np.flatnonzero(lexical > 0)
    if n < 2 or not len(hits):
        return 0.0
    top = hits[np.argsort(-lexical[hits], kind="stable")][:k]
    pct = np.argsort(np.argsort(dense, kind="stable"), kind="stable") / (n - 1)
    return float(np.mean(pct[top]))


def lexical_share(kind: str, agree: float | None) -> float:
    """The lexical half's share of dense + lexical: the user's query keeps LEXICAL_SHARE_QUERY; a derived query
    gets LEXICAL_SHARE_DERIVED when its top documents agree with the dense ranking (AGREEMENT_MIN), else none."""
    if kind == "query":
        return LEXICAL_SHARE_QUERY
    return LEXICAL_SHARE_DERIVED if agree is None or agree >= AGREEMENT_MIN else 0.0


def related_classes(neighbours: Sequence[Collection[str]]) -> dict[str, float]:
    """Subclass -> the share of the profile's nearest documents (their subclass sets, best first) that carry it.

    A profile that watches no class still has a field: the office classified the documents nearest to it, and a
    new document in the same subclasses is likelier on topic than its words alone say (pseudo-relevance feedback
    on the classification)."""
    counts: dict[str, int] = {}
    for subclasses in neighbours:
        for sub in set(subclasses):
            counts[sub] = counts.get(sub, 0) + 1
    n = len(neighbours)
    return {s: round(c / n, 4) for s, c in sorted(counts.items(), key=lambda x: (-x[1], x[0]))} if n else {}


def separation(relevant: Sequence[float], irrelevant: Sequence[float]) -> float:
    """AUC of a signal on judged documents: the chance that a relevant one scores above an irrelevant one (ties
    half); 0.5 when either side is empty."""
    if not len(relevant) or not len(irrelevant):
        return 0.5
    r, i = np.asarray(relevant, dtype=np.float64)[:, None], np.asarray(irrelevant, dtype=np.float64)[None, :]
    return float(np.mean((r > i) + 0.5 * (r == i)))


def profile_weights(signals: Sequence[str], kind: str = "description", agree: float | None = None,
                    judged: Mapping[str, float] | None = None, n_judged: int = 0) -> dict[str, float]:
    """A profile's weights, fixed between runs (so a threshold means the same in every batch): dense vs lexical by
    `lexical_share(kind, agree)`, side signals SIDE_WEIGHT each (related classes RELATED_WEIGHT); then, with judgements, each weight moves towards
    its signal's separation on the judged documents (`judged`: signal -> AUC; weight ~ max(AUC - 0.5, 0)) by
    n / (n + JUDGED_PRIOR). Renormalized over the signals the profile defines."""
    on = [s for s in signals if s in ("dense", "lexical") or s not in WEIGHTS or WEIGHTS[s] > 0]
    side = {s: RELATED_WEIGHT if s == "related" else SIDE_WEIGHT for s in on if s not in ("dense", "lexical")}
    core = 1.0 - sum(side.values())
    share = lexical_share(kind, agree) if "dense" in on and "lexical" in on else (1.0 if "lexical" in on else 0.0)
    prior: dict[str, float] = dict(side)
    for s in on:
        if s in ("dense", "lexical"):
            prior[s] = core * share if s == "lexical" else core * (1 - share)
    weights = active_weights(on, prior)
    if judged and n_judged:
        learned = active_weights(on, {s: max(judged.get(s, 0.5) - 0.5, 0.0) for s in on})
        if learned:
            lam = n_judged / (n_judged + JUDGED_PRIOR)
            weights = active_weights(on, {s: (1 - lam) * weights.get(s, 0.0) + lam * learned.get(s, 0.0)
                                          for s in on})
    return weights
