"""Clustering quality: BCubed (Amigo et al. 2009) and pairwise precision/recall/F1.

Both are computed from the contingency table of gold labels against predicted
clusters (scikit-learn), so they cost O(n) rather than O(n^2) pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics.cluster import contingency_matrix, pair_confusion_matrix


@dataclass(frozen=True)
class Scores:
    precision: float
    recall: float
    f1: float


def _f1(p: float, r: float) -> float:
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def bcubed(gold: Sequence[object], predicted: Sequence[object]) -> Scores:
    """BCubed precision, recall and F1 over items.

    An item's precision is the share of its predicted cluster that shares its gold
    label; with ``n_ij`` items of label i in cluster j, summing over items gives
    ``sum_ij n_ij**2 / |cluster j|``, averaged over all items. Recall swaps roles.

    >>> bcubed(["a", "a", "b"], [1, 1, 2])
    Scores(precision=1.0, recall=1.0, f1=1.0)
    >>> round(bcubed(["a", "a", "b"], [1, 1, 1]).precision, 4)
    0.5556
    """
    if len(gold) != len(predicted):
        raise ValueError("gold and predicted must label the same items")
    if not gold:
        raise ValueError("nothing to score")
    table = contingency_matrix(gold, predicted, sparse=True).tocsr().astype(float)
    squared = table.multiply(table)
    cluster_sizes = np.asarray(table.sum(axis=0)).ravel()
    label_sizes = np.asarray(table.sum(axis=1)).ravel()
    n = float(len(gold))
    precision = float((squared @ (1.0 / cluster_sizes)).sum()) / n
    recall = float((squared.T @ (1.0 / label_sizes)).sum()) / n
    return Scores(precision, recall, _f1(precision, recall))


def pairwise(gold: Sequence[object], predicted: Sequence[object]) -> Scores:
    """Precision, recall and F1 over pairs of items placed together.

    >>> pairwise(["a", "a", "b"], [1, 1, 1]).precision
    0.3333333333333333
    """
    (_, fp), (fn, tp) = pair_confusion_matrix(gold, predicted)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    return Scores(float(precision), float(recall), _f1(float(precision), float(recall)))
