"""Editors' corrections: move an article, split a story, merge two.

Each request is checked against the stored stories (an unknown id is 404; a story merged
away, emptied, or not holding the articles named is 409) before anything changes, then
applied inside the serialised write step (``StoryService.correct``): the articles'
rows, the near-duplicate groups a move cuts in two, the story index, the editorial
constraints (``clustering.editorial``) that hold every later automatic decision to it,
the moved articles' decisions (rule ``editor``), the change feed, and one row in
``corrections``. The same request twice changes nothing the second time: a request
whose effect an earlier correction made, and that still holds, answers with that
correction. A correction that confirms what already is (an article placed where it is)
is recorded, so it holds from then on, and changes no story.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from app.service.caches import Caches, stored_features
from app.service.transaction import Transaction
from app.store import crud
from app.store.models import Article, Cluster, Correction
from clustering.editorial import placed_decision
from clustering.summarise import Digest


@dataclass(frozen=True)
class Move:
    """Move an article (with its near-duplicates unless ``with_copies`` is false) to
    story ``into_cluster_id``, or to a new story of its own when that is None."""

    article_id: int
    into_cluster_id: int | None = None
    with_copies: bool = True
    editor: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class Split:
    """The listed articles of story ``cluster_id`` become a new story (in its thread)."""

    cluster_id: int
    article_ids: tuple[int, ...]
    editor: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class Merge:
    """Fold story ``cluster_id`` into ``into_cluster_id``, as an automatic merge does."""

    cluster_id: int
    into_cluster_id: int
    editor: str | None = None
    note: str | None = None


Request = Move | Split | Merge


class Rejected(Exception):
    """A correction that cannot be made as asked; nothing was changed."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Outcome:
    """The correction in force (as stored), and whether this request recorded it."""

    correction: dict
    recorded: bool


def as_dict(correction: Correction) -> dict:
    return {
        "id": correction.id,
        "kind": correction.kind,
        "cluster_id": correction.cluster_id,
        "into_cluster_id": correction.into_cluster_id,
        "opened": correction.opened,
        "article_ids": list(correction.article_ids),
        "editor": correction.editor,
        "note": correction.note,
        "at": correction.at,
    }


class Editor:
    """Applies one correction inside a write transaction (``txn``), keeping the caches
    level with it. After ``apply``: ``txn.touched`` holds the stories whose summaries to
    write, ``emptied`` the stories left without articles."""

    def __init__(self, txn: Transaction, caches: Caches, now: datetime):
        self.txn = txn
        self.session = txn.session
        self.caches = caches
        self.now = now
        self.emptied: list[int] = []

    def apply(self, request: Request) -> tuple[Correction, bool]:
        """(the correction in force, whether it was recorded now)."""
        if isinstance(request, Move):
            return self._move(request)
        if isinstance(request, Split):
            return self._split(request)
        return self._merge(request)

    # -- checks --------------------------------------------------------------------

    def _live(self, cluster_id: int, doing: str) -> Cluster:
        """A story that can take part in a correction: it exists, was not merged away, and
        holds articles."""
        cluster = self.session.get(Cluster, cluster_id)
        if cluster is None:
            raise Rejected(404, f"story {cluster_id} does not exist")
        if cluster.merged_into is not None:
            survivor, _ = crud.resolve_cluster(session=self.session, cluster_id=cluster_id)
            now = survivor.id if survivor is not None else cluster.merged_into
            raise Rejected(409, f"story {cluster_id} was merged into story {now}: {doing} story {now} instead")
        if cluster.article_count == 0:
            raise Rejected(409, f"story {cluster_id} has no articles left")
        return cluster

    def _resolve(self, cluster_id: int) -> int:
        cluster, _ = crud.resolve_cluster(session=self.session, cluster_id=cluster_id)
        return cluster.id if cluster is not None else cluster_id

    def _earlier(self, kinds: tuple[str, ...], matches: Callable[[Correction], bool]) -> Correction | None:
        for correction in crud.corrections_of(session=self.session, kinds=kinds):
            if matches(correction):
                return correction
        return None

    def _placement(self, article_id: int) -> Correction | None:
        """The latest correction that placed an article."""
        return self._earlier(("move", "split"), lambda c: article_id in c.article_ids)

    # -- the three corrections -------------------------------------------------------

    def _move(self, request: Move) -> tuple[Correction, bool]:
        article = crud.get_article(session=self.session, article_id=request.article_id)
        if article is None:
            raise Rejected(404, f"article {request.article_id} does not exist")
        source = self._resolve(article.cluster_id)
        moving = crud.copy_group(session=self.session, article=article) if request.with_copies else [article.id]
        if request.into_cluster_id is None:
            staying = set(crud.member_ids(session=self.session, cluster_id=source)) - set(moving)
            target = source if not staying else None  # already a story of its own, or to be opened
        else:
            target = self._live(request.into_cluster_id, "move into").id
        if target == source:
            earlier = self._placement(article.id)
            if earlier is not None and self._resolve(earlier.into_cluster_id) == source:
                if set(moving) <= set(earlier.article_ids):
                    return earlier, False
        correction = self._record("move", source, target, moving, request.editor, request.note)
        if target != source:
            self._relocate(correction, source, moving, target)
        return correction, True

    def _split(self, request: Split) -> tuple[Correction, bool]:
        story = self._live(request.cluster_id, "split")
        listed = set(request.article_ids)
        found = set(self.session.scalars(select(Article.id).where(Article.id.in_(listed))))
        if missing := sorted(listed - found):
            plural = len(missing) > 1
            raise Rejected(
                404, f"article{'s' if plural else ''} {_ids(missing)} {'do' if plural else 'does'} not exist"
            )
        members = set(crud.member_ids(session=self.session, cluster_id=story.id))
        if outside := sorted(listed - members):
            earlier = self._earlier(
                ("split",),
                lambda c: self._resolve(c.cluster_id) == story.id and set(c.article_ids) == listed,
            )
            if earlier is not None:
                into = set(crud.member_ids(session=self.session, cluster_id=self._resolve(earlier.into_cluster_id)))
                if listed <= into:
                    return earlier, False
            plural = len(outside) > 1
            raise Rejected(
                409,
                f"article{'s' if plural else ''} {_ids(outside)} {'are' if plural else 'is'} not in story {story.id}",
            )
        if listed == members:
            raise Rejected(
                409,
                f"splitting out every article of story {story.id} would leave it empty: "
                "move them into another story or merge the story instead",
            )
        correction = self._record("split", story.id, None, sorted(listed), request.editor, request.note)
        self._relocate(correction, story.id, sorted(listed), None, thread=story.thread)
        return correction, True

    def _merge(self, request: Merge) -> tuple[Correction, bool]:
        absorbed = self.session.get(Cluster, request.cluster_id)
        if absorbed is None:
            raise Rejected(404, f"story {request.cluster_id} does not exist")
        into = self._live(request.into_cluster_id, "merge into")
        if absorbed.id == into.id:
            raise Rejected(422, f"story {absorbed.id} cannot be merged into itself")
        if absorbed.merged_into is not None:
            if self._resolve(absorbed.id) != into.id:
                self._live(absorbed.id, "merge")  # says where it went
            earlier = self._earlier(
                ("merge",), lambda c: c.cluster_id == absorbed.id and self._resolve(c.into_cluster_id) == into.id
            )
            if earlier is not None:
                return earlier, False
            return self._record("merge", absorbed.id, into.id, [], request.editor, request.note), True
        self._live(absorbed.id, "merge")
        correction = self._record("merge", absorbed.id, into.id, [], request.editor, request.note)
        moved = crud.merge_clusters(session=self.session, survivor_id=into.id, absorbed_id=absorbed.id)
        if moved is not None:
            self.txn.thread_joined(*moved)
        caches = self.caches
        caches.editorial.merged(into.id, absorbed.id)
        with caches.index_lock:
            if into.id in caches.index.stories_ and absorbed.id in caches.index.stories_:
                caches.index.merge(into.id, absorbed.id)
            else:
                self._rebuild()
        self.txn.event("merged", absorbed.id, into=into.id, correction=correction.id)
        for cluster_id in (absorbed.id, into.id):
            caches.forget_digest(cluster_id)
        caches.digest(self.session, self.txn.touched, into.id, opened=False)
        self.txn.touched[absorbed.id] = Digest()  # its event counts 0 articles
        return correction, True

    # -- applying ----------------------------------------------------------------------

    def _record(
        self, kind: str, cluster_id: int, into: int | None, article_ids: list[int], editor: str | None, note: str | None
    ) -> Correction:
        """Store the correction; ``into`` None opens a new story (its id is the correction's)."""
        opened = into is None
        if opened:
            into = self.txn.cluster_id()
        correction = crud.add_correction(
            session=self.session,
            kind=kind,
            cluster_id=cluster_id,
            into_cluster_id=into,
            opened=opened,
            article_ids=sorted(article_ids),
            editor=editor,
            note=note,
            at=self.now,
        )
        self.caches.editorial.place(article_ids)
        if kind != "merge":
            self.caches.editorial.separate(cluster_id, into)
        return correction

    def _relocate(
        self, correction: Correction, source: int, article_ids: list[int], target: int | None, thread: int | None = None
    ) -> None:
        """Move articles from ``source`` to the correction's story (opened now when
        ``target`` is None, in ``thread`` or a thread of its own)."""
        into = correction.into_cluster_id
        txn, caches = self.txn, self.caches
        if target is None:
            txn.threads[into] = thread if thread is not None else into
            txn.clusters.append(
                {
                    "id": into,
                    "thread_id": txn.threads[into],
                    "created_at": self.now,
                    "updated_at": self.now,
                    "keywords": [],
                    "sources": [],
                    "title": "",
                    "summary": "",
                }
            )
            txn.flush()
            txn.event("created", into, article_ids[0], thread=txn.threads[into], correction=correction.id)
        previous = dict(
            self.session.execute(select(Article.id, Article.decision).where(Article.id.in_(article_ids))).all()
        )
        regrouped = crud.move_articles(session=self.session, article_ids=article_ids, cluster_id=into)
        crud.set_decisions(
            session=self.session,
            decisions={
                article_id: placed_decision(
                    previous.get(article_id),
                    correction_id=correction.id,
                    editor=correction.editor,
                    note=correction.note,
                    from_cluster_id=source,
                )
                for article_id in article_ids
            },
        )
        stored = {a: stored_features(self.session.get(Article, a)) for a in article_ids}
        with caches.index_lock:
            held = all(caches.index.move(a, into, stored[a], opened=target is None) for a in article_ids)
            for article_id, original in regrouped.items():
                caches.index.set_duplicate_of(article_id, original)
            if not held:
                self._rebuild()
        for article_id in article_ids:
            txn.event("moved", source, article_id, into=into, correction=correction.id)
        for cluster_id in (source, into):
            caches.forget_digest(cluster_id)
            digest = caches.digest(self.session, txn.touched, cluster_id, opened=False)
            if not digest.members:
                self.emptied.append(cluster_id)

    def _rebuild(self) -> None:
        """A story outside the in-memory window took part: rebuild the caches from the
        transaction's view of the database (rare; the correction is in it)."""
        self.caches.rebuild(self.session)


def _ids(ids: list[int]) -> str:
    return ", ".join(str(i) for i in ids)
