"""Per-profile fusion weights and the judgement classifier (pure: matching/fusion.py, matching/learned.py)."""

from __future__ import annotations

import numpy as np
import pytest

from matching import fusion, learned


def test_agreement_is_the_dense_percentile_of_the_lexical_top() -> None:
    dense = np.array([0.9, 0.8, 0.1, 0.2, 0.3])
    assert fusion.agreement(dense, np.array([5.0, 4.0, 0, 0, 0]), k=2) == pytest.approx(0.875)  # dense's best two
    assert fusion.agreement(dense, np.array([0, 0, 5.0, 0, 0]), k=2) == 0.0  # dense's worst
    assert fusion.agreement(dense, np.zeros(5)) == 0.0  # the query matches nothing


def test_lexical_share_by_kind_and_agreement() -> None:
    assert fusion.lexical_share("query", 0.0) == fusion.LEXICAL_SHARE_QUERY  # the user's own query counts as given
    assert fusion.lexical_share("description", fusion.AGREEMENT_MIN) == fusion.LEXICAL_SHARE_DERIVED
    assert fusion.lexical_share("description", fusion.AGREEMENT_MIN - 0.01) == 0.0  # it contradicts the dense half
    assert fusion.lexical_share("description", 0.0) == 0.0  # it matches nothing in the sample
    assert fusion.lexical_share("description", None) == fusion.LEXICAL_SHARE_DERIVED  # no sample to tell


def test_profile_weights_sum_to_one_and_follow_the_share() -> None:
    w = fusion.profile_weights(["dense", "lexical", "classes"], "description", agree=1.0)
    assert sum(w.values()) == pytest.approx(1.0)
    assert w["classes"] == pytest.approx(fusion.SIDE_WEIGHT)
    assert w["lexical"] / (w["lexical"] + w["dense"]) == pytest.approx(fusion.LEXICAL_SHARE_DERIVED)
    disagreeing = fusion.profile_weights(["dense", "lexical"], "description", agree=0.3)
    assert "lexical" not in disagreeing and disagreeing["dense"] == pytest.approx(1.0)
    assert fusion.profile_weights(["lexical"], "query") == {"lexical": 1.0}
    old = fusion.active_weights(["dense", "lexical", "classes", "applicants"])  # a user query: as before
    assert fusion.profile_weights(["dense", "lexical", "classes", "applicants"], "query") == pytest.approx(old)


def test_judgements_move_weights_towards_the_signal_that_separates_them() -> None:
    signals = ["dense", "lexical", "classes"]
    prior = fusion.profile_weights(signals, "query")
    aucs = {"dense": 0.5, "lexical": 0.6, "classes": 1.0}  # only the classes tell relevant from not
    few = fusion.profile_weights(signals, "query", judged=aucs, n_judged=2)
    many = fusion.profile_weights(signals, "query", judged=aucs, n_judged=200)
    assert prior["classes"] < few["classes"] < many["classes"]
    assert many["dense"] < prior["dense"] and sum(many.values()) == pytest.approx(1.0)


def test_separation_is_the_auc() -> None:
    assert fusion.separation([0.9, 0.8], [0.1, 0.2]) == 1.0
    assert fusion.separation([0.1], [0.9]) == 0.0
    assert fusion.separation([0.5], [0.5]) == 0.5
    assert fusion.separation([], [0.1]) == 0.5


def test_classifier_needs_enough_judgements_of_both_kinds() -> None:
    assert not learned.enough([True] * 20)
    assert not learned.enough([True, False] * 4)  # 8 < MIN_JUDGED
    assert learned.enough([True] * learned.MIN_PER_CLASS + [False] * (learned.MIN_JUDGED - learned.MIN_PER_CLASS))


def test_classifier_learns_which_documents_are_relevant() -> None:
    rng = np.random.default_rng(1)
    relevant_dir = rng.normal(size=8)
    vectors = rng.normal(size=(40, 8))
    labels = (vectors @ relevant_dir > 0).tolist()
    parts = {"dense": rng.uniform(size=40)}  # a signal that says nothing
    model = learned.train(parts, vectors, labels)
    assert model is not None and model.judged == 40 and model.signals == ("dense",)
    fresh = rng.normal(size=(200, 8))
    prob = model.probability({"dense": rng.uniform(size=200)}, fresh)
    truth = fresh @ relevant_dir > 0
    assert ((prob > 0.5) == truth).mean() > 0.8
    assert np.all((prob >= 0) & (prob <= 1))
    mixed = learned.blend(np.full(200, 0.4), prob)
    assert np.allclose(mixed, learned.CLASSIFIER_SHARE * prob + (1 - learned.CLASSIFIER_SHARE) * 0.4)
    assert learned.train(parts, vectors, [True] * 40) is None


def test_related_classes_are_the_shares_of_the_nearest_documents() -> None:
    near = [{"H01M", "H01G"}, {"H01M"}, {"C07D"}, ["H01M", "H01M"]]  # a list may repeat a subclass
    assert fusion.related_classes(near) == {"H01M": 0.75, "C07D": 0.25, "H01G": 0.25}
    assert list(fusion.related_classes(near))[0] == "H01M"  # most shared first
    assert fusion.related_classes([]) == {}


def test_related_classes_weigh_their_own_share_and_the_rest_keeps_its_proportions() -> None:
    without = fusion.profile_weights(["dense", "lexical"], "description", agree=1.0)
    w = fusion.profile_weights(["dense", "lexical", "related"], "description", agree=1.0)
    assert w["related"] == pytest.approx(fusion.RELATED_WEIGHT) and sum(w.values()) == pytest.approx(1.0)
    assert w["lexical"] / w["dense"] == pytest.approx(without["lexical"] / without["dense"])
    judged = fusion.profile_weights(["dense", "lexical", "related"], "description", agree=1.0,
                                    judged={"dense": 0.9, "lexical": 0.8, "related": 0.5}, n_judged=100)
    assert judged["related"] < w["related"] / 10  # readers' judgements can switch it off when it does not separate them
