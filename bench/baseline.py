"""The straightforward pipeline, as a yardstick: one plain FastAPI process.

    python -m bench.baseline --port 8100 --db /tmp/baseline.db     # serve it (SQLite on disk)
    python -m bench.baseline --port 8100 --db :memory:

What a first version of the service would be, with the same request shape as
``POST /v1/articles/batch`` (``{"articles": [...]}`` → ``{"results": [...]}`` in input
order), so ``bench.http`` posts the same stream to both:

* raw text, no boilerplate removal; lower-cased word tokens;
* datasketch ``MinHash.update_batch`` over the article's 5-word shingles (SHA-1, the
  library's default), ``MinHashLSH`` (threshold 0.5) for candidates, a copy at estimated
  Jaccard >= 0.8 joins its original's story;
* otherwise scikit-learn ``HashingVectorizer`` TF (l2, English stop words) of title and
  text, cosine against the centroids of stories active within 3 days of the article's
  ``published_at``; join the best at >= 0.3, else open a story;
* one SQLite transaction per batch (articles with their signatures), a url seen before
  answers ``existing``.

No templates, no names, no calibrated model, no summaries: it is not a competitor in
quality, only the speed a simple design reaches on the same machine.
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import threading
from datetime import datetime, timedelta

import numpy as np
import scipy.sparse as sp
from datasketch import MinHash, MinHashLSH
from fastapi import FastAPI
from pydantic import BaseModel
from sklearn.feature_extraction.text import HashingVectorizer

NUM_PERM = 128
SHINGLE = 5
JOIN = 0.3
COPY = 0.8
WINDOW = timedelta(days=3)
_WORD = re.compile(r"\w+")


class BatchIn(BaseModel):
    articles: list[dict]


class Baseline:
    def __init__(self, db: str):
        self.db = sqlite3.connect(db, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS articles (id INTEGER PRIMARY KEY, url TEXT UNIQUE, title TEXT, text TEXT, "
            "source TEXT, published_at TEXT, cluster_id INTEGER, duplicate_of INTEGER, signature BLOB)"
        )
        self.db.commit()
        self.lock = threading.Lock()
        self.vectoriser = HashingVectorizer(n_features=1 << 18, alternate_sign=False, stop_words="english")
        self.lsh = MinHashLSH(threshold=0.5, num_perm=NUM_PERM)
        self.signatures: dict[int, MinHash] = {}
        self.story_of: dict[int, int] = {}
        self.centroids: list[sp.csr_matrix] = []  # sums of member vectors, one per story
        self.last: list[datetime] = []
        self.next_id = 1

    def _signature(self, text: str) -> MinHash:
        tokens = _WORD.findall(text.lower())
        k = min(SHINGLE, len(tokens))
        m = MinHash(num_perm=NUM_PERM)
        m.update_batch([" ".join(tokens[i : i + k]).encode() for i in range(len(tokens) - k + 1)] or [b""])
        return m

    def ingest(self, articles: list[dict]) -> list[dict]:
        with self.lock:
            results = []
            fresh = []
            for i, a in enumerate(articles):
                row = self.db.execute(
                    "SELECT id, cluster_id, duplicate_of FROM articles WHERE url = ?", (a.get("url"),)
                ).fetchone()
                if row is not None:
                    results.append(
                        {"index": i, "id": row[0], "cluster_id": row[1], "duplicate_of": row[2], "status": "existing"}
                    )
                else:
                    results.append(None)
                    fresh.append(i)
            vectors = self.vectoriser.transform(
                [f"{articles[i].get('title') or ''}\n{articles[i].get('text') or ''}" for i in fresh]
            ).tocsr()
            rows = []
            for k, i in enumerate(fresh):
                a = articles[i]
                at = (
                    datetime.fromisoformat(a["published_at"].replace("Z", "+00:00"))
                    if a.get("published_at")
                    else datetime.now().astimezone()
                )
                m = self._signature(a.get("text") or "")
                article_id, self.next_id = self.next_id, self.next_id + 1
                duplicate_of, story = None, None
                best = max(((m.jaccard(self.signatures[c]), c) for c in self.lsh.query(m)), default=(0.0, None))
                if best[0] >= COPY:
                    duplicate_of, story = best[1], self.story_of[best[1]]
                else:
                    active = [s for s, last in enumerate(self.last) if abs(at - last) <= WINDOW]
                    if active:
                        centroids = sp.vstack([self.centroids[s] for s in active]).tocsr()
                        norms = np.sqrt(np.asarray(centroids.multiply(centroids).sum(axis=1)).ravel())
                        cosines = (centroids @ vectors[k].T).toarray().ravel() / np.where(norms > 0, norms, 1)
                        j = int(np.argmax(cosines))
                        if cosines[j] >= JOIN:
                            story = active[j]
                if story is None:
                    story = len(self.centroids)
                    self.centroids.append(vectors[k])
                    self.last.append(at)
                else:
                    self.centroids[story] = self.centroids[story] + vectors[k]
                    self.last[story] = max(self.last[story], at)
                self.lsh.insert(article_id, m, check_duplication=False)
                self.signatures[article_id] = m
                self.story_of[article_id] = story
                rows.append(
                    (
                        article_id,
                        a.get("url"),
                        a.get("title"),
                        a.get("text"),
                        a.get("source"),
                        a.get("published_at"),
                        story + 1,
                        duplicate_of,
                        m.hashvalues.astype("<u4").tobytes(),
                    )
                )
                results[i] = {
                    "index": i,
                    "id": article_id,
                    "cluster_id": story + 1,
                    "duplicate_of": duplicate_of,
                    "status": "created",
                }
            with self.db:
                self.db.executemany("INSERT INTO articles VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
            return results


def create_app(db: str) -> FastAPI:
    app = FastAPI(title="baseline")
    state = Baseline(db)

    @app.post("/v1/articles/batch")
    def batch(body: BatchIn) -> dict:
        return {"results": state.ingest(body.articles)}

    @app.get("/readyz")
    def ready() -> dict:
        return {"status": "ready"}

    return app


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", choices=["127.0.0.1", "localhost"], help="loopback only")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--db", default=":memory:", help="SQLite file, or :memory:")
    args = parser.parse_args(argv)
    uvicorn.run(create_app(args.db), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
