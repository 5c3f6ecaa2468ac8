"""Fit the join/new decision on labelled news: ``stories calibrate FILE.jsonl``.

1. Teacher-forced pass: articles stream in ``published_at`` order through the same
   pure stages as the service (``app.pipeline.prepare``); each is described against
   every candidate story (``StoryIndex.pair_features``), labelled 1 for its gold
   story, and then added to its gold story, so features reflect correct clusters.
2. A logistic regression (scikit-learn) on those rows gives the model.
3. An online pass (the service's own decisions, no gold) picks the join threshold
   with the best BCubed F1 on a grid.

The result is written as ``clustering/decision.json`` and shipped with the code.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

from app.evaluate import labelled_to_article, stream_order
from app.pipeline import prepare
from clustering.assign import FEATURES, MODEL_PATH, AssignParams, DecisionModel, StoryIndex
from clustering.extract import SourceTemplates
from clustering.metrics import bcubed

# Every hundredth from 0.05 to 0.70. Among thresholds that score the same, the one
# nearest 0.5 (the most conservative) wins: equal on the data, it joins less on doubt.
THRESHOLDS = tuple(round(0.05 + 0.01 * i, 2) for i in range(66))


def _prepared(rows: list[dict]):
    templates = SourceTemplates()
    now = datetime.now(UTC)
    for i, row in enumerate(rows):
        item = prepare(labelled_to_article(row, external_id=f"row-{i}"), now, templates)
        templates.learn(item.source, item.extraction.line_fingerprints)
        yield row, item


def training_rows(rows: list[dict], params: AssignParams) -> tuple[np.ndarray, np.ndarray]:
    """(features, labels) of every (article, candidate story) pair, teacher-forced."""
    index = StoryIndex(params)
    story_of_label: dict[str, int] = {}
    X, y = [], []
    for i, (row, item) in enumerate(_prepared(stream_order(rows))):
        gold = story_of_label.setdefault(row["label"], len(story_of_label) + 1)
        ids, features = index.pair_features(item.features, item.published_at)
        X.extend(features)
        y.extend(int(story_id == gold) for story_id in ids)
        index.add(i, gold, item.published_at, item.features, item.signature)
    return np.asarray(X), np.asarray(y)


def online_bcubed(rows: list[dict], params: AssignParams) -> float:
    """BCubed F1 of the service's own streaming decisions (no database)."""
    index = StoryIndex(params)
    ordered = stream_order(rows)
    next_story = 0
    for i, (_, item) in enumerate(_prepared(ordered)):
        decision = index.assign(item.features, item.signature, item.published_at)
        story = decision.story_id
        if story is None:
            next_story += 1
            story = next_story
        index.add(i, story, item.published_at, item.features, item.signature, decision.duplicate_of)
        for absorbed in decision.merge:
            index.merge(story, absorbed)
    predicted = [index.story_of(i) for i in range(len(ordered))]
    return bcubed([r["label"] for r in ordered], predicted).f1


def calibrate(rows: list[dict], base: AssignParams | None = None) -> dict:
    base = base or AssignParams()
    X, y = training_rows(rows, base)
    if len(set(y)) < 2:
        raise ValueError("calibration needs stories with several articles (positive and negative pairs)")
    regression = LogisticRegression(C=1.0, max_iter=1000).fit(X, y)
    model = DecisionModel(tuple(float(c) for c in regression.coef_[0]), float(regression.intercept_[0]))
    scores = {}
    for threshold in THRESHOLDS:
        params = replace(base, model=model, threshold=threshold, merge_threshold=max(threshold, base.merge_threshold))
        scores[threshold] = online_bcubed(rows, params)
    best = max(scores, key=lambda t: (scores[t], -abs(t - 0.5)))
    return {
        "features": list(FEATURES),
        "coef": [round(c, 6) for c in model.coef],
        "intercept": round(model.intercept, 6),
        "threshold": best,
        "merge_threshold": max(best, base.merge_threshold),
        "window_days": base.window_days,
        "time_scale_days": base.time_scale_days,
        "fitted_on": {"pairs": int(len(y)), "positives": int(y.sum()), "threshold_bcubed_f1": scores},
    }


def write(calibration: dict, path: Path = MODEL_PATH) -> None:
    path.write_text(json.dumps(calibration, indent=2) + "\n")
