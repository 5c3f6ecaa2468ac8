"""Read latency: ``GET /v1/clusters`` and ``GET /v1/clusters/{id}`` under 50 concurrent readers.

    python -m bench.seed --db /tmp/stored-100k.db --stored 100000
    python -m bench.reads --db /tmp/stored-100k.db --readers 50 --seconds 15 --runs 3

Starts a real ``stories serve`` on the stored database (loopback), waits for ``/readyz``,
then ``--readers`` concurrent clients (asyncio, one connection each) read for
``--seconds``: each request is, at random, the first page of ``GET /v1/clusters``
(default sort and limit) or ``GET /v1/clusters/{id}`` of a random live story. Latency is
per request, from send to the last byte; p50/p99 per route and requests/s, median of
``--runs`` runs (the server is started once). Nothing is written. Then one run of
``GET /healthz`` alone with the same readers: the floor the HTTP stack and the client
(on the same machine) set whatever the reads cost. ``--role reader`` starts the server as
a reader (``STORIES_ROLE=reader``: no index, no encoder), to compare with a full process.

With ``--writer``, a writer ingests while the readers read, the floor included: the
server runs on a copy of the database, and one client posts the next articles of a
``bench.stream`` continuing the stored history in batches of ``--write-batch``, back to
back, for as long as reads are measured. With ``--role all`` the one process serves both;
with ``--role reader`` the reads go to the reader and the writes to a second process
(``STORIES_ROLE=all``) on the same database, the deployment README "Reads at scale"
describes. Printed: articles written a second, and each route's p99 and the request rate
against the floor (the goal at 1M: p99 at most 1.5x the floor's, rate at least 80%).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import tempfile
import threading
import time
import warnings
from collections import Counter, defaultdict
from pathlib import Path

import httpx
import psutil

warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")

from bench import stream  # noqa: E402
from bench.ingest import PACE, copy_database  # noqa: E402
from bench.report import median, percentile, print_header, require_data, spread  # noqa: E402
from tests.servers import Server  # noqa: E402

START_TIMEOUT = 1800.0


def story_reads(ids: list[int]):
    """Half first pages of the listing, half one random story."""

    def pick(rng: random.Random) -> tuple[str, str]:
        return ("list", "/v1/clusters") if rng.random() < 0.5 else ("one", f"/v1/clusters/{rng.choice(ids)}")

    return pick


def liveness_reads(_rng: random.Random) -> tuple[str, str]:
    """``/healthz`` only: no database, no summary; the HTTP stack's own floor."""
    return "healthz", "/healthz"


async def read_for(url: str, pick, readers: int, seconds: float, seed: int) -> dict[str, list[float]]:
    latencies: dict[str, list[float]] = defaultdict(list)
    errors = [0]
    failures: Counter[str] = Counter()
    rng = random.Random(seed)
    limits = httpx.Limits(max_connections=readers, max_keepalive_connections=readers)
    async with httpx.AsyncClient(base_url=url, timeout=60.0, limits=limits) as client:
        deadline = time.perf_counter() + seconds

        async def reader() -> None:
            while time.perf_counter() < deadline:
                route, path = pick(rng)
                began = time.perf_counter()
                try:
                    response = await client.get(path)
                    await response.aread()
                except httpx.TransportError as err:  # counted and reported, not a latency
                    failures[type(err).__name__] += 1
                    continue
                latencies[route].append(time.perf_counter() - began)
                errors[0] += response.status_code != 200

        await asyncio.gather(*(reader() for _ in range(readers)))
    if errors[0]:
        print(f"  {errors[0]} requests did not answer 200")
    if failures:
        print(f"  requests that got no answer: {dict(failures)}")
    return latencies


class Writer(threading.Thread):
    """One client posting ``articles`` to ``url`` in batches, back to back, until stopped
    (or out of articles); counts what was acknowledged and when."""

    def __init__(self, url: str, articles: list[dict], batch: int):
        super().__init__(daemon=True)
        self.url, self.articles, self.batch = url, articles, batch
        self.stopped = threading.Event()
        self.written: list[tuple[float, int]] = []  # (time acknowledged, articles in the batch)
        self.failure: str | None = None

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=600.0) as client:
            for i in range(0, len(self.articles), self.batch):
                if self.stopped.is_set():
                    return
                response = client.post("/v1/articles/batch", json={"articles": self.articles[i : i + self.batch]})
                if response.status_code != 200:
                    self.failure = f"{response.status_code} {response.text[:300]}"
                    return
                self.written.append((time.perf_counter(), len(response.json()["results"])))
        self.failure = f"ran out of the {len(self.articles)} articles generated; give more with --write-articles"

    def rate(self, began: float, ended: float) -> float:
        """Articles acknowledged a second between ``began`` and ``ended``."""
        return sum(n for at, n in self.written if began <= at < ended) / (ended - began)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", type=Path, required=True, help="stored SQLite database (bench.seed)")
    parser.add_argument("--readers", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--role", choices=("all", "reader"), default="all", help="STORIES_ROLE of the server")
    parser.add_argument("--writer", action="store_true", help="a writer ingests while the readers read")
    parser.add_argument("--write-batch", type=int, default=20, help="articles per batch the writer posts")
    parser.add_argument("--write-articles", type=int, default=5000, help="articles generated for the writer")
    args = parser.parse_args(argv)
    if not args.db.exists():
        parser.error(f"{args.db} does not exist: build it with python -m bench.seed")
    if args.writer:
        require_data()
    print_header("reads under concurrent readers")
    with sqlite3.connect(args.db) as connection:
        stored = connection.execute("SELECT count(*) FROM articles").fetchone()[0]
        ids = [
            r[0]
            for r in connection.execute(
                "SELECT id FROM clusters WHERE merged_into IS NULL AND article_count > 0 ORDER BY random() LIMIT 5000"
            )
        ]
    print(
        f"{stored} articles stored, role {args.role}, {args.readers} readers, {args.seconds:g} s a run, "
        f"{args.runs} runs{', a writer ingesting' if args.writer else ''}",
        flush=True,
    )
    results = {"list": {"p50": [], "p99": []}, "one": {"p50": [], "p99": []}}
    rates, written = [], []
    writer = None
    with tempfile.TemporaryDirectory(prefix="bench-reads-") as tmp:
        database = copy_database(args.db, Path(tmp) / "db") if args.writer else args.db
        began = time.perf_counter()
        server = Server(f"sqlite:///{database}", Path(tmp) / "serve.log", role=args.role).start(timeout=START_TIMEOUT)
        rss = psutil.Process(server.process.pid).memory_info().rss / 2**20
        print(f"  ready in {time.perf_counter() - began:.1f} s, RSS {rss:.0f} MiB", flush=True)
        servers = [server]
        try:
            if args.writer:
                write_to = server
                if args.role == "reader":
                    write_to = Server(f"sqlite:///{database}", Path(tmp) / "writer.log", role="all")
                    servers.append(write_to.start(timeout=START_TIMEOUT))
                generated = stream.articles(
                    stream.load_corpus(),
                    count=args.write_articles,
                    days=max(1.0, args.write_articles / PACE),
                    prefix="w",
                )
                writer = Writer(write_to.url, [stream.posted(a) for a in generated], args.write_batch)
                writer.start()
            for run in range(args.runs):
                run_began = time.perf_counter()
                latencies = asyncio.run(read_for(server.url, story_reads(ids), args.readers, args.seconds, run))
                if writer is not None:
                    written.append(writer.rate(run_began, time.perf_counter()))
                total = sum(len(v) for v in latencies.values())
                rates.append(total / args.seconds)
                for route, values in latencies.items():
                    results[route]["p50"].append(1000 * percentile(values, 50))
                    results[route]["p99"].append(1000 * percentile(values, 99))
                print(
                    f"  run {run + 1}: {total / args.seconds:.0f} requests/s; list p50 "
                    f"{results['list']['p50'][-1]:.1f} ms p99 {results['list']['p99'][-1]:.1f} ms; one p50 "
                    f"{results['one']['p50'][-1]:.1f} ms p99 {results['one']['p99'][-1]:.1f} ms"
                    + (f"; {written[-1]:.1f} articles written/s" if writer is not None else ""),
                    flush=True,
                )
            floor_began = time.perf_counter()
            floor = asyncio.run(read_for(server.url, liveness_reads, args.readers, args.seconds, 0))["healthz"]
            if writer is not None:
                floor_written = writer.rate(floor_began, time.perf_counter())
                writer.stopped.set()
                writer.join()
                writer_rss = psutil.Process(write_to.process.pid).memory_info().rss / 2**20
        finally:
            for each in reversed(servers):
                each.stop()
    print("\n| route | p50 ms | p99 ms |")
    print("|---|---|---|")
    print(f"| GET /v1/clusters | {spread(results['list']['p50'])} | {spread(results['list']['p99'])} |")
    print(f"| GET /v1/clusters/{{id}} | {spread(results['one']['p50'])} | {spread(results['one']['p99'])} |")
    print(f"requests/s (both routes): {spread(rates, 0)}")
    print(
        f"floor, GET /healthz alone with the same readers (one run): p50 {1000 * percentile(floor, 50):.1f} ms, "
        f"p99 {1000 * percentile(floor, 99):.1f} ms, {len(floor) / args.seconds:.0f} requests/s"
    )
    floor_p99, floor_rate = 1000 * percentile(floor, 99), len(floor) / args.seconds
    print(
        f"against the floor: GET /v1/clusters p99 {median(results['list']['p99']) / floor_p99:.2f}x, "
        f"GET /v1/clusters/{{id}} p99 {median(results['one']['p99']) / floor_p99:.2f}x (goal <= 1.5x); "
        f"requests/s {median(rates) / floor_rate:.0%} (goal >= 80%)"
    )
    if writer is not None:
        print(
            f"written while reading: {spread(written)} articles/s (during the floor run: {floor_written:.1f}); "
            f"{sum(n for _, n in writer.written)} in all; the writer's RSS then {writer_rss:.0f} MiB "
            "(its prepare workers apart)"
        )
        if writer.failure:
            print(f"the writer stopped before the reads ended: {writer.failure}")


if __name__ == "__main__":
    main()
