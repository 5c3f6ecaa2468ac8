"""The event-level score of a perfect story assignment whose stories are cut by time.

    python -m evaluation.ceiling ../shared/data/giveme5w1h/articles.jsonl --compress-days 10

The service cuts a story into events by time alone: an article more than
``EVENT_GAP_DAYS`` from every article of the story it matches opens a new event
(``clustering.assign``). This puts every article in its labelled story, as a perfect
assignment would, cuts each story by that rule on the timestamps the stream carries,
and scores the result against the event labels, which ``stories evaluate --level
event`` cuts on the dates as published. On a stream with its own dates the two cuts
agree and the score is 1. A variant that moves dates (``--compress-days``) can leave
two events of one story days or hours apart, or overlapping; then the time rule keeps
them together even under a perfect assignment, and scoring higher needs a story's
events placed apart by what they report.

``--content`` says how far what they report tells them apart: for each article that
has both other articles in its own event and articles in other events of its story,
whether its sentence embedding (``clustering.embed``) is as close or closer, on mean
cosine, to the story's other events than to its own event.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from clustering import embed
from clustering.assign import EVENT_GAP_DAYS
from clustering.metrics import Scores, bcubed
from evaluation import variants
from evaluation.evaluate import read_jsonl


def ceiling(rows: list[dict], compress_days: float | None = None, seed: int = 7) -> Scores:
    """BCubed of labelled stories cut into events by the service's rule, on the stream's
    dates, against the event labels (cut on the dates as published), as ``stories
    evaluate --level event`` builds them.

    >>> rows = [{"label": "s", "published_at": f"2024-0{m}-01T00:00:00Z"} for m in (1, 1, 5, 5)]
    >>> ceiling(rows).f1
    1.0
    >>> round(ceiling(rows, compress_days=1).f1, 4)
    0.6667
    """
    stream = variants.events([{**row, "story": row["label"]} for row in rows])
    if compress_days is not None:
        stream = variants.compress(stream, compress_days, seed=seed)
    cut = variants.events([{**row, "label": row["story"]} for row in stream], quiet_days=EVENT_GAP_DAYS)
    return bcubed([row["label"] for row in stream], [row["label"] for row in cut])


def closer_to_another_event(rows: list[dict]) -> tuple[int, int]:
    """(articles closer to another event of their story than to their own, articles
    compared): mean embedding cosine to their own event's other articles against the
    mean to the story's other events' articles, for articles that have both."""
    labelled = variants.events(rows)
    vectors = np.array([embed.embed(row.get("title"), row.get("text") or "") for row in labelled])
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    cosines = vectors @ vectors.T
    events = np.array([row["label"] for row in labelled])
    stories = np.array([row["label"].rsplit("/", 1)[0] for row in labelled])
    closer = compared = 0
    for i in range(len(labelled)):
        own = (events == events[i]) & (np.arange(len(labelled)) != i)
        other = (stories == stories[i]) & (events != events[i])
        if own.any() and other.any():
            compared += 1
            closer += bool(cosines[i, other].mean() >= cosines[i, own].mean())
    return closer, compared


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=Path, help="labelled JSONL, as stories evaluate reads it")
    parser.add_argument("--compress-days", type=float, help="move every event into one window of N days")
    parser.add_argument("--seed", type=int, default=7, help="seed of the variant's randomness")
    parser.add_argument("--content", action="store_true", help="also: how far embeddings tell a story's events apart")
    args = parser.parse_args(argv)
    rows = read_jsonl(args.file)
    scores = ceiling(rows, args.compress_days, args.seed)
    print(
        f"event-level BCubed P/R/F1 of stories cut by time: {scores.precision:.4f} / {scores.recall:.4f} / {scores.f1:.4f}"
    )
    if args.content:
        closer, compared = closer_to_another_event(rows)
        print(f"articles closer to another event of their story than to their own: {closer} of {compared}")


if __name__ == "__main__":
    main()
