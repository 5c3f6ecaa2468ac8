"""``POST /v1/articles/batch`` end to end, the service beside the baseline; single-article latency.

    python -m bench.http --articles 2000 --batch 200 --runs 3 --workers 1 2 --single 3000 --rate 100

Each run starts, on loopback, a real ``stories serve`` (``tests.servers.Server``) on a fresh
SQLite file (or a copy of ``--from-db``, built by ``bench.seed``) once for each
``--workers`` count (``STORIES_WORKERS``: processes preparing articles off the write
lock), and the straightforward pipeline of ``bench.baseline`` on its own SQLite file, then
posts the same ``bench.stream`` articles to each in batches of ``--batch`` from one
client, one batch after another, and times until the last batch is acknowledged. The
systems take turns, in an order that rotates from run to run. Prints articles/s of each
(median of runs), and per run the ratio of the service (most workers) to the baseline
and of the most workers to one (medians).

Then the single-article row: ``--single`` further articles of the stream are posted one
per request to ``POST /v1/articles`` on a fresh service (most workers) holding the batch
stream, paced at ``--rate`` requests/s open loop (each request is sent at its scheduled
time whether or not earlier ones have returned, and its latency counts from that time),
and p50/p99 latency and failed requests are printed (median over runs).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")

from bench import stream  # noqa: E402
from bench.ingest import copy_database  # noqa: E402
from bench.report import median, percentile, print_header, require_data, spread  # noqa: E402
from tests.servers import LOOPBACK, Server, free_port  # noqa: E402

START_TIMEOUT = 900.0  # a large stored database rebuilds its caches before /readyz says 200


class Baseline:
    """``python -m bench.baseline`` in a process of its own, on loopback."""

    def __init__(self, db: Path, log: Path):
        self.port = free_port()
        self.db, self.log = db, log
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def __enter__(self) -> Baseline:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bench.baseline", "--port", str(self.port), "--db", str(self.db)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=Path(__file__).resolve().parents[1],
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"baseline exited with {self.process.returncode}: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError("baseline not ready within 60 s")

    def __exit__(self, *_exc) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def cpu_seconds(pid: int) -> tuple[float, float]:
    """CPU seconds so far of a server process and of its children (the prepare workers)."""
    import psutil

    main = psutil.Process(pid)
    children = sum(sum(c.cpu_times()[:2]) for c in main.children(recursive=True))
    return sum(main.cpu_times()[:2]), children


def post_batches(url: str, articles: list[dict], batch: int) -> float:
    """Seconds until every batch is acknowledged (one client, one batch at a time)."""
    with httpx.Client(timeout=600.0) as client:
        began = time.perf_counter()
        for i in range(0, len(articles), batch):
            response = client.post(f"{url}/v1/articles/batch", json={"articles": articles[i : i + batch]})
            if response.status_code != 200:
                raise SystemExit(f"batch {i // batch} to {url}: {response.status_code} {response.text[:300]}")
            bad = [r for r in response.json()["results"] if r.get("status") == "error"]
            if len(bad) > len(articles[i : i + batch]) // 10:
                raise SystemExit(f"batch {i // batch} to {url}: {len(bad)} errors, e.g. {bad[0]}")
        return time.perf_counter() - began


def paced_singles(url: str, articles: list[dict], rate: float, workers: int = 64) -> tuple[list[float], int, float]:
    """Open-loop POSTs of one article each at ``rate``/s: latencies (s) from each scheduled
    send time, the number of failed requests, and the rate requests were sent at."""
    local = threading.local()
    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()

    def send(article: dict, scheduled: float) -> None:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(timeout=60.0)
        try:
            ok = client.post(f"{url}/v1/articles", json=article).status_code in (200, 201)
        except httpx.HTTPError:
            ok = False
        done = time.perf_counter()
        with lock:
            latencies.append(done - scheduled)
            failures[0] += not ok

    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for i, article in enumerate(articles):
            scheduled = began + i / rate
            pause = scheduled - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            pool.submit(send, article, scheduled)
        sent = time.perf_counter() - began
    return latencies, failures[0], len(articles) / max(sent, 1e-9)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=3000, help="articles posted in batches per run (0: skip)")
    parser.add_argument("--batch", type=int, default=200, help="articles per batch (100-500)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--single", type=int, default=1000, help="single-article POSTs per run (0: skip)")
    parser.add_argument("--rate", type=float, default=100.0, help="single-article requests per second")
    parser.add_argument("--workers", type=int, nargs="+", default=[2], help="STORIES_WORKERS of each service run")
    parser.add_argument("--from-db", type=Path, help="start the service on a copy of this bench.seed database")
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args(argv)
    require_data()
    print_header("HTTP: POST /v1/articles/batch (service vs baseline) and paced single POSTs")
    corpus = stream.load_corpus()
    generated = [
        stream.posted(a)
        for a in stream.articles(
            corpus,
            count=args.articles + args.single,
            seed=args.seed,
            days=max(1.0, (args.articles + args.single) / 1400),
            prefix="m",
        )
    ]
    batches, singles = generated[: args.articles], generated[args.articles :]
    print(
        f"{len(batches)} articles in batches of {args.batch}; {len(singles)} single POSTs at {args.rate:g}/s; "
        f"service on {'a copy of ' + str(args.from_db) if args.from_db else 'an empty database'}; {args.runs} runs",
        flush=True,
    )
    most = max(args.workers)
    rates: dict[str, list[float]] = {f"workers={w}": [] for w in args.workers} | {"baseline": []}
    cpu: dict[str, list[list[float]]] = {f"workers={w}": [] for w in args.workers}
    ratios, scaling, p50s, p99s, achieved, failed = [], [], [], [], [], []
    single_cpu: list[list[float]] = []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="bench-http-") as tmp:
            directory = Path(tmp)

            def service_side(workers: int, directory: Path = directory) -> float:
                db = copy_database(args.from_db, directory / f"w{workers}")
                server = Server(f"sqlite:///{db}", directory / "serve.log", workers=str(workers))
                server.start(timeout=START_TIMEOUT)
                try:
                    before = cpu_seconds(server.process.pid)
                    rate = len(batches) / post_batches(server.url, batches, args.batch)
                    spent = [1000 * (a - b) / len(batches) for a, b in zip(cpu_seconds(server.process.pid), before)]
                    cpu[f"workers={workers}"].append(spent)
                    return rate
                finally:
                    server.stop()

            def baseline_side(directory: Path = directory) -> float:
                with Baseline(directory / "baseline.db", directory / "baseline.log") as baseline:
                    return len(batches) / post_batches(baseline.url, batches, args.batch)

            line = f"  run {run + 1}:"
            if batches:
                sides = [(f"workers={w}", lambda w=w: service_side(w)) for w in args.workers]
                sides.append(("baseline", baseline_side))
                shift = run % len(sides)
                got = {}
                for name, side in sides[shift:] + sides[:shift]:
                    got[name] = side()
                    rates[name].append(got[name])
                ratios.append(got[f"workers={most}"] / got["baseline"])
                if len(args.workers) > 1:
                    scaling.append(got[f"workers={most}"] / got[f"workers={min(args.workers)}"])
                line += " " + ", ".join(f"{name} {rate:.1f}/s" for name, rate in got.items()) + ";"
            if singles:
                db = copy_database(args.from_db, directory / "singles")
                server = Server(f"sqlite:///{db}", directory / "serve.log", workers=str(most))
                server.start(timeout=START_TIMEOUT)
                try:
                    if batches:
                        post_batches(server.url, batches, args.batch)
                    before = cpu_seconds(server.process.pid)
                    latencies, failures, rate = paced_singles(server.url, singles, args.rate)
                    single_cpu.append(
                        [1000 * (a - b) / len(singles) for a, b in zip(cpu_seconds(server.process.pid), before)]
                    )
                finally:
                    server.stop()
                p50s.append(1000 * percentile(latencies, 50))
                p99s.append(1000 * percentile(latencies, 99))
                achieved.append(rate)
                failed.append(failures)
                line += f" single POSTs p50 {p50s[-1]:.1f} ms, p99 {p99s[-1]:.1f} ms, {failures} failed"
            print(line, flush=True)
    if batches:
        print("\n| system | POST /v1/articles/batch, articles/s |")
        print("|---|---|")
        for name, values in rates.items():
            label = (
                f"service, STORIES_{name.upper()} (stories serve, SQLite on disk)"
                if name != "baseline"
                else ("baseline (bench.baseline, SQLite on disk)")
            )
            print(f"| {label} | {spread(values)} |")
        print(f"| service (workers={most}) / baseline, per run | {spread(ratios, 2)} |")
        if scaling:
            print(f"| workers={most} / workers={min(args.workers)}, per run | {spread(scaling, 2)} |")
        print(
            "\nCPU per article (ms, median of runs): the server's main process (HTTP, the write step) and its "
            "prepare workers together"
        )
        for name, runs in cpu.items():
            print(f"  {name}: main {median([r[0] for r in runs]):.2f}, workers {median([r[1] for r in runs]):.2f}")
    if singles:
        print(
            f"\nsingle-article POST at {args.rate:g}/s open loop, {len(singles)} requests: p50 {spread(p50s)} ms, "
            f"p99 {spread(p99s)} ms; sent at {median(achieved):.0f} requests/s; failed {failed}"
        )
        print(
            f"CPU per single POST (ms, median of runs): main {median([r[0] for r in single_cpu]):.2f}, "
            f"workers {median([r[1] for r in single_cpu]):.2f}"
        )


if __name__ == "__main__":
    main()
