"""How the decision model does on stories it was not fitted on.

    python -m bench.crossval ../shared/data/giveme5w1h/articles.jsonl --folds 3 --seed 1

The stories (gold labels) are split into folds at random. For each fold, the decision
model is fitted teacher-forced on the articles of the other folds
(``evaluation.calibrate.training_rows``), then the fold's own articles are streamed through
the service's decisions in memory (``evaluation.calibrate.online_bcubed``), clean and
compressed into 10 days. Printed: the mean BCubed F1 over folds for the shipped kind of
model (logistic regression) and for gradient-boosted trees over the same features,
at each threshold. Scores on a fold are higher than on the whole set: fewer stories
meet in each window. Compare models with each other, not with ``stories evaluate``.
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import replace
from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

from clustering.assign import AssignParams
from evaluation import calibrate, variants
from evaluation.evaluate import read_jsonl

THRESHOLDS = (0.12, 0.2, 0.3, 0.5, 0.7)


class Fitted:
    """A fitted scikit-learn classifier in the place of ``DecisionModel``."""

    def __init__(self, classifier):
        self.classifier = classifier

    def probability(self, X: np.ndarray) -> np.ndarray:
        return self.classifier.predict_proba(X)[:, 1]


def classifiers() -> dict[str, object]:
    return {
        "logistic": LogisticRegression(C=1.0, max_iter=1000),
        "trees": HistGradientBoostingClassifier(max_depth=3, min_samples_leaf=20, random_state=0),
    }


def folds(rows: list[dict], k: int, seed: int) -> list[set[str]]:
    labels = sorted({row["label"] for row in rows})
    random.Random(seed).shuffle(labels)
    return [set(labels[i::k]) for i in range(k)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path, help="labelled JSONL")
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.folds < 2:
        parser.error("--folds must be at least 2")
    rows = read_jsonl(args.file)
    base = AssignParams()
    scores: dict[tuple[str, float], list[tuple[float, float]]] = {}
    for held_out in folds(rows, args.folds, args.seed):
        train = [row for row in rows if row["label"] not in held_out]
        test = [row for row in rows if row["label"] in held_out]
        clean, compressed = calibrate.prepared(test), calibrate.prepared(variants.compress(test, 10))
        X, y = calibrate.training_rows(train, base)
        for name, classifier in classifiers().items():
            model = Fitted(classifier.fit(X, y))
            for threshold in THRESHOLDS:
                params = replace(
                    base, model=model, threshold=threshold, merge_threshold=max(threshold, base.merge_threshold)
                )
                pair = (calibrate.online_bcubed(clean, params).f1, calibrate.online_bcubed(compressed, params).f1)
                scores.setdefault((name, threshold), []).append(pair)
    print(
        f"{'model':<10}{'threshold':>10}{'clean':>8}{'compr.':>8}   (mean BCubed F1 of {args.folds} folds, seed {args.seed})"
    )
    for (name, threshold), pairs in scores.items():
        clean, compressed = np.mean(pairs, axis=0)
        print(f"{name:<10}{threshold:>10.2f}{clean:>8.4f}{compressed:>8.4f}")
        print(
            json.dumps(
                {
                    "model": name,
                    "threshold": threshold,
                    "clean": round(clean, 4),
                    "compressed 10d": round(compressed, 4),
                }
            )
        )


if __name__ == "__main__":
    main()
