"""Restart: time from process start to ``/readyz`` 200 with N articles stored, and RSS then,
rebuilding the index from the database and loading the index kept at the last shutdown.

    python -m bench.seed --db /tmp/stored-100k.db --stored 100000
    python -m bench.restart --db /tmp/stored-100k.db --runs 3

Each run starts a real ``stories serve`` on the stored database (loopback), measures the
wall time from ``Popen`` to the first ``/readyz`` 200 (imports, migration check, filling
the in-memory caches), reads the RSS of the server and of its prepare workers with
psutil once ready, and stops it with SIGTERM, timing the stop (a server that keeps its
index writes it then). The two ways to start take turns in every run: ``STORIES_INDEX_SNAPSHOT=off`` (every window article
replayed from the database) and a kept index (``app.service.snapshot``), written by one
unmeasured start and stop first. Medians of ``--runs``.
"""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import tempfile
import time
import warnings
from pathlib import Path

import psutil

warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")

from bench.report import print_header, spread  # noqa: E402
from tests.servers import Server  # noqa: E402

START_TIMEOUT = 1800.0
STOP_TIMEOUT = 600.0


def restart(db: Path, log: Path, snapshot: str, timeout: float = START_TIMEOUT) -> tuple[float, int, int, float]:
    """(seconds to ready, RSS in bytes once ready, RSS of its child processes then (the
    prepare workers and their fork server), seconds to stop) of one start."""
    server = Server(f"sqlite:///{db}", log, index_snapshot=snapshot)
    began = time.perf_counter()
    server.start(timeout=timeout)
    seconds = time.perf_counter() - began
    try:
        process = psutil.Process(server.process.pid)
        rss = process.memory_info().rss
        children = sum(child.memory_info().rss for child in process.children(recursive=True))
    finally:
        began = time.perf_counter()
        os.kill(server.process.pid, signal.SIGTERM)
        server.process.wait(timeout=STOP_TIMEOUT)
        stopped = time.perf_counter() - began
    return seconds, rss, children, stopped


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", type=Path, required=True, help="stored SQLite database (bench.seed)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    if not args.db.exists():
        parser.error(f"{args.db} does not exist: build it with python -m bench.seed")
    print_header("restart to ready")
    with sqlite3.connect(args.db) as connection:
        stored = connection.execute("SELECT count(*) FROM articles").fetchone()[0]
    print(f"{stored} articles stored; {args.runs} runs of each way to start", flush=True)
    measured: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-restart-") as tmp:
        kept = Path(tmp) / "stories.index"
        ways = {"rebuilt from the database": "off", "loaded from the kept index": str(kept)}
        _, _, _, stopped = restart(args.db, Path(tmp) / "serve.log", str(kept))
        print(f"  kept the index: {kept.stat().st_size / 2**20:.0f} MiB, written in a stop of {stopped:.1f} s")
        for run in range(args.runs):
            for way, snapshot in ways.items():
                s, r, c, stop = restart(args.db, Path(tmp) / "serve.log", snapshot)
                row = measured.setdefault(way, {"ready": [], "rss": [], "workers": [], "stop": []})
                row["ready"].append(s)
                row["rss"].append(r / 2**20)
                row["workers"].append(c / 2**20)
                row["stop"].append(stop)
                print(
                    f"  run {run + 1}, {way}: ready in {s:.1f} s, RSS {r / 2**20:.0f} MiB "
                    f"(prepare workers {c / 2**20:.0f} MiB), stop {stop:.1f} s",
                    flush=True,
                )
    print()
    for way, row in measured.items():
        print(f"{way}:")
        print(f"  ready (/readyz 200) after {spread(row['ready'])} s (goal <= 15 s with 1M stored)")
        print(f"  RSS once ready: {spread(row['rss'], 0)} MiB (goal <= 1000 MiB with 1M stored)")
        print(f"  prepare workers and their fork server, together: {spread(row['workers'], 0)} MiB")
        print(f"  stop (SIGTERM to exit): {spread(row['stop'])} s")
    rebuilt, loaded = (measured[way]["ready"] for way in ways)
    ratios = sorted(b / a for a, b in zip(rebuilt, loaded))
    print(f"loaded / rebuilt, run by run: {', '.join(f'{r:.2f}' for r in ratios)}")


if __name__ == "__main__":
    main()
