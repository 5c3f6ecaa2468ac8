"""evaluation.calibrate: the article model, and the headline model held to its precision target."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from clustering.assign import FEATURES, AssignParams, DecisionModel, load_calibration
from evaluation.calibrate import (
    HEADLINE_PRECISION,
    HEADLINE_THRESHOLDS,
    calibrate,
    headlines,
    online_bcubed,
    prepared,
    write,
)
from tests.synthetic_news import make_stories, report

OUTLETS = ("harbourpost.example", "valleytimes.example", "northwire.example")


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    """Six events two days apart, each reported by three outlets: a wire report, its
    copy, and an independent write-up."""
    labelled = []
    for story in make_stories(6, seed=5, spacing=timedelta(days=2)):
        for hours, (outlet, rewrite) in enumerate(zip(OUTLETS, (False, False, True))):
            article = report(story, outlet, rewrite=rewrite, hours_later=hours, page=False)
            labelled.append({**article, "id": f"{story.key}-{outlet}", "label": story.key, "lang": "en"})
    return labelled


@pytest.fixture(scope="module")
def calibration(rows) -> dict:
    return calibrate(rows)


def test_headline_feed_keeps_the_titles_and_drops_the_texts(rows):
    feed = headlines([*rows, {**rows[0], "title": None}])
    assert len(feed) == len(rows)
    assert all(row["text"] is None and row["title"] for row in feed)


def test_calibration_is_written_as_the_service_loads_it(calibration, tmp_path):
    path = tmp_path / "decision.json"
    write(calibration, path)
    loaded = load_calibration(path)
    AssignParams(
        threshold=loaded["threshold"],
        merge_threshold=loaded["merge_threshold"],
        model=DecisionModel(tuple(loaded["coef"]), loaded["intercept"]),
        headline_threshold=loaded["headline"]["threshold"],
        headline_model=DecisionModel(tuple(loaded["headline"]["coef"]), loaded["headline"]["intercept"]),
    )
    assert loaded["headline"]["threshold"] in HEADLINE_THRESHOLDS


def test_a_calibration_without_a_headline_model_is_refused(calibration, tmp_path):
    path = tmp_path / "decision.json"
    write({key: value for key, value in calibration.items() if key != "headline"}, path)
    with pytest.raises(ValueError, match="no headline model"):
        load_calibration(path)


def test_headline_model_gives_no_weight_to_a_body_headlines_lack(calibration):
    assert calibration["headline"]["coef"][FEATURES.index("body")] == 0.0


def test_headline_threshold_is_the_lowest_that_holds_the_precision_target(calibration):
    headline = calibration["headline"]
    table = headline["fitted_on"]["threshold_bcubed_precision_recall"]
    held = [t for t, (precision, _) in table.items() if precision >= HEADLINE_PRECISION]
    assert held, "these stories share no names: some threshold must hold the target"
    assert headline["threshold"] == min(held)
    assert headline["precision_target"] == HEADLINE_PRECISION
    assert headline["precision_target_reached"]


def test_join_threshold_is_the_best_on_average_over_the_four_streams(calibration):
    table = calibration["fitted_on"]["threshold_bcubed_f1"]
    assert all(set(row) == {"clean", "wrapped", "compressed_10d", "jitter_24h", "mean"} for row in table.values())
    best = max(row["mean"] for row in table.values())
    assert table[calibration["threshold"]]["mean"] == best


def test_online_scores_keep_the_stories_that_left_the_index(rows):
    # The first two events move a year back: they leave a 180-day index before the rest.
    first_two = sorted({row["label"] for row in rows})[:2]
    spread = [
        {**row, "published_at": (datetime.fromisoformat(row["published_at"]) - timedelta(days=365)).isoformat()}
        if row["label"] in first_two
        else row
        for row in rows
    ]
    stream = prepared(spread)
    held = online_bcubed(stream, AssignParams(), horizon_days=None)
    assert online_bcubed(stream, AssignParams(), horizon_days=180) == held
    assert held.precision == 1.0
