"""What one write transaction has done so far: a local value of the write step
(``app.service.ingest``) and of a correction (``app.service.corrections``), never state
of the long-lived service."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sqlalchemy.orm import Session

from app.store import crud
from app.store.models import Article, Cluster
from clustering.summarise import Digest


class Submission(Protocol):
    """An article as a client sent it, checked (``app.api.schemas.Submission`` is one):
    ``url`` canonical, exactly one of ``text`` and ``html``."""

    url: str | None
    external_id: str | None
    title: str | None
    text: str | None
    html: str | None
    source: str | None
    published_at: datetime | None
    language: str | None


def known(
    by_url: dict[str, crud.Stored], by_external: dict[str, crud.Stored], article: Submission
) -> crud.Stored | None:
    """The stored article with ``article``'s key: its url, else its external id."""
    if article.url is not None and (found := by_url.get(article.url)) is not None:
        return found
    if article.external_id is not None:
        return by_external.get(article.external_id)
    return None


@dataclass
class Transaction:
    """What one write transaction has done so far (nothing of it is on the service)."""

    session: Session
    by_url: dict[str, crud.Stored]
    by_external: dict[str, crud.Stored]
    lines: Counter[tuple[str, str]] = field(default_factory=Counter)  # pages per (source, line)
    events: list[dict] = field(default_factory=list)
    touched: dict[int, Digest] = field(default_factory=dict)
    texts: dict[int, str] = field(default_factory=dict)
    clusters: list[dict] = field(default_factory=list)  # rows not yet inserted
    threads: dict[int, int] = field(default_factory=dict)  # thread of each story this transaction opened
    articles: list[dict] = field(default_factory=list)
    next_article: int | None = None
    next_cluster: int | None = None
    last_article: int = 0
    last_cluster: int = 0
    sources: dict[str, int] = field(default_factory=dict)  # newest article a source's lines came from
    opened: int = 0
    merged: int = 0
    reprepared: int = 0

    def article_id(self) -> int:
        if self.next_article is None:
            self.next_article = crud.next_id(session=self.session, table="articles")
        self.last_article = self.next_article
        self.next_article += 1
        return self.last_article

    def cluster_id(self) -> int:
        if self.next_cluster is None:
            self.next_cluster = crud.next_id(session=self.session, table="clusters")
        self.last_cluster = self.next_cluster
        self.next_cluster += 1
        return self.last_cluster

    def flush(self) -> None:
        """Insert the rows made so far: stories first, their articles after."""
        crud.insert_rows(session=self.session, model=Cluster, rows=self.clusters)
        crud.insert_rows(session=self.session, model=Article, rows=self.articles)
        self.clusters, self.articles = [], []

    def known(self, article: Submission) -> crud.Stored | None:
        return known(self.by_url, self.by_external, article)

    def remember(self, article: Submission, stored: crud.Stored) -> None:
        if article.url is not None:
            self.by_url[article.url] = stored
        if article.external_id is not None:
            self.by_external.setdefault(article.external_id, stored)

    def event(
        self,
        kind: str,
        cluster_id: int,
        article_id: int | None = None,
        into: int | None = None,
        thread: int | None = None,
        correction: int | None = None,
    ) -> None:
        self.events.append(
            {
                "kind": kind,
                "cluster_id": cluster_id,
                "article_id": article_id,
                "into_cluster_id": into,
                "thread_id": thread,
                "correction_id": correction,
            }
        )

    def thread_joined(self, went: int, joined: int) -> None:
        """Thread ``went`` joined thread ``joined`` (two of their stories merged): so did
        the stories this transaction opened in it."""
        self.threads = {cid: joined if t == went else t for cid, t in self.threads.items()}

    def thread_of(self, cluster_id: int) -> int:
        """The thread a story belongs to: one this transaction opened, or a stored one (no
        flush needed: every story opened here is in ``threads``, and a merge here moved
        stored threads with an UPDATE already)."""
        thread = self.threads.get(cluster_id)
        if thread is None:
            thread = crud.thread_of(session=self.session, cluster_id=cluster_id)
        return thread
