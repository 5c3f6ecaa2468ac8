"""Restart: time from process start to ``/readyz`` 200 with N articles stored, and RSS then.

    python -m bench.seed --db /tmp/stored-100k.db --stored 100000
    python -m bench.restart --db /tmp/stored-100k.db --runs 3

Each run starts a real ``stories serve`` on the stored database (loopback), measures the
wall time from ``Popen`` to the first ``/readyz`` 200 (imports, migration check, rebuilding
the in-memory caches from the database), reads the server's RSS with psutil once ready,
and stops it with SIGTERM. Median of ``--runs``.
"""

from __future__ import annotations

import argparse
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


def restart(db: Path, log: Path, timeout: float = START_TIMEOUT) -> tuple[float, int]:
    """(seconds to ready, RSS in bytes once ready) of one start."""
    server = Server(f"sqlite:///{db}", log)
    began = time.perf_counter()
    server.start(timeout=timeout)
    seconds = time.perf_counter() - began
    try:
        rss = psutil.Process(server.process.pid).memory_info().rss
    finally:
        server.stop()
    return seconds, rss


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
    print(f"{stored} articles stored; {args.runs} runs", flush=True)
    seconds, rss = [], []
    with tempfile.TemporaryDirectory(prefix="bench-restart-") as tmp:
        for run in range(args.runs):
            s, r = restart(args.db, Path(tmp) / "serve.log")
            seconds.append(s)
            rss.append(r / 2**20)
            print(f"  run {run + 1}: ready in {s:.1f} s, RSS {r / 2**20:.0f} MiB", flush=True)
    print(f"\nready (/readyz 200) after {spread(seconds)} s (goal <= 15 s with 1M stored)")
    print(f"RSS once ready: {spread(rss, 0)} MiB (goal <= 1536 MiB with 1M stored)")


if __name__ == "__main__":
    main()
