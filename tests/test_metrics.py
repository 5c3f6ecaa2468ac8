"""clustering.metrics: BCubed and pairwise precision, recall and F1.

Gold: five articles, three about event "a" and two about event "b".
"""

from __future__ import annotations

import pytest

from clustering.metrics import Scores, bcubed, pairwise

GOLD = ["a", "a", "a", "b", "b"]
PERFECT = [7, 7, 7, 9, 9]
ALL_IN_ONE = [1, 1, 1, 1, 1]
SINGLETONS = [1, 2, 3, 4, 5]


def assert_scores(actual: Scores, precision: float, recall: float, f1: float) -> None:
    assert actual.precision == pytest.approx(precision)
    assert actual.recall == pytest.approx(recall)
    assert actual.f1 == pytest.approx(f1)


# -- BCubed -------------------------------------------------------------------


def test_bcubed_perfect_clustering_scores_one():
    assert_scores(bcubed(GOLD, PERFECT), 1.0, 1.0, 1.0)


def test_bcubed_ignores_cluster_label_names():
    assert bcubed(GOLD, PERFECT) == bcubed(GOLD, ["x", "x", "x", "y", "y"])


def test_bcubed_all_in_one_cluster():
    # precision: three items see 3/5 of their cluster correct, two see 2/5 -> (3*3/5 + 2*2/5) / 5 = 0.52
    assert_scores(bcubed(GOLD, ALL_IN_ONE), 0.52, 1.0, 2 * 0.52 / 1.52)


def test_bcubed_all_singletons():
    # recall: "a" items find 1/3 of their event, "b" items 1/2 -> (3*1/3 + 2*1/2) / 5 = 0.4
    assert_scores(bcubed(GOLD, SINGLETONS), 1.0, 0.4, 2 * 0.4 / 1.4)


def test_bcubed_one_wrongly_merged_item():
    # clusters {a, a, b} and {b}: precision (2/3 + 2/3 + 1/3 + 1) / 4 = 2/3; recall (1 + 1 + 1/2 + 1/2) / 4 = 3/4
    assert_scores(bcubed(["a", "a", "b", "b"], [1, 1, 1, 2]), 2 / 3, 3 / 4, 2 * (2 / 3) * (3 / 4) / (2 / 3 + 3 / 4))


def test_bcubed_single_item_scores_one():
    assert_scores(bcubed(["a"], [1]), 1.0, 1.0, 1.0)


def test_bcubed_rejects_mismatched_lengths():
    with pytest.raises(ValueError):
        bcubed(GOLD, PERFECT[:-1])


def test_bcubed_rejects_empty_input():
    with pytest.raises(ValueError):
        bcubed([], [])


# -- pairwise -----------------------------------------------------------------


def test_pairwise_perfect_clustering_scores_one():
    assert_scores(pairwise(GOLD, PERFECT), 1.0, 1.0, 1.0)


def test_pairwise_all_in_one_cluster():
    # 10 pairs placed together, 4 of them gold pairs (3 within "a", 1 within "b")
    assert_scores(pairwise(GOLD, ALL_IN_ONE), 0.4, 1.0, 2 * 0.4 / 1.4)


def test_pairwise_all_singletons_has_no_recall_and_vacuous_precision():
    assert_scores(pairwise(GOLD, SINGLETONS), 1.0, 0.0, 0.0)


def test_pairwise_one_wrongly_merged_item():
    # predicted pairs: (a1,a2) (a1,b1) (a2,b1), one correct; gold pairs: (a1,a2) (b1,b2)
    assert_scores(pairwise(["a", "a", "b", "b"], [1, 1, 1, 2]), 1 / 3, 1 / 2, 0.4)


def test_pairwise_rejects_mismatched_lengths():
    with pytest.raises(ValueError):
        pairwise(GOLD, PERFECT[:-1])


def test_f1_is_zero_when_precision_and_recall_are_zero():
    # every predicted pair is wrong and no gold pair is predicted
    assert_scores(pairwise(["a", "b", "a", "b"], [1, 1, 2, 2]), 0.0, 0.0, 0.0)
