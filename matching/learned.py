"""A per-profile relevance classifier learned from its judgements (pure): logistic regression on the profile's
calibrated signals and the document embedding, beside the Rocchio update (matching.feedback).

Used once a profile has MIN_JUDGED judgements with at least MIN_PER_CLASS relevant and MIN_PER_CLASS not relevant
(curators' approve/reject and readers' relevant/not relevant, the latest per document). The score it gives a
document is the mix CLASSIFIER_SHARE * P(relevant) + (1 - CLASSIFIER_SHARE) * the fused score: both are absolute
(independent of the batch), so a threshold keeps its meaning once the classifier takes over.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

MIN_JUDGED = 10  # judgements before a profile is ranked by its classifier
MIN_PER_CLASS = 3  # ... of which at least this many relevant and this many not relevant
CLASSIFIER_SHARE = 0.5  # weight of P(relevant) in the score; the fused score keeps the rest
REGULARIZATION = 1.0  # inverse L2 strength (scikit-learn's C)
EMBEDDING_SCALE = 2.0  # the embedding's part of the features, relative to the [0, 1] signals


@dataclass(frozen=True)
class Classifier:
    """A trained model: the signals it reads (in order), whether it reads the embedding, weights and bias."""

    signals: tuple[str, ...]
    uses_embedding: bool
    coef: np.ndarray
    intercept: float
    judged: int  # how many judgements it was trained on

    def probability(self, parts: Mapping[str, np.ndarray], vectors: np.ndarray | None) -> np.ndarray:
        """P(relevant) for each document, from its calibrated signals (`parts`) and embeddings (rows)."""
        x = features(parts, vectors, self.signals, self.uses_embedding)
        return 1.0 / (1.0 + np.exp(-(x @ self.coef + self.intercept)))


def enough(labels: Sequence[bool]) -> bool:
    """Whether these judgements are enough to train a classifier."""
    pos = sum(1 for v in labels if v)
    return len(labels) >= MIN_JUDGED and pos >= MIN_PER_CLASS and len(labels) - pos >= MIN_PER_CLASS


def features(parts: Mapping[str, np.ndarray], vectors: np.ndarray | None, signals: Sequence[str],
             uses_embedding: bool) -> np.ndarray:
    """Rows of [signals..., EMBEDDING_SCALE * embedding]: the documents' features."""
    cols = [np.asarray(parts[s], dtype=np.float64)[:, None] for s in signals]
    if uses_embedding and vectors is not None:
        cols.append(EMBEDDING_SCALE * np.asarray(vectors, dtype=np.float64))
    if not cols:
        raise ValueError("a classifier needs at least one feature")
    return np.hstack(cols)


def train(parts: Mapping[str, np.ndarray], vectors: np.ndarray | None, labels: Sequence[bool]) -> Classifier | None:
    """Logistic regression (L2, classes balanced) on judged documents; None when the judgements are not enough."""
    if not enough(labels):
        return None
    from sklearn.linear_model import LogisticRegression

    signals = tuple(sorted(parts))
    uses_embedding = vectors is not None and len(vectors) == len(labels)
    x = features(parts, vectors, signals, uses_embedding)
    model = LogisticRegression(C=REGULARIZATION, class_weight="balanced", max_iter=1000)
    model.fit(x, np.asarray(labels, dtype=bool))
    return Classifier(signals, uses_embedding, model.coef_[0].astype(np.float64), float(model.intercept_[0]),
                      len(labels))


def blend(fused: np.ndarray, probability: np.ndarray) -> np.ndarray:
    """The score of a profile ranked by its classifier: CLASSIFIER_SHARE of P(relevant), the rest fused."""
    return CLASSIFIER_SHARE * np.asarray(probability) + (1 - CLASSIFIER_SHARE) * np.asarray(fused)
