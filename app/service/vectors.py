"""Story members' term vectors read back from the database, not held in memory.

The story index scores a story by its sums; its members' own vectors are read only when
a story leaves the window, when stories merge, and when a story's summary chooses its
representative article (``clustering.assign.MemberVectors``). Every stored article keeps
them (``articles.features``), so this process holds only those of the articles its
running transaction added, which are not committed yet, and reads the rest from the
database on the transaction's own connection. At a million stored, that is ~400 MiB not
held.

``begin`` is called with each transaction that may change the index (the caches do,
when they catch up at its start, and when they rebuild): everything added before it is
committed by then, or was rolled back and rebuilt from the database.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy.orm import Session

from app.store import crud
from app.store.models import Article
from clustering.assign import MemberVectors
from clustering.vectorise import PackedFeatures, features

_READ_AT_ONCE = 5_000  # ids in one query (SQLite binds at most 32,766)


class StoredVectors(MemberVectors):
    """Members' vectors from the database, and those of the running transaction."""

    def __init__(self) -> None:
        super().__init__()  # the articles added since ``begin``: not committed yet
        self._session: Session | None = None

    def begin(self, session: Session) -> None:
        """Read through ``session`` from now on; what was added before is stored."""
        self._session = session
        self._held.clear()

    def replayed(self, article_ids: Sequence[int], packed: Sequence[PackedFeatures]) -> None:
        """Replayed articles are stored already: nothing to hold."""

    def get(self, article_ids: Iterable[int]) -> dict[int, PackedFeatures]:
        ids = list(article_ids)
        missing = [a for a in ids if a not in self._held]
        read = self._read(missing) if missing else {}
        if len(read) < len(missing):
            lost = sorted(set(missing) - set(read))
            raise KeyError(f"articles {lost[:10]} are in the story index but not stored ({len(lost)} in all)")
        return {a: self._held[a] if a in self._held else read[a] for a in ids}

    def _read(self, article_ids: list[int]) -> dict[int, PackedFeatures]:
        session = self._session
        if session is None or not session.in_transaction():
            raise RuntimeError("member vectors are read inside the transaction that changes the index")
        blobs: dict[int, bytes | None] = {}
        for at in range(0, len(article_ids), _READ_AT_ONCE):
            blobs.update(crud.stored_vectors(session=session, article_ids=article_ids[at : at + _READ_AT_ONCE]))
        stored = [a for a, blob in blobs.items() if blob is not None]
        read = dict(zip(stored, PackedFeatures.many_from_bytes([blobs[a] for a in stored]))) if stored else {}
        with session.no_autoflush:
            for article_id in (a for a, blob in blobs.items() if blob is None):  # stored before vectors were kept
                article = session.get(Article, article_id)
                read[article_id] = features(article.title, article.text).pack()
        return read
