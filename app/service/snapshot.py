"""The story index kept in a file between runs, so a start loads it instead of replaying
the window's articles from the database.

A start otherwise reads every article of the window and replays it into the index
(``Caches.rebuild``): with a million stored, a quarter of them. The file holds the index
as ``StoryIndex.to_arrays`` gives it, in one uncompressed ``.npz`` (NumPy arrays only,
read with ``allow_pickle=False``), with a header saying what it was built under and how
far into the database it reaches. The database stays the only source of truth: the file
is trusted only when all of these hold, and otherwise ignored (the start rebuilds from
the database, as without one, and the next shutdown writes a fresh file):

* it names this database (a random id the service records in it once);
* its format, fingerprint, term and embedding schemes, candidate terms and horizon are
  this build's;
* the database's reshape count (merges, takedowns, prunes, corrections) is the one it
  was written at: a reshape is not replayed, it rebuilds;
* the database's articles up to the newest one the file holds are the ones it held
  (their count, and the sums of their ids and of their story ids), so a file from an
  older backup or an article moved or deleted behind the service's back is not trusted;
* at most ``CATCH_UP_AT_MOST`` articles were stored after it (by other replicas, or after
  a crash kept the last shutdown from writing): those are applied as catching up applies
  another process's articles;
* every array is whole (the zip's checksums) and they fit together
  (``StoryIndex.from_arrays``).

The file is written at shutdown, under the write lock, to a temporary name first and
then renamed over the old one, so a crash while writing leaves the previous file whole
(and the next shutdown deletes what the crash left half written).
"""

from __future__ import annotations

import json
import logging
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy.orm import Session

from app.store import crud
from clustering import embed, fingerprint
from clustering.assign import StoryIndex
from clustering.candidates import LSH_THRESHOLD
from clustering.vectorise import TERM_SCHEME

log = logging.getLogger(__name__)

FORMAT = 3  # 2: postings of live stories only, every story that left counted; 3: no member vectors,
# near-duplicate signatures as their values' low 16 bits
CATCH_UP_AT_MOST = 20_000  # articles stored after the file that are applied; beyond, a rebuild is cheaper


@dataclass(frozen=True)
class Mark:
    """How far into the database an index reaches: the caches' own bookkeeping with it."""

    last_article_id: int
    reshapes: int
    evictions_stored: int


def build(index: StoryIndex) -> dict:
    """What the held state depends on besides the articles."""
    return {
        "format": FORMAT,
        "fingerprint": fingerprint.SCHEME,
        "terms": TERM_SCHEME,
        "embedding": embed.EMBEDDING_SCHEME,
        "candidate_terms": index.params.candidate_terms,
        "horizon_days": index.horizon_days,
        "lsh_threshold": LSH_THRESHOLD,
    }


def write(path: Path, index: StoryIndex, mark: Mark, *, session: Session) -> None:
    """Write ``index``, which holds the database's articles up to ``mark``."""
    header = {
        "database": crud.get_setting(session=session, key="database_id"),
        "build": build(index),
        "mark": mark.__dict__,
        "ledger": crud.article_ledger(session=session, up_to=mark.last_article_id),
    }
    arrays = index.to_arrays()
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    _delete_leftovers(path)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with partial.open("wb") as out:
            np.savez(out, **arrays)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def _delete_leftovers(path: Path) -> None:
    """Delete what writers killed while writing ``path`` left half written: temporary
    files of it named after a process that no longer runs."""
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(\d+)\.partial")
    for leftover in path.parent.iterdir():
        found = pattern.fullmatch(leftover.name)
        if found is None or _running(int(found[1])):
            continue
        try:
            leftover.unlink()
        except OSError as error:
            log.warning("could not delete %s, left by a writer that stopped: %s", leftover, error)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it runs, as another user
        return True
    return True


def read(path: Path, like: StoryIndex, *, session: Session) -> tuple[StoryIndex, Mark] | None:
    """The index in ``path`` with its mark, if it may be trusted for the database
    ``session`` reads (see the module docstring); None, saying why in the log, if not.
    ``like`` is an empty index of this process: its parameters and horizon."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as stored:
            header = json.loads(bytes(stored["header"]).decode())
            why = _stale(header, like, session)
            if why is None:
                arrays = {name: stored[name] for name in stored.files if name != "header"}
                index = StoryIndex.from_arrays(arrays, like.params, like.horizon_days, vectors=like.vectors)
    except (OSError, EOFError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as error:
        why = f"it cannot be read ({type(error).__name__}: {error})"
    if why is not None:
        log.warning("index snapshot %s not used: %s; rebuilding from the database", path, why)
        return None
    return index, Mark(**header["mark"])


def _stale(header: dict, like: StoryIndex, session: Session) -> str | None:
    """Why a snapshot with ``header`` may not be trusted here; None if it may."""
    if header.get("database") != crud.get_setting(session=session, key="database_id"):
        return "it was written for another database"
    if header.get("build") != json.loads(json.dumps(build(like))):
        return "it was written by another build or configuration"
    mark = Mark(**header["mark"])
    newest, reshapes = crud.newest_and_reshapes(session=session)
    if reshapes != mark.reshapes:
        return "stories were merged, taken down, pruned or corrected since it was written"
    if header["ledger"] != crud.article_ledger(session=session, up_to=mark.last_article_id):
        return "the database's articles are not the ones it holds"
    if newest - mark.last_article_id > CATCH_UP_AT_MOST:
        return f"{newest - mark.last_article_id} articles were stored after it"
    return None
