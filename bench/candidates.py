"""Candidate search at a stored size: the terms read as the service reads them, against counting every term.

    python -m bench.seed --db /tmp/stored-1000000.db --stored 1000000
    python -m bench.candidates --db /tmp/stored-1000000.db --articles 600

Copies the stored database, starts a ``StoryService`` on it (the caches rebuilt, as
``bench.ingest`` does) and ingests the next ``--articles`` articles of the stream. Each
candidate search the write step makes is run twice on the same index, in an order
that alternates: as the service runs it (``StoryPostings.rarest`` reads the key terms
in rounds and stops once the terms read settle which are taken) and counting every
key term (as if every term could be taken). Both must find the same candidates, or
the command fails. Prints the median and 90th percentile of each way's time, and the
story ids each way reads (pairs gathered) against those taken.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from app.config import Settings
from app.store import migrate
from app.store.db import make_engine
from bench import ingest, stream
from bench.report import print_header, require_data
from clustering.assign import StoryIndex
from clustering.candidates import StoryPostings

EVERY_TERM = 10**9  # stories "left since the last compaction": no term is certain to be too common


class _Timed:
    """Wraps the candidate search and the postings' reads while a stream is ingested."""

    def __init__(self) -> None:
        self.seconds = {"service": [], "every term": []}
        self.read = {"service": [], "every term": []}
        self.taken: list[int] = []
        self._reading = 0
        self._search = StoryIndex._candidate_stories
        self._lookup = StoryPostings._lookup

    def install(self) -> None:
        timed = self

        def lookup(postings, terms, low, high, live):
            found = timed._lookup(postings, terms, low, high, live)
            timed._reading += len(found[1])
            return found

        def search(index, feats, published_at):
            ways = ["service", "every term"]
            if len(timed.taken) % 2:
                ways.reverse()
            found = {}
            for way in ways:
                timed._reading = 0
                if way == "every term":
                    index._left_since_compacted += EVERY_TERM
                began = time.perf_counter()
                try:
                    found[way] = timed._search(index, feats, published_at)
                finally:
                    if way == "every term":
                        index._left_since_compacted -= EVERY_TERM
                timed.seconds[way].append(time.perf_counter() - began)
                timed.read[way].append(timed._reading)
            ids = {way: [[s.id for s in part] for part in stories] for way, stories in found.items()}
            if ids["service"] != ids["every term"]:
                raise AssertionError(f"the two ways found different candidates: {ids}")
            _, taken = index.postings_.rarest(
                index._key_terms(feats), index._spans.live, index.params.max_postings, index._left_since_compacted
            )
            timed.taken.append(len(taken))
            return found["service"]

        StoryPostings._lookup = lookup
        StoryIndex._candidate_stories = search

    def uninstall(self) -> None:
        StoryPostings._lookup = self._lookup
        StoryIndex._candidate_stories = self._search


def _quantiles(values: list[float], scale: float = 1.0, digits: int = 0) -> str:
    v = np.asarray(values) * scale
    return f"median {np.median(v):.{digits}f}, p90 {np.percentile(v, 90):.{digits}f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", type=Path, required=True, help="stored database built by bench.seed (copied)")
    parser.add_argument("--articles", type=int, default=600)
    parser.add_argument("--batch", type=int, default=200)
    args = parser.parse_args(argv)
    require_data()
    print_header("candidate search: as the service reads the postings, and counting every term")
    print(f"{ingest.stored_count(args.db)} articles stored; ingesting {args.articles} more", flush=True)
    articles = ingest.next_articles(args.articles, start=stream.DEFAULT_START, days=ingest.stream_days(args.articles))
    timed = _Timed()
    with tempfile.TemporaryDirectory(prefix="bench-candidates-") as tmp:
        db = ingest.copy_database(args.db, Path(tmp))
        settings = Settings(database_url=f"sqlite:///{db}")
        engine = make_engine(settings)
        try:
            migrate.upgrade(engine)
            service = ingest.make_service(settings, engine)
            service.load()
            timed.install()
            try:
                for i in range(0, len(articles), args.batch):
                    service.ingest(articles[i : i + args.batch])
            finally:
                timed.uninstall()
        finally:
            engine.dispose()
    print(f"\n{len(timed.taken)} candidate searches, the same candidates both ways")
    print(f"story ids taken (the budget): {_quantiles(timed.taken)}")
    for way in ("service", "every term"):
        print(f"{way:>10}: {_quantiles(timed.seconds[way], 1e6)} µs; story ids read {_quantiles(timed.read[way])}")
    ratio = np.median(timed.seconds["service"]) / np.median(timed.seconds["every term"])
    print(f"median time, service against every term: {ratio:.2f}×")


if __name__ == "__main__":
    main()
