"""Export: story clusters with their member articles, as JSONL or CSV.

Clusters are selected exactly as ``GET /v1/clusters`` selects them (same filters,
same order, read page by page) and serialised with the API's own schemas, so an
exported record reads like ``GET /v1/clusters/{id}`` plus each article's
``external_id``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import datetime
from typing import TextIO

from sqlalchemy.orm import Session

from app.api.schemas import ClusterArticle, ClusterSummary
from app.store import crud, listing
from app.store.models import Article

FORMATS = ("jsonl", "csv")
_PAGE = 200


class ExportedArticle(ClusterArticle):
    external_id: str | None


class ExportedCluster(ClusterSummary):
    articles: list[ExportedArticle]


def clusters(
    *,
    session: Session,
    sort: str = "latest",
    since: datetime | None = None,
    until: datetime | None = None,
    source: str | None = None,
    q: str | None = None,
    min_articles: int = 1,
) -> Iterator[ExportedCluster]:
    """Every live cluster the list endpoint would return for these filters, with its articles."""
    cursor = None
    while True:
        rows, cursor = listing.list_clusters(
            session=session,
            sort=sort,
            limit=_PAGE,
            cursor=cursor,
            since=since,
            until=until,
            source=source,
            q=q,
            min_articles=min_articles,
        )
        for cluster in rows:
            members = crud.cluster_members(session=session, cluster_id=cluster.id)
            yield ExportedCluster.model_validate(
                {
                    **ClusterSummary.model_validate(cluster, from_attributes=True).model_dump(),
                    "articles": [ExportedArticle.model_validate(a, from_attributes=True) for a in members],
                }
            )
        session.expunge_all()  # a long export holds one page in memory, not the whole table
        if cursor is None:
            return


def corrected(*, session: Session) -> Iterator[dict]:
    """Every article of the stories editors corrected (each correction's two stories, as
    they are now), in the labelled format of the evaluation data: ``label`` is the
    article's story, so ``stories evaluate`` scores the model against what editors fixed.
    ``text`` is the body as it was posted (a page posted as ``html``: its extracted text)."""
    stories: set[int] = set()
    for _, cluster_id, into, _ in crud.correction_facts(session=session):
        for story_id in (cluster_id, into):
            story, _ = crud.resolve_cluster(session=session, cluster_id=story_id)
            if story is not None and story.article_count > 0:
                stories.add(story.id)
    for story_id in sorted(stories):
        for article in crud.cluster_members(session=session, cluster_id=story_id):
            yield labelled(article, f"story-{story_id}")
        session.expunge_all()


def labelled(article: Article, label: str) -> dict:
    return {
        "id": str(article.id),
        "title": article.title,
        "text": article.raw if article.input_format == "text" else article.text,
        "source": article.source,
        "published_at": article.published_at.isoformat().replace("+00:00", "Z"),
        "url": article.url,
        "label": label,
        "lang": article.language,
    }


CSV_COLUMNS = [
    "cluster_id",
    "thread_id",
    "cluster_title",
    "cluster_summary",
    "cluster_article_count",
    "cluster_source_count",
    "cluster_sources",
    "cluster_keywords",
    "cluster_first_published_at",
    "cluster_last_published_at",
    "article_id",
    "url",
    "external_id",
    "title",
    "source",
    "published_at",
    "duplicate_of",
]


class Writer:
    """Writes exported clusters to ``out``: one JSON object a line, or one CSV row per article."""

    def __init__(self, out: TextIO, fmt: str) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
        self.out = out
        self.fmt = fmt
        self.clusters = 0
        self.articles = 0
        self._csv = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n") if fmt == "csv" else None
        if self._csv is not None:
            self._csv.writeheader()

    def write(self, cluster: ExportedCluster) -> None:
        self.clusters += 1
        self.articles += len(cluster.articles)
        if self._csv is None:
            self.out.write(json.dumps(cluster.model_dump(mode="json"), ensure_ascii=False) + "\n")
            return
        data = cluster.model_dump(mode="json")
        shared = {
            "cluster_id": data["id"],
            "thread_id": data["thread_id"],
            "cluster_title": data["title"],
            "cluster_summary": data["summary"],
            "cluster_article_count": data["article_count"],
            "cluster_source_count": data["source_count"],
            "cluster_sources": "; ".join(s["name"] for s in data["sources"]),
            "cluster_keywords": "; ".join(data["keywords"]),
            "cluster_first_published_at": data["first_published_at"],
            "cluster_last_published_at": data["last_published_at"],
        }
        for article in data["articles"]:
            self._csv.writerow(
                {
                    **shared,
                    "article_id": article["id"],
                    **{
                        k: article[k] for k in ("url", "external_id", "title", "source", "published_at", "duplicate_of")
                    },
                }
            )
