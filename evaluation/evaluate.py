"""Score the service on a labelled JSONL file (see ../shared/data/README.md).

Articles go through the same ``StoryService.ingest`` as the API, in ``published_at``
order (streaming, no look-ahead), into a fresh database; the clusters the database
ends up with are scored against the gold labels.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy import select

from app.api.schemas import ArticleIn
from app.config import Settings
from app.service.ingest import StoryService
from app.store import migrate
from app.store.db import make_engine, make_sessionmaker
from app.store.models import Article, Cluster
from clustering.metrics import Scores, bcubed, pairwise


@dataclass(frozen=True)
class Report:
    articles: int
    rejected: int
    gold_stories: int
    clusters: int
    bcubed: Scores
    pairwise: Scores
    seconds: float

    @property
    def articles_per_second(self) -> float:
        return self.articles / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict:
        return {
            "articles": self.articles,
            "rejected": self.rejected,
            "gold_stories": self.gold_stories,
            "clusters": self.clusters,
            "bcubed_precision": round(self.bcubed.precision, 4),
            "bcubed_recall": round(self.bcubed.recall, 4),
            "bcubed_f1": round(self.bcubed.f1, 4),
            "pairwise_precision": round(self.pairwise.precision, 4),
            "pairwise_recall": round(self.pairwise.recall, 4),
            "pairwise_f1": round(self.pairwise.f1, 4),
            "articles_per_second": round(self.articles_per_second, 1),
        }


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def labelled_to_article(row: dict, external_id: str | None = None) -> ArticleIn:
    """A labelled record as the crawler would POST it (title stands in for a missing body).

    ``external_id`` replaces the data set's own id, which can leak the label.
    """
    return ArticleIn(
        external_id=external_id or str(row["id"]),
        url=row.get("url") or None,
        title=row.get("title"),
        text=row.get("text") or row.get("title") or "",
        source=row.get("source") or None,
        published_at=row.get("published_at") or None,
        language=row.get("lang") or None,
    )


def stream_order(rows: Iterable[dict]) -> list[dict]:
    """Published order; undated articles last, in file order."""
    rows = list(rows)
    return sorted(rows, key=lambda r: (r.get("published_at") is None, r.get("published_at") or ""))


def evaluate(
    rows: list[dict],
    batch_size: int = 1,
    database_url: str | None = None,
    ordered: bool = False,
    threads: bool = False,
) -> Report:
    """Ingest ``rows`` into a fresh database and score the clusters it ends up with
    (or, with ``threads``, the threads that link them).

    Rows go in ``published_at`` order unless ``ordered`` says they already are in
    arrival order.
    """
    ordered_rows = list(rows) if ordered else stream_order(rows)
    with tempfile.TemporaryDirectory(prefix="stories-eval-") as tmp:
        url = database_url or f"sqlite:///{Path(tmp) / 'eval.db'}"
        settings = Settings(database_url=url)
        engine = make_engine(settings)
        migrate.upgrade(engine)
        service = StoryService(make_sessionmaker(engine), horizon_days=settings.index_horizon_days)
        service.load()
        rejected = 0
        started = time.perf_counter()
        for start in range(0, len(ordered_rows), batch_size):
            batch = []
            for i, row in enumerate(ordered_rows[start : start + batch_size], start):
                try:
                    batch.append(labelled_to_article(row, external_id=f"row-{i}"))
                except ValidationError:
                    rejected += 1
            service.ingest(batch)
        seconds = time.perf_counter() - started
        with service.sessions() as session:
            stored = dict(session.execute(select(Article.external_id, Article.cluster_id)).all())
            if threads:
                thread_of = dict(session.execute(select(Cluster.id, Cluster.thread_id)).all())
                stored = {key: thread_of.get(cluster) or cluster for key, cluster in stored.items()}
        engine.dispose()
    gold, predicted = [], []
    for i, row in enumerate(ordered_rows):
        cluster = stored.get(f"row-{i}")
        if cluster is not None:
            gold.append(row["label"])
            predicted.append(cluster)
    return Report(
        articles=len(gold),
        rejected=rejected,
        gold_stories=len(set(gold)),
        clusters=len(set(predicted)),
        bcubed=bcubed(gold, predicted),
        pairwise=pairwise(gold, predicted),
        seconds=seconds,
    )
