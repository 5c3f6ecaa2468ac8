"""Throughput of 1, 2 and 3 replicas on one PostgreSQL (not a test: no timing assertions).

    python -m bench.replicas                       # giveme5w1h + syndicated copies if present, else invented news
    python -m bench.replicas --replicas 1 2 3 --runs 3 --clients 6 --batch 10
    python -m bench.replicas --synthetic           # invented news only (tests/synthetic_news.py)
    python -m bench.replicas --replicas 1 2 --workers 1 --generated 2000 --batch 50   # a crawl in time order

For each replica count and each run: a fresh PostgreSQL schema (``STORIES_TEST_POSTGRES_URL``,
default the local ``test`` database), N ``stories serve`` processes on loopback ports (the
first migrates), then ``--clients`` concurrent clients post the same stream in batches of
``--batch`` via ``POST /v1/articles/batch``, batch k to replica k mod N. Prints articles/s
(median of the runs) and the ratio to one replica, plus where the time went per article,
read from the replicas' ``/metrics`` (``stories_ingest_stage_seconds``): ``prepare``
runs before the write step, in each replica's worker processes; assign, store and
summarise run inside the serialised step (holding the fleet-wide advisory lock);
``transaction`` also counts the wait for that lock, the catch-up and the commit.

``--workers`` sets ``STORIES_WORKERS`` of every replica. On one machine, replicas share
its cores: ``--workers 1`` gives each replica one core's worth of preparing, as a
replica per machine (or per core) would have, so the ratio measures how the fleet's
shared write step scales rather than how processes fight over two cores.
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import httpx

from tests.servers import Server, fresh_database

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "giveme5w1h" / "articles.jsonl"
INSIDE = ("assign", "store", "summarise")  # run holding the lock
STAGE = re.compile(r'^stories_ingest_stage_seconds_(sum|count)\{stage="([^"]+)"\} ([0-9.e+-]+)$')


def stream(synthetic: bool, generated: int = 0) -> tuple[str, list[dict]]:
    if generated:
        from bench import stream as news

        corpus = news.load_corpus()
        articles = news.articles(corpus, count=generated, seed=5, days=max(1.0, generated / 1400), prefix="r")
        return f"bench.stream, {generated} articles over {max(1.0, generated / 1400):g} days", [
            news.posted(a) for a in articles
        ]
    if not synthetic and DATA.exists():
        from evaluation.evaluate import read_jsonl
        from tests.test_replicas import as_posted, syndicated

        return "giveme5w1h + syndicated copies", [as_posted(r) for r in syndicated(read_jsonl(DATA))]
    from tests.test_replicas import as_posted, synthetic_stream

    return "invented news (tests/synthetic_news.py)", [as_posted(r) for r in synthetic_stream()]


def post_all(urls: list[str], articles: list[dict], clients: int, batch: int) -> float:
    """Seconds to get every article acknowledged."""
    batches = [articles[i : i + batch] for i in range(0, len(articles), batch)]
    lock = threading.Lock()
    next_batch = [0]
    failures: list[str] = []

    def client_loop() -> None:
        with httpx.Client(timeout=120.0) as client:
            while True:
                with lock:
                    k = next_batch[0]
                    next_batch[0] += 1
                if k >= len(batches):
                    return
                response = client.post(f"{urls[k % len(urls)]}/v1/articles/batch", json={"articles": batches[k]})
                bad = response.status_code != 200 or any(r["status"] == "error" for r in response.json()["results"])
                if bad:
                    failures.append(f"batch {k}: {response.status_code} {response.text[:200]}")

    threads = [threading.Thread(target=client_loop) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    if failures:
        raise SystemExit(f"requests failed: {failures[:3]}")
    return seconds


def stage_seconds(urls: list[str]) -> dict[str, float]:
    """Total seconds per ingest stage over the replicas."""
    totals: dict[str, float] = defaultdict(float)
    for url in urls:
        for line in httpx.get(f"{url}/metrics", timeout=10.0).text.splitlines():
            found = STAGE.match(line)
            if found and found.group(1) == "sum":
                totals[found.group(2)] += float(found.group(3))
    return dict(totals)


def one_run(
    n: int, articles: list[dict], clients: int, batch: int, directory: Path, workers: int | None = None
) -> tuple[float, dict[str, float]]:
    settings = {} if workers is None else {"workers": str(workers)}
    with fresh_database("postgresql", directory) as database_url:
        servers = [Server(database_url, directory / f"bench-{n}-{i}.log", **settings) for i in range(n)]
        try:
            servers[0].start()  # migrates alone
            for server in servers[1:]:
                server.start()
            urls = [s.url for s in servers]
            seconds = post_all(urls, articles, clients, batch)
            return len(articles) / seconds, stage_seconds(urls)
        finally:
            for server in servers:
                server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--synthetic", action="store_true", help="invented news even when the labelled set exists")
    parser.add_argument("--workers", type=int, help="STORIES_WORKERS of every replica (default: one per core)")
    parser.add_argument(
        "--generated",
        type=int,
        default=0,
        help="post this many bench.stream articles (a crawl in time order) instead of the labelled set",
    )
    args = parser.parse_args()
    name, articles = stream(args.synthetic, args.generated)
    print(
        f"stream: {name}, {len(articles)} articles; {args.clients} clients, batches of {args.batch}, "
        f"STORIES_WORKERS={args.workers if args.workers is not None else 'one per core'}, median of {args.runs} runs"
    )
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-replicas-") as tmp:
        for n in args.replicas:
            rates, stages = [], []
            for run in range(args.runs):
                rate, spent = one_run(n, articles, args.clients, args.batch, Path(tmp), args.workers)
                rates.append(rate)
                stages.append(spent)
                print(f"  {n} replica(s), run {run + 1}: {rate:.1f} articles/s", flush=True)
            per_article = {
                stage: 1000 * statistics.median(s.get(stage, 0.0) for s in stages) / len(articles)
                for stage in sorted({k for s in stages for k in s})
            }
            rows.append((n, statistics.median(rates), per_article))
    base = rows[0][1]
    print("\n| replicas | articles/s (median) | vs 1 replica | work inside the lock, ms/article |")
    print("|---|---|---|---|")
    for n, rate, per_article in rows:
        inside = sum(v for k, v in per_article.items() if k in INSIDE)
        print(f"| {n} | {rate:.1f} | {rate / base:.2f}x | {inside:.1f} |")
    print(
        "\nms per article by stage (summed over replicas; `transaction` also counts waiting for the lock and commit):"
    )
    for n, _, per_article in rows:
        print(f"  {n}: " + ", ".join(f"{k} {v:.1f}" for k, v in per_article.items()))


if __name__ == "__main__":
    main()
