"""ORM classes: the database is the only source of truth."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets BIGINT.
Id = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator):
    """Timestamps stored in UTC and always read back timezone-aware (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Cluster(Base):
    """A story: its summary is kept up to date on every change of its members."""

    __tablename__ = "clusters"
    __table_args__ = (
        # The listing's sort orders, ties broken by id: a page is read off the index.
        Index("ix_clusters_latest", "last_published_at", "id"),
        Index("ix_clusters_largest", "article_count", "id"),
        Index("ix_clusters_thread", "thread_id", "first_published_at", "id"),  # a thread's events in order
        {"sqlite_autoincrement": True},  # a deleted id is never handed out again
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    merged_into: Mapped[int | None] = mapped_column(ForeignKey("clusters.id"), index=True)
    # The thread: the id of its first event (a story that continues none is its own).
    thread_id: Mapped[int | None] = mapped_column(Id)
    title: Mapped[str] = mapped_column(Text, default="")
    summary: Mapped[str] = mapped_column(Text, default="")
    keywords: Mapped[list] = mapped_column(JSON, default=list)
    sources: Mapped[list] = mapped_column(JSON, default=list)
    article_count: Mapped[int] = mapped_column(Integer, default=0)
    source_count: Mapped[int] = mapped_column(Integer, default=0)
    first_published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    representative_article_id: Mapped[int | None] = mapped_column(Id)

    @property
    def thread(self) -> int:
        """The story's thread: its own id for a story stored without one (before threads,
        or by a replica of an older version during a rolling upgrade)."""
        return self.id if self.thread_id is None else self.thread_id


class Article(Base):
    """One article as received, with what the pipeline made of it."""

    __tablename__ = "articles"
    __table_args__ = (
        Index("ix_articles_cluster_published", "cluster_id", "published_at"),
        {"sqlite_autoincrement": True},  # a deleted id is never handed out again
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    url: Mapped[str | None] = mapped_column(String(2048), unique=True)
    external_id: Mapped[str | None] = mapped_column(String(512), unique=True)
    title: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(String(512), index=True)
    language: Mapped[str | None] = mapped_column(String(16))
    published_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    input_format: Mapped[str] = mapped_column(String(8))  # "text" or "html"
    raw: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    removed: Mapped[dict] = mapped_column(JSON, default=dict)
    signature: Mapped[bytes] = mapped_column(LargeBinary)
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary)  # clustering.embed.to_bytes
    features: Mapped[bytes | None] = mapped_column(LargeBinary)  # clustering.vectorise.PackedFeatures.to_bytes
    decision: Mapped[dict | None] = mapped_column(JSON)  # clustering.assign.explanation, as decided
    cluster_id: Mapped[int] = mapped_column(ForeignKey("clusters.id"), index=True)
    duplicate_of: Mapped[int | None] = mapped_column(ForeignKey("articles.id"), index=True)


class SourceLine(Base):
    """How many pages of a source carried a line: the source's learned template."""

    __tablename__ = "source_lines"

    source: Mapped[str] = mapped_column(String(512), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(16), primary_key=True)
    pages: Mapped[int] = mapped_column(Integer, default=0)


class Setting(Base):
    """Facts recorded with the data, such as the fingerprint scheme."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[dict] = mapped_column(JSON)


class TermArchive(Base):
    """Document frequencies of the articles that left the in-memory index window.

    One row. ``terms`` and ``counts`` are zlib-compressed little-endian int32 arrays of
    equal length: the non-zero entries of the hashed-term frequency table.
    """

    __tablename__ = "term_archive"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    n_docs: Mapped[int] = mapped_column(BigInteger)
    terms: Mapped[bytes] = mapped_column(LargeBinary)
    counts: Mapped[bytes] = mapped_column(LargeBinary)


class Change(Base):
    """One event of the change feed, numbered in commit order by ``seq``.

    ``kind`` is ``created`` (an article opened the story), ``grew`` (an article joined
    it), ``merged`` (the story was folded into ``into_cluster_id``), ``moved`` (an
    editor moved the article to ``into_cluster_id``), ``article_deleted`` (an article
    was taken down) or ``pruned`` (retention deleted the story). An event an editor's
    correction made names it (``correction_id``).
    """

    __tablename__ = "changes"
    __table_args__ = {"sqlite_autoincrement": True}

    seq: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    cluster_id: Mapped[int] = mapped_column(Id)
    article_id: Mapped[int | None] = mapped_column(Id)
    into_cluster_id: Mapped[int | None] = mapped_column(Id)
    thread_id: Mapped[int | None] = mapped_column(Id)  # of a created event: the thread the story joined
    correction_id: Mapped[int | None] = mapped_column(Id)
    article_count: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class Correction(Base):
    """An editor's correction: ``move`` (articles of story ``cluster_id`` to
    ``into_cluster_id``), ``split`` (articles of ``cluster_id`` into a new story
    ``into_cluster_id``) or ``merge`` (``cluster_id`` folded into ``into_cluster_id``).
    ``opened``: the correction opened ``into_cluster_id``. ``article_ids``: the articles
    it placed (none for a merge). ``clustering.editorial`` holds later decisions to it."""

    __tablename__ = "corrections"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(8))
    cluster_id: Mapped[int] = mapped_column(Id, index=True)
    into_cluster_id: Mapped[int] = mapped_column(Id)
    opened: Mapped[bool] = mapped_column(Boolean)
    article_ids: Mapped[list] = mapped_column(JSON)
    editor: Mapped[str | None] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
