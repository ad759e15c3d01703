"""Fusion math and duplicate-invention rules (pure)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from index.model import PatentDocument, Priority, PublicationNumber
from matching import fusion
from matching.dedupe import group_duplicates, invention_keys, suppress_duplicates
from matching.feedback import rocchio


def test_rrf_sums_reciprocal_ranks() -> None:
    scores = fusion.rrf([["a", "b", "c"], ["b", "a"]], k=60)
    assert scores["a"] == pytest.approx(1 / 61 + 1 / 62)
    assert scores["b"] == pytest.approx(1 / 62 + 1 / 61)
    assert scores["c"] == pytest.approx(1 / 63)
    assert fusion.ranked(scores) == ["a", "b", "c"]  # a/b tie broken by id


def test_rrf_rewards_agreement_over_one_top_rank() -> None:
    scores = fusion.rrf([["x", "y"], ["z", "y"], ["w", "y"]])
    assert fusion.ranked(scores)[0] == "y"


def test_dense_calibration_by_background_zscore() -> None:
    bg = fusion.Background(dense_mean=0.2, dense_std=0.05)
    assert fusion.calibrate_dense(0.2, bg) == 0.0  # a typical document
    assert fusion.calibrate_dense(0.25, bg) == 0.0  # z = 1: still background
    assert fusion.calibrate_dense(0.30, bg) == pytest.approx(1 / 3)  # z = 2
    assert fusion.calibrate_dense(0.5, bg) == 1.0
    arr = fusion.calibrate_dense(np.array([0.2, 0.3, 0.5]), bg)
    assert np.allclose(arr, [0.0, 1 / 3, 1.0])


def test_bm25_calibration_is_half_at_background_median() -> None:
    bg = fusion.Background(bm25_median=4.0)
    assert fusion.calibrate_bm25(0.0, bg) == 0.0
    assert fusion.calibrate_bm25(4.0, bg) == pytest.approx(0.5)
    assert fusion.calibrate_bm25(12.0, bg) == pytest.approx(0.75)
    assert fusion.calibrate_bm25(1e9, bg) < 1.0


def test_bm25_floor_makes_a_typical_match_no_evidence() -> None:
    bg = fusion.Background(bm25_median=4.0, bm25_floor=4.0)
    assert fusion.calibrate_bm25(3.0, bg) == 0.0  # weaker than the typical match of a description-derived query
    assert fusion.calibrate_bm25(4.0, bg) == 0.0
    assert fusion.calibrate_bm25(12.0, bg) == pytest.approx(0.5)
    assert np.allclose(fusion.calibrate_bm25(np.array([0.0, 4.0, 12.0, 1e9]), bg), [0.0, 0.0, 0.5, 1.0])
    derived = fusion.background_stats(np.zeros(0), [2.0, 4.0, 9.0], floor_at_median=True)
    assert derived.bm25_floor == derived.bm25_median == 4.0
    assert fusion.background_stats(np.zeros(0), [2.0, 4.0, 9.0]).bm25_floor == 0.0  # the user's own query
    assert fusion.background_stats(np.zeros(0), [], floor_at_median=True).bm25_floor == 0.0


def test_background_stats() -> None:
    bg = fusion.background_stats(np.array([0.1, 0.3]), [0.0, 2.0, 4.0, 9.0])
    assert bg.dense_mean == pytest.approx(0.2) and bg.dense_std == pytest.approx(0.1)
    assert bg.bm25_median == 4.0
    assert fusion.background_stats(np.zeros(0)) == fusion.Background(0.0, 1.0, 1.0)


def test_weights_renormalize_over_defined_signals() -> None:
    w = fusion.active_weights(["dense", "lexical"])
    assert sum(w.values()) == pytest.approx(1.0)
    assert w["dense"] / w["lexical"] == pytest.approx(fusion.WEIGHTS["dense"] / fusion.WEIGHTS["lexical"])
    assert fusion.active_weights(["classes"]) == {"classes": 1.0}
    assert fusion.linear_mix({"dense": 1.0, "lexical": 0.5}, w) == pytest.approx(w["dense"] + 0.5 * w["lexical"])
    assert fusion.linear_mix({}, w) == 0.0


def _doc(pn: str, **kw: object) -> PatentDocument:
    return PatentDocument(pn=PublicationNumber.parse(pn), **kw)  # type: ignore[arg-type]


def test_invention_keys_link_application_grant_family_priority() -> None:
    a1 = _doc("EP-1019261-A1", application_number="99 123 456.7", family_id="123")
    b1 = _doc("EP-1019261-B1")
    assert invention_keys(a1) & invention_keys(b1)  # same publication number, other kind
    us_app = _doc("US-20180000016-A1", application_number="15/123,456")
    us_grant = _doc("US-10000001-B2", application_number="US15123456")
    assert "app:US15123456" in invention_keys(us_app) & invention_keys(us_grant)
    p1 = _doc("JP-2020000001-A", priorities=[Priority("JP", "2019-001", date(2019, 1, 1))])
    p2 = _doc("US-11111111-B2", priorities=[Priority("JP", "2019001")])
    assert invention_keys(p1) & invention_keys(p2)
    assert not invention_keys(_doc("US-10000002-B2")) & invention_keys(us_grant)


def test_group_duplicates_is_transitive() -> None:
    groups = group_duplicates([{"fam:1"}, {"app:X"}, {"fam:1", "app:X"}, {"pub:Z"}])
    assert sorted(map(sorted, groups)) == [[0, 1, 2], [3]]


def test_suppress_keeps_best_and_drops_already_sent() -> None:
    items = ["grant", "application", "other", "old"]
    keys = [{"app:US1", "pub:US9"}, {"app:US1", "pub:US8"}, {"pub:US7"}, {"fam:42"}]
    kept, dropped = suppress_duplicates(items, keys, [0.6, 0.9, 0.7, 0.95], seen={"fam:42"})
    assert kept == [("application", ["grant"]), ("other", [])]
    assert dropped == ["old"]


def test_rocchio_moves_towards_relevant_and_away_from_irrelevant() -> None:
    base = np.array([1.0, 0.0, 0.0], np.float32)
    rel, irr = np.array([0.0, 1.0, 0.0], np.float32), np.array([0.0, 0.0, 1.0], np.float32)
    q = rocchio(base, [rel], [irr])
    assert np.linalg.norm(q) == pytest.approx(1.0, abs=1e-6)
    assert q @ rel > base @ rel and q @ irr < base @ irr
    assert np.allclose(rocchio(base, [], []), base)
