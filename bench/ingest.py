"""Whole ingest in one process, and the time inside the write lock: ``StoryService`` on a SQLite file.

    python -m bench.ingest --stored 0 --articles 2000 --batch 200 --runs 3
    python -m bench.seed --db /tmp/stored-100k.db --stored 100000
    python -m bench.ingest --from-db /tmp/stored-100k.db --articles 2000 --batch 200 --runs 3 --profile

Each run copies the stored database (``--from-db``, built by ``bench.seed``; or an empty
migrated one with ``--stored 0``) to a temporary directory, starts a ``StoryService``
on it as ``stories serve`` does (``load()``: check the scheme, rebuild the caches from
the database; timed), then ingests the next ``--articles`` articles of a ``bench.stream``
continuing the stored history, in batches of ``--batch``, exactly as
``POST /v1/articles/batch`` would (one ``StoryService.ingest`` call, one transaction, a
batch; here the articles are prepared in the calling thread, ``STORIES_WORKERS=0``).
Prints articles/s (median of runs), the time to load the caches, the process's RSS, and
where ingest time went: the service's own stage timings (``stories_ingest_stage_seconds``):
``prepare`` (off the lock) and, inside the write lock, ``assign`` and ``store`` per
article and ``summarise`` and the whole ``transaction`` per batch; the transaction time
over the articles is the **time per article inside the write lock**. With ``--profile``,
the top functions of one more run under cProfile.
"""

from __future__ import annotations

import argparse
import cProfile
import inspect
import io
import pstats
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import psutil

from app.api.schemas import ArticleIn
from app.config import Settings
from app.service.ingest import StoryService
from app.store import migrate
from app.store.db import make_engine, make_sessionmaker
from bench import stream
from bench.report import median, print_header, require_data, spread
from clustering import embed

PACE = 1400.0  # articles a day: 1M stored over two years; the measured stream is the same at every size
PER_ARTICLE = ("prepare", "assign", "store")
PER_BATCH = ("summarise", "transaction")


@dataclass
class Run:
    articles_per_second: float
    load_seconds: float
    rss_bytes: int
    stages: dict[str, float] = field(default_factory=dict)  # seconds summed over the run
    created: int = 0
    kept_seconds: float | None = None  # the caches filled again from the index kept after the run


def next_articles(count: int, *, start: datetime, days: float, seed: int = 5) -> list[ArticleIn]:
    """The stream measured after the stored history (same every run)."""
    corpus = stream.load_corpus()
    return [
        ArticleIn(**stream.posted(a))
        for a in stream.articles(corpus, count=count, seed=seed, start=start, days=days, prefix="m")
    ]


def stream_days(articles: int) -> float:
    return max(1.0, articles / PACE)


def stored_count(db: Path) -> int:
    import sqlite3

    with sqlite3.connect(db) as connection:
        return connection.execute("SELECT count(*) FROM articles").fetchone()[0]


def copy_database(source: Path | None, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / "stories.db"
    if source is not None:
        for suffix in ("", "-wal", "-shm"):
            if Path(f"{source}{suffix}").exists():
                shutil.copyfile(f"{source}{suffix}", f"{target}{suffix}")
    return target


def stage_sums(service: StoryService) -> dict[str, float]:
    sums = {}
    for metric in service.metrics.registry.collect():
        if metric.name != "stories_ingest_stage_seconds":
            continue
        for sample in metric.samples:
            if sample.name.endswith("_sum"):
                sums[sample.labels["stage"]] = sample.value
    return sums


def make_service(settings: Settings, engine) -> StoryService:
    """A service configured from ``settings`` as ``app.main.create_app`` makes it."""
    options = {}
    if "horizon_days" in inspect.signature(StoryService).parameters and hasattr(settings, "index_horizon_days"):
        options["horizon_days"] = settings.index_horizon_days  # the index window (STORIES_INDEX_HORIZON_DAYS)
    return StoryService(make_sessionmaker(engine), **options)


def forget_embeddings() -> None:
    """Make the next run encode its stream anew: the encoder keeps the embeddings of its
    last few thousand texts (``clustering.embed``), which would serve a second run of the
    same articles from memory."""
    recent = getattr(embed, "_RECENT", None)
    if recent is not None:
        recent._vectors.clear()


def one_run(
    source: Path | None, articles: list[ArticleIn], batch: int, profiler: cProfile.Profile | None = None
) -> Run:
    forget_embeddings()
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        db = copy_database(source, Path(tmp))
        settings = Settings(database_url=f"sqlite:///{db}")
        engine = make_engine(settings)
        try:
            migrate.upgrade(engine)
            service = make_service(settings, engine)
            began = time.perf_counter()
            service.load()
            load_seconds = time.perf_counter() - began
            if profiler is not None:
                profiler.enable()
            began = time.perf_counter()
            created = 0
            for i in range(0, len(articles), batch):
                created += sum(o.status == "created" for o in service.ingest(articles[i : i + batch]))
            seconds = time.perf_counter() - began
            if profiler is not None:
                profiler.disable()
            rss = psutil.Process().memory_info().rss
            run = Run(len(articles) / seconds, load_seconds, rss, stage_sums(service), created)
            run.kept_seconds = kept_load_seconds(service, Path(tmp) / "stored.index")
            return run
        finally:
            engine.dispose()


def kept_load_seconds(service: StoryService, path: Path) -> float | None:
    """Seconds to fill fresh caches from the index ``service`` keeps in ``path`` (written
    first, as a shutdown writes it); None for a revision that keeps none."""
    caches = getattr(service, "caches", None)
    if not hasattr(caches, "save"):
        return None
    from app.service import snapshot  # a revision with ``Caches.save`` has it

    with service.lock, service.sessions.begin() as session:
        caches.save(session, path)
    fresh = type(caches)(caches.horizon_days)
    with service.sessions.begin() as session:
        if snapshot.read(path, fresh.index, session=session) is None:  # not trusted: a start would rebuild
            return None
        began = time.perf_counter()
        fresh.start(session, path)
        return time.perf_counter() - began


def measure(
    source: Path | None,
    *,
    articles: int,
    batch: int,
    runs: int,
    days: float | None = None,
    start: datetime = stream.DEFAULT_START,
    verbose: bool = True,
) -> list[Run]:
    """``runs`` runs of ingesting ``articles`` after the stored history of ``source``."""
    if days is None:
        days = stream_days(articles)
    stream_articles = next_articles(articles, start=start, days=days)
    results = []
    for k in range(runs):
        run = one_run(source, stream_articles, batch)
        results.append(run)
        if verbose:
            print_run(k + 1, run)
    return results


def print_run(number: int, run: Run) -> None:
    print(
        f"  run {number}: {run.articles_per_second:.1f} articles/s, caches loaded in {run.load_seconds:.1f} s "
        f"(from the kept index: {_seconds(run.kept_seconds)}), RSS {run.rss_bytes / 2**20:.0f} MiB, "
        f"{run.created} created",
        flush=True,
    )


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def print_stages(runs: list[Run], articles: int) -> None:
    keys = [k for k in (*PER_ARTICLE, *PER_BATCH) if any(k in r.stages for r in runs)]
    per = {k: median([r.stages.get(k, 0.0) for r in runs]) * 1000 / articles for k in keys}
    transaction = per.get("transaction", 0.0)
    inside = sum(v for k, v in per.items() if k not in ("transaction", "prepare"))
    print("\n| stage (service's own timings) | ms/article | share of the transaction |")
    print("|---|---|---|")
    print(f"| prepare (off the lock: extract, embed, vectorise, fingerprint) | {per.get('prepare', 0.0):.3f} | |")
    for k in keys:
        if k not in ("transaction", "prepare"):
            print(
                f"| {k} | {per[k]:.3f} | {100 * per[k] / transaction:.0f}% |"
                if transaction
                else f"| {k} | {per[k]:.3f} | |"
            )
    if transaction:
        print(
            f"| other (key lookups, catch-up, inserts, source lines, change feed, commit) | {transaction - inside:.3f} | "
            f"{100 * (transaction - inside) / transaction:.0f}% |"
        )
    print(f"| whole transaction | {transaction:.3f} | 100% |")
    spans = [1000 * r.stages.get("transaction", 0.0) / articles for r in runs]
    print(f"\ntime per article inside the write lock: {spread(spans, 3)} ms (goal <= 1 ms with 10k stored)")


def print_profile(profiler: cProfile.Profile, top: int) -> None:
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(r"/(app|clustering)/", top)
    print(out.getvalue())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--from-db", type=Path, help="stored database built by bench.seed (copied per run)")
    parser.add_argument("--stored", type=int, choices=[0], help="0: start from an empty database")
    parser.add_argument("--articles", type=int, default=2000, help="articles ingested and timed per run")
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--days", type=float, help=f"days the measured stream spreads over (default: {PACE:g} a day)")
    parser.add_argument("--profile", action="store_true", help="one more run under cProfile: top functions")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    if (args.from_db is None) == (args.stored is None):
        parser.error("give --from-db FILE or --stored 0")
    require_data()
    print_header("whole ingest, one process, SQLite on disk")
    source = args.from_db
    stored = stored_count(source) if source else 0
    print(
        f"{stored} articles stored; ingesting {args.articles} more in batches of {args.batch}; {args.runs} runs",
        flush=True,
    )
    runs = measure(source, articles=args.articles, batch=args.batch, runs=args.runs, days=args.days)
    print(f"\nthroughput: {spread([r.articles_per_second for r in runs])} articles/s")
    print(f"cache rebuild at start (StoryService.load): {spread([r.load_seconds for r in runs])} s")
    print(f"RSS after: {spread([r.rss_bytes / 2**20 for r in runs], 0)} MiB")
    print_stages(runs, args.articles)
    if args.profile:
        profiler = cProfile.Profile()
        days = args.days or stream_days(args.articles)
        one_run(source, next_articles(args.articles, start=stream.DEFAULT_START, days=days), args.batch, profiler)
        print("\ncProfile of one more run (ingest only, cache rebuild excluded):")
        print_profile(profiler, args.top)


if __name__ == "__main__":
    main()
