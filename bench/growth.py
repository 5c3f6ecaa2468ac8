"""Cost as the corpus grows: ingest throughput and RSS against articles stored.

    python -m bench.growth --sizes 10000 100000 --articles 2000 --runs 3 --cache /tmp/bench-stored
    python -m bench.growth --sizes 10000 100000 300000 1000000 --plot docs/benchmarks.png

For each size, a stored database from ``bench.seed`` (built once into ``--cache`` and
reused), then ``bench.ingest``'s measurement, each run in a fresh interpreter (so RSS
is that of one process serving that size, as a deployed one does, not also what an
earlier run in the same process left behind): the caches rebuilt from the database
(timed), ``--articles`` more ingested in batches of ``--batch``, articles/s (median of
``--runs``) and RSS after.
Each run then keeps its index in a file and times caches filled from it, as a start
with a kept index fills them. Prints a table with throughput relative to the smallest
size and writes a plot of throughput, RSS and both ways of filling the caches against
size (matplotlib, Agg).
"""

from __future__ import annotations

import argparse
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from bench import seed as seeding
from bench import stream
from bench.ingest import Run, measure, print_run
from bench.report import machine, median, print_header, require_data, spread

ROOT = Path(__file__).resolve().parents[1]


def stored_db(cache: Path, size: int, workers: int) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    db = cache / f"stored-{size}.db"
    if not db.exists():
        print(f"  building {db} with bench.seed ...", flush=True)
        partial = cache / f"stored-{size}.partial.db"
        for leftover in cache.glob(f"stored-{size}.partial.db*"):
            leftover.unlink()
        result = seeding.seed(
            partial, size, end=stream.DEFAULT_START, history_days=730.0, seed=11, workers=workers, progress=False
        )
        partial.rename(db)
        print(f"  seeded {size} articles at {result['rows_per_second']:.0f} rows/s", flush=True)
    return db


def measure_isolated(db: Path, articles: int, batch: int, runs: int) -> list[Run]:
    """``runs`` runs of ``bench.ingest.measure``, each in its own fresh interpreter (a run
    whose process dies raises ``BrokenProcessPool`` here rather than hanging)."""
    context = multiprocessing.get_context("spawn")
    results = []
    with ProcessPoolExecutor(max_workers=1, mp_context=context, max_tasks_per_child=1) as pool:
        for number in range(1, runs + 1):
            (run,) = pool.submit(measure, db, articles=articles, batch=batch, runs=1, verbose=False).result()
            print_run(number, run)
            results.append(run)
    return results


def plot(rows: list[tuple[int, list[Run]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [size for size, _ in rows]
    rate = [median([r.articles_per_second for r in runs]) for _, runs in rows]
    rss = [median([r.rss_bytes / 2**20 for r in runs]) for _, runs in rows]
    load = [median([r.load_seconds for r in runs]) for _, runs in rows]
    kept = [median([r.kept_seconds for r in runs if r.kept_seconds is not None] or [float("nan")]) for _, runs in rows]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    axes[0].plot(sizes, rate, "o-", label="service")
    axes[0].axhline(0.9 * rate[0], color="grey", ls="--", label=f"goal: 0.9x the rate at {sizes[0]:,}")
    axes[0].set(
        xscale="log",
        ylim=(0, 1.15 * max(rate)),
        xlabel="articles stored",
        ylabel="ingest articles/s (median)",
        title="Ingest throughput",
    )
    axes[1].plot(sizes, rss, "o-", color="C1", label="service")
    axes[1].axhline(1000, color="grey", ls="--", label="goal 1,000 MiB at 1M")
    axes[1].set(xscale="log", xlabel="articles stored", ylabel="RSS MiB", title="Memory after ingest")
    axes[2].plot(sizes, load, "o-", color="C2", label="rebuilt from the database")
    axes[2].plot(sizes, kept, "s-", color="C3", label="loaded from the kept index")
    axes[2].set(xscale="log", xlabel="articles stored", ylabel="seconds", title="Caches filled at start")
    for ax in axes:
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.suptitle(
        f"bench.growth, {datetime.now(UTC):%Y-%m-%d}; {machine().split(';')[0].removeprefix('machine: ')}", fontsize=9
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--articles", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/bench-stored"), help="where seeded databases live")
    parser.add_argument("--workers", type=int, default=2, help="processes of the bulk loader")
    parser.add_argument("--plot", type=Path, default=ROOT / "docs" / "benchmarks.png")
    args = parser.parse_args(argv)
    require_data()
    print_header("cost as the corpus grows")
    rows = []
    for size in sorted(args.sizes):
        db = stored_db(args.cache, size, args.workers)
        print(f"{size} stored:", flush=True)
        rows.append((size, measure_isolated(db, args.articles, args.batch, args.runs)))
    base = median([r.articles_per_second for r in rows[0][1]])
    print(
        "\n| articles stored | ingest articles/s | vs smallest | RSS MiB after | caches rebuilt, s "
        "| caches loaded from the kept index, s |"
    )
    print("|---|---|---|---|---|---|")
    for size, runs in rows:
        rate = median([r.articles_per_second for r in runs])
        kept = [r.kept_seconds for r in runs if r.kept_seconds is not None]
        print(
            f"| {size:,} | {spread([r.articles_per_second for r in runs])} | {rate / base:.2f} | "
            f"{spread([r.rss_bytes / 2**20 for r in runs], 0)} | {spread([r.load_seconds for r in runs])} | "
            f"{spread(kept, 2) if kept else '-'} |"
        )
    plot(rows, args.plot)
    print(f"\nplot: {args.plot}")


if __name__ == "__main__":
    main()
