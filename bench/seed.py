"""Bulk loader FOR BENCHMARKS ONLY: a SQLite database with N stored articles, fast.

    python -m bench.seed --db /tmp/stored-100k.db --stored 100000
    python -m bench.seed --db /tmp/stored-1m.db --stored 1000000 --history-days 730 --workers 2

Storing 100k-1M articles through the real ingest takes hours on a small machine, so
the large-store benchmarks start from a database built here. It is not a way to load
production data: it bypasses story assignment. What it writes is what the service
would hold after ingesting a ``bench.stream`` history:

* the schema migrated by Alembic exactly as ``stories migrate`` does, and the
  fingerprint scheme recorded, so ``stories serve`` starts on it as on its own data;
* ``articles``: real rows (the page as posted in ``raw``, its cleaned body in ``text``,
  removed-line counts, a MinHash signature computed by ``clustering.fingerprint`` from
  the body's ``clustering.normalise.words``), syndicated copies pointing at their wire
  original (``duplicate_of``), urls unique, and the sentence embedding
  (``clustering.embed``) of every article published within the index horizon and the
  assignment window of ``--end``: those the service loads at start. Older ones are left
  without (the encoder takes ~0.1 s an article, a day for 1M); the service makes one for
  any it ever loads;
* ``clusters``: one per generated story (its gold label), with the summary fields the
  service keeps (title, lead, keywords, sources, counts, first/last published,
  representative article);
* ``source_lines``: every outlet's short page lines counted per page, as the template
  learner counts them.

Where it differs from the real ingest: story membership is the generator's label (not
the service's decision), and the body is taken as the extraction (the generator knows
it) instead of running the extractor on the page. ``published_at`` spreads over
``--history-days`` ending at ``--end``, so most stored history is older than the
assignment window (90 days) and a benchmark stream starting at ``--end`` continues it.

Generation and signatures run in ``--workers`` processes, one stretch of history each;
the parent numbers rows and inserts them with SQLAlchemy core bulk inserts.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, event, insert

from app.config import Settings
from app.store import migrate
from app.store.db import make_engine
from app.store.models import Article, Cluster, Setting, SourceLine
from bench import stream
from bench.report import print_header, require_data
from clustering import embed, fingerprint
from clustering.assign import AssignParams
from clustering.extract import line_fingerprint
from clustering.normalise import content_words, words
from clustering.vectorise import TERM_SCHEME, features

SEGMENT = 5_000  # articles per stretch of history handed to a worker
_corpus: stream.Corpus | None = None
_line_fps: dict[str, str | None] = {}


def _load() -> None:
    global _corpus
    _corpus = stream.load_corpus()


def _fp(line: str) -> str | None:
    found = _line_fps.get(line, "")
    if found == "":
        found = _line_fps[line] = line_fingerprint(line)
        if len(_line_fps) > 500_000:
            _line_fps.clear()
    return found


def build_segment(job: tuple[int, int, int, float, float, float]) -> tuple[list[dict], list[dict], Counter]:
    """Articles, story aggregates and source-line counts of one stretch of history.

    Article and story references are indices within the segment; the parent numbers them.
    """
    index, count, seed, start_ts, days, embed_from_ts = job
    assert _corpus is not None
    rows: list[dict] = []
    stories: dict[str, dict] = {}
    lines: Counter = Counter()
    by_url: dict[str, int] = {}
    start = datetime.fromtimestamp(start_ts, UTC)
    for i, a in enumerate(
        stream.articles(_corpus, count=count, seed=seed, start=start, days=days, prefix=f"h{index}-", with_body=True)
    ):
        published = datetime.fromisoformat(a["published_at"].replace("Z", "+00:00"))
        body = a["body"]
        page_lines = a["text"].splitlines()
        template = [ln for ln in page_lines if ln.strip() and ln not in body]
        fps = {fp for ln in page_lines if len(ln) < 400 and (fp := _fp(ln)) is not None}
        for fp in fps:
            lines[(a["source"], fp)] += 1
        story = stories.get(a["label"])
        if story is None:
            story = stories[a["label"]] = {
                "first": i,
                "title": a["title"],
                "summary": body.split("\n", 1)[0][:400],
                "terms": Counter(),
                "sources": Counter(),
                "count": 0,
                "first_published_at": published,
                "last_published_at": published,
            }
        story["count"] += 1
        story["sources"][a["source"]] += 1
        story["terms"].update(content_words(a["title"]))
        story["first_published_at"] = min(story["first_published_at"], published)
        story["last_published_at"] = max(story["last_published_at"], published)
        by_url[a["url"]] = i
        rows.append(
            {
                "url": a["url"],
                "title": a["title"],
                "source": a["source"],
                "language": "en",
                "published_at": published,
                "received_at": published + timedelta(minutes=5),
                "input_format": "text",
                "raw": a["text"],
                "text": body,
                "removed": {"template": len(template)},
                "signature": fingerprint.to_bytes(fingerprint.signature(words(body))),
                **_vectors(a["title"], body, published.timestamp() >= embed_from_ts),
                "label": a["label"],
                "copy_index": by_url.get(a["copy_of"]) if a["copy_of"] else None,
            }
        )
    summaries = []
    for label, s in stories.items():
        summaries.append(
            {
                "label": label,
                "first": s["first"],
                "title": s["title"],
                "summary": s["summary"],
                "keywords": [t for t, _ in s["terms"].most_common(8)],
                "sources": [
                    {"name": name, "articles": n}
                    for name, n in sorted(s["sources"].items(), key=lambda kv: (-kv[1], kv[0]))
                ],
                "article_count": s["count"],
                "source_count": len(s["sources"]),
                "first_published_at": s["first_published_at"],
                "last_published_at": s["last_published_at"],
            }
        )
    return rows, summaries, lines


def _vectors(title: str, body: str, in_window: bool) -> dict:
    """The embedding and term vectors stored with an article, as the service stores them
    (for the articles a rebuild reads: the index window's)."""
    if not in_window:
        return {"embedding": None, "features": None}
    embedding = embed.embed(title, body)
    return {"embedding": embed.to_bytes(embedding), "features": features(title, body, embedding).pack().to_bytes()}


def _bulk_engine(path: Path):
    engine = create_engine(f"sqlite:///{path}", json_serializer=json.dumps)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=OFF")  # a benchmark fixture: rebuilt, never recovered
        cursor.execute("PRAGMA cache_size=-200000")
        cursor.close()

    return engine


def seed(
    db: Path, stored: int, *, end: datetime, history_days: float, seed: int, workers: int, progress: bool = True
) -> dict:
    """Create ``db`` (which must not exist) holding ``stored`` articles; returns counts."""
    if db.exists():
        raise SystemExit(f"{db} exists: the loader only creates new databases (delete it first)")
    url = f"sqlite:///{db}"
    service_engine = make_engine(Settings(database_url=url))
    migrate.upgrade(service_engine)
    service_engine.dispose()
    engine = _bulk_engine(db)
    segments = max(1, -(-stored // SEGMENT))
    per_day = stored / history_days
    began = time.perf_counter()
    start = end - timedelta(days=history_days)
    jobs = []
    done = 0
    embed_from = end - timedelta(days=Settings.model_fields["index_horizon_days"].default + AssignParams().window_days)
    for k in range(segments):
        n = min(SEGMENT, stored - done)
        jobs.append(
            (
                k,
                n,
                seed * 1_000_003 + k,
                (start + timedelta(days=done / per_day)).timestamp(),
                max(n / per_day, 0.01),
                embed_from.timestamp(),
            )
        )
        done += n
    next_article, next_cluster = 1, 1
    lines: Counter = Counter()
    now = datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(
            insert(Setting),
            [
                {"key": "fingerprint_scheme", "value": fingerprint.SCHEME},
                {"key": "embedding_scheme", "value": embed.EMBEDDING_SCHEME},
                {"key": "term_scheme", "value": TERM_SCHEME},
            ],
        )
    with multiprocessing.get_context("fork").Pool(workers, initializer=_load) as pool:
        for rows, summaries, segment_lines in pool.imap(build_segment, jobs):
            cluster_of = {}
            cluster_rows = []
            for s in summaries:
                cluster_of[s["label"]] = next_cluster
                cluster_rows.append(
                    {
                        "id": next_cluster,
                        "thread_id": next_cluster,
                        "merged_into": None,
                        "title": s["title"],
                        "summary": s["summary"],
                        "keywords": s["keywords"],
                        "sources": s["sources"],
                        "article_count": s["article_count"],
                        "source_count": s["source_count"],
                        "first_published_at": s["first_published_at"],
                        "last_published_at": s["last_published_at"],
                        "created_at": s["first_published_at"],
                        "updated_at": s["last_published_at"],
                        "representative_article_id": next_article + s["first"],
                    }
                )
                next_cluster += 1
            article_rows = []
            for i, r in enumerate(rows):
                copy = r.pop("copy_index")
                article_rows.append(
                    {
                        **{k: v for k, v in r.items() if k != "label"},
                        "id": next_article + i,
                        "external_id": None,
                        "cluster_id": cluster_of[r["label"]],
                        "duplicate_of": None if copy is None else next_article + copy,
                    }
                )
            next_article += len(rows)
            lines.update(segment_lines)
            with engine.begin() as connection:
                connection.execute(insert(Cluster), cluster_rows)
                connection.execute(insert(Article), article_rows)
            if progress:
                seconds = time.perf_counter() - began
                print(
                    f"  {next_article - 1} articles, {next_cluster - 1} stories, "
                    f"{(next_article - 1) / seconds:.0f} rows/s",
                    flush=True,
                )
    with engine.begin() as connection:
        batch = [{"source": s, "fingerprint": fp, "pages": n} for (s, fp), n in lines.items()]
        for i in range(0, len(batch), 50_000):
            connection.execute(insert(SourceLine), batch[i : i + 50_000])
        connection.exec_driver_sql("ANALYZE")
    engine.dispose()
    seconds = time.perf_counter() - began
    return {
        "articles": next_article - 1,
        "stories": next_cluster - 1,
        "source_lines": len(lines),
        "seconds": seconds,
        "rows_per_second": (next_article - 1) / seconds,
        "loaded_at": now.isoformat(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", type=Path, required=True, help="SQLite file to create")
    parser.add_argument("--stored", type=int, required=True, help="articles to store")
    parser.add_argument(
        "--end",
        default=stream.DEFAULT_START.date().isoformat(),
        help="newest published day of the history (benchmark streams start here)",
    )
    parser.add_argument("--history-days", type=float, default=730.0)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    require_data()
    print_header("bulk loader for benchmarks (bypasses story assignment)")
    end = datetime.fromisoformat(args.end).replace(tzinfo=UTC)
    result = seed(args.db, args.stored, end=end, history_days=args.history_days, seed=args.seed, workers=args.workers)
    size = args.db.stat().st_size / 1e9
    print(
        f"stored {result['articles']} articles in {result['stories']} stories, {result['source_lines']} source "
        f"lines, {size:.2f} GB, in {result['seconds']:.0f} s ({result['rows_per_second']:.0f} articles/s)"
    )


if __name__ == "__main__":
    main()
