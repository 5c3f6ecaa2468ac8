"""Text → prepared article on one core: what every article costs before the write step.

    python -m bench.prepare --articles 1000 --runs 5

On ``bench.stream`` articles (wrapped in their outlets' page templates), pinned to one
CPU, with the templates learned from a preceding stretch of the same outlets (as a
running service has them): ``clustering.prepare.prepare`` whole (extract, normalise,
embed, vectorise, fingerprint), and each stage alone on the same articles. The encoder
is timed on texts it has not seen (its cache of recent texts is emptied every run).
Prints articles/s and ms/article, the median of ``--runs`` runs after a warm-up.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime

from bench.report import median, print_header, require_data, spread
from bench.signature import pin_one_core, warmed_rows
from clustering import embed, fingerprint
from clustering.extract import extract_text
from clustering.normalise import words
from clustering.prepare import Draft, prepare
from clustering.vectorise import features


def timed(work: Callable[[], object], runs: int, before: Callable[[], None] = lambda: None) -> list[float]:
    before()
    work()  # warm-up
    seconds = []
    for _ in range(runs):
        before()
        began = time.perf_counter()
        work()
        seconds.append(time.perf_counter() - began)
    return seconds


def forget_embeddings() -> None:
    embed._RECENT = embed._Recent(embed._RECENT.size)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args(argv)
    require_data()
    print_header("text -> prepared article, one core")
    print(pin_one_core())
    templates, rows = warmed_rows(args.articles, args.seed)
    n = len(rows)
    received = datetime.now(UTC)
    drafts = [
        Draft(a["title"], a["text"], None, a["source"], datetime.fromisoformat(a["published_at"]), received)
        for a in rows
    ]
    extracted = [extract_text(a["text"], a["source"], templates).text for a in rows]
    embedded = [embed.embed(a["title"], t) for a, t in zip(rows, extracted)]
    print(
        f"{n} articles, {sum(len(a['text']) for a in rows) / n:.0f} characters as posted; encoder "
        f"{embed.EMBEDDING_SCHEME['runtime']}, first {embed.MAX_TOKENS} tokens; median of {args.runs} runs\n"
    )
    stages = {
        "extract": (lambda: [extract_text(a["text"], a["source"], templates) for a in rows], None),
        "embed": (lambda: [embed.embed(a["title"], t) for a, t in zip(rows, extracted)], forget_embeddings),
        "vectorise": (lambda: [features(a["title"], t, e) for a, t, e in zip(rows, extracted, embedded)], None),
        "normalise + fingerprint": (lambda: [fingerprint.signature(words(t)) for t in extracted], None),
    }
    results = {name: timed(work, args.runs, before or (lambda: None)) for name, (work, before) in stages.items()}
    whole = timed(lambda: [prepare(d, templates) for d in drafts], args.runs, forget_embeddings)
    print("| stage | ms/article |")
    print("|---|---|")
    for name, seconds in results.items():
        print(f"| {name} | {1000 * median(seconds) / n:.3f} |")
    print(f"| **prepare, whole** | **{1000 * median(whole) / n:.3f}** |")
    print(f"\ntext -> prepared article, one core: {spread([n / s for s in whole], 0)} articles/s (goal >= 1,000)")
    without = [sum(results[k][i] for k in results if k != "embed") for i in range(args.runs)]
    print(f"the same without the encoder: {spread([n / s for s in without], 0)} articles/s")


if __name__ == "__main__":
    main()
