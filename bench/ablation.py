"""What each design choice buys: BCubed F1 with and without it.

    python -m bench.ablation ../shared/data/giveme5w1h/articles.jsonl

Runs the service's pure stages and decisions in memory (no database; the same code
as ``stories evaluate``) on the clean, wrapped and time-compressed streams. Each
ablation removes one stage or feature; a removed feature is zeroed in training *and*
scoring and the decision model is refitted, so every row is a fair calibrated system.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from clustering import assign, extract
from clustering.assign import FEATURES, AssignParams, DecisionModel, StoryIndex
from evaluation import calibrate
from evaluation.evaluate import read_jsonl


@contextmanager
def patched(owner: object, name: str, replacement: object) -> Iterator[None]:
    original = getattr(owner, name)
    setattr(owner, name, replacement)
    try:
        yield
    finally:
        setattr(owner, name, original)


@contextmanager
def without_features(*names: str) -> Iterator[None]:
    columns = [FEATURES.index(n) for n in names]
    original = StoryIndex._describe

    def describe(self, feats, published_at, stories):
        X = original(self, feats, published_at, stories)
        X[:, columns] = 0.0
        return X

    with patched(StoryIndex, "_describe", describe):  # training rows and decisions alike
        yield


@contextmanager
def without_far_joins() -> Iterator[None]:
    original = StoryIndex._candidate_stories

    def in_window_only(self, feats, published_at):
        near, _ = original(self, feats, published_at)
        return near, []

    with patched(StoryIndex, "_candidate_stories", in_window_only):
        yield


@contextmanager
def without_extraction() -> Iterator[None]:
    def keep_everything(text, source=None, templates=None):
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        return extract.Extraction(text="\n".join(lines))

    import app.service.ingest

    with patched(app.service.ingest, "extract_text", keep_everything):
        yield


@contextmanager
def without_templates() -> Iterator[None]:
    import app.service.ingest

    with patched(app.service.ingest.StoredTemplates, "template_lines", lambda self, source, fingerprints: set()):
        yield


@contextmanager
def without_near_duplicates() -> Iterator[None]:
    with patched(assign.NearDuplicateIndex, "query", lambda self, values, min_similarity=None: []):
        yield


@contextmanager
def nothing() -> Iterator[None]:
    yield


ABLATIONS: dict[str, Callable[[], object]] = {
    "full system": nothing,
    "no main-text extraction (raw lines)": without_extraction,
    "no learned source templates": without_templates,
    "no near-duplicate stage": without_near_duplicates,
    "no title field": lambda: without_features("title"),
    "no names field": lambda: without_features("names"),
    "no time features": lambda: without_features("time_decay", "days_outside"),
    "no joins beyond the window": without_far_joins,
}


def score(rows: list[dict], base: AssignParams) -> dict[str, float]:
    """BCubed F1 at the calibrated threshold, as calibration scored it on each stream."""
    fitted = calibrate.calibrate_articles(rows, base)
    at_threshold = fitted["fitted_on"]["threshold_bcubed_f1"][fitted["threshold"]]
    return {
        "clean": at_threshold["clean"],
        "wrapped": at_threshold["wrapped"],
        "compressed 10d": at_threshold["compressed_10d"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path, help="labelled JSONL")
    args = parser.parse_args()
    rows = read_jsonl(args.file)
    base = AssignParams(model=DecisionModel(tuple(np.zeros(len(FEATURES))), 0.0))
    print(f"{'ablation':<40}{'clean':>8}{'wrapped':>9}{'compr.':>8}")
    for name, ablation in ABLATIONS.items():
        with ablation():
            result = score(rows, base)
        print(f"{name:<40}" + "".join(f"{v:>9.4f}" for v in result.values()), flush=True)
        print(json.dumps({"ablation": name, **{k: round(v, 4) for k, v in result.items()}}), flush=True)


if __name__ == "__main__":
    main()
