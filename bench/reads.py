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
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import tempfile
import time
import warnings
from collections import defaultdict
from pathlib import Path

import httpx
import psutil

warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")

from bench.report import percentile, print_header, spread  # noqa: E402
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
    rng = random.Random(seed)
    limits = httpx.Limits(max_connections=readers, max_keepalive_connections=readers)
    async with httpx.AsyncClient(base_url=url, timeout=60.0, limits=limits) as client:
        deadline = time.perf_counter() + seconds

        async def reader() -> None:
            while time.perf_counter() < deadline:
                route, path = pick(rng)
                began = time.perf_counter()
                response = await client.get(path)
                await response.aread()
                latencies[route].append(time.perf_counter() - began)
                errors[0] += response.status_code != 200

        await asyncio.gather(*(reader() for _ in range(readers)))
    if errors[0]:
        print(f"  {errors[0]} requests did not answer 200")
    return latencies


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", type=Path, required=True, help="stored SQLite database (bench.seed)")
    parser.add_argument("--readers", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--role", choices=("all", "reader"), default="all", help="STORIES_ROLE of the server")
    args = parser.parse_args(argv)
    if not args.db.exists():
        parser.error(f"{args.db} does not exist: build it with python -m bench.seed")
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
        f"{args.runs} runs",
        flush=True,
    )
    results = {"list": {"p50": [], "p99": []}, "one": {"p50": [], "p99": []}}
    rates = []
    with tempfile.TemporaryDirectory(prefix="bench-reads-") as tmp:
        began = time.perf_counter()
        server = Server(f"sqlite:///{args.db}", Path(tmp) / "serve.log", role=args.role).start(timeout=START_TIMEOUT)
        rss = psutil.Process(server.process.pid).memory_info().rss / 2**20
        print(f"  ready in {time.perf_counter() - began:.1f} s, RSS {rss:.0f} MiB", flush=True)
        try:
            for run in range(args.runs):
                latencies = asyncio.run(read_for(server.url, story_reads(ids), args.readers, args.seconds, run))
                total = sum(len(v) for v in latencies.values())
                rates.append(total / args.seconds)
                for route, values in latencies.items():
                    results[route]["p50"].append(1000 * percentile(values, 50))
                    results[route]["p99"].append(1000 * percentile(values, 99))
                print(
                    f"  run {run + 1}: {total / args.seconds:.0f} requests/s; list p50 "
                    f"{results['list']['p50'][-1]:.1f} ms p99 {results['list']['p99'][-1]:.1f} ms; one p50 "
                    f"{results['one']['p50'][-1]:.1f} ms p99 {results['one']['p99'][-1]:.1f} ms",
                    flush=True,
                )
            floor = asyncio.run(read_for(server.url, liveness_reads, args.readers, args.seconds, 0))["healthz"]
        finally:
            server.stop()
    print("\n| route | p50 ms | p99 ms (goal <= 20) |")
    print("|---|---|---|")
    print(f"| GET /v1/clusters | {spread(results['list']['p50'])} | {spread(results['list']['p99'])} |")
    print(f"| GET /v1/clusters/{{id}} | {spread(results['one']['p50'])} | {spread(results['one']['p99'])} |")
    print(f"requests/s (both routes): {spread(rates, 0)}")
    print(
        f"floor, GET /healthz alone with the same readers (one run): p50 {1000 * percentile(floor, 50):.1f} ms, "
        f"p99 {1000 * percentile(floor, 99):.1f} ms, {len(floor) / args.seconds:.0f} requests/s"
    )


if __name__ == "__main__":
    main()
