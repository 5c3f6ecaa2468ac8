"""Prepare off the write lock: the pure stages of ingest, in worker processes, on every core.

A request's articles are grouped by source, in input order, and the groups are shared
out between the workers (``STORIES_WORKERS`` processes; 0 prepares in the calling
thread). Each worker reads its sources' learned templates from the database in one
read transaction (a snapshot: ``Batch.seen_id`` is the newest article it could see)
and prepares its groups' articles in order, counting each page's lines for the pages
after it, exactly as the write step will count them. The write step then prepares an
article again only if its source's template changed since the snapshot.

Each worker is a process of its own with a thread that feeds it, so a worker that
dies (killed, out of memory) fails only the articles it was preparing: their request
gets ``WorkerCrashed`` (a 503 the client can retry), the worker is started again, and
every other request carries on. (``concurrent.futures.ProcessPoolExecutor`` cannot do
that: one dead worker breaks the pool and fails every pending task.)
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import multiprocessing.context
import queue
import signal
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.store import crud
from app.store.db import make_engine, make_sessionmaker
from app.store.models import Article
from clustering import embed
from clustering.prepare import Draft, Prepared, prepare

log = logging.getLogger(__name__)


class WorkerCrashed(RuntimeError):
    """The worker preparing these articles died; nothing of them was stored."""


@dataclass(frozen=True)
class Job:
    """One article to prepare, and its place in the request."""

    index: int
    draft: Draft


@dataclass
class Batch:
    """What a worker made of its groups: ``prepared[index]``, ``from_batch[index]`` (the
    template lines it took from earlier pages of the same request), and ``seen_id``,
    the newest article in the template snapshot."""

    seen_id: int = 0
    prepared: dict[int, Prepared] = field(default_factory=dict)
    from_batch: dict[int, frozenset[str]] = field(default_factory=dict)


class SnapshotTemplates:
    """Templates as stored when the read transaction began, plus the lines of the pages
    this worker prepared before (per source): ``from_batch`` says which of a page's
    template lines came from those."""

    def __init__(self, session: Session):
        self.session = session
        self.learned: dict[str, set[str]] = {}
        self.last_from_batch: frozenset[str] = frozenset()

    def template_lines(self, source: str | None, fingerprints) -> set[str]:
        if source is None:
            self.last_from_batch = frozenset()
            return set()
        wanted = set(fingerprints)
        stored = crud.source_line_pages(session=self.session, source=source, fingerprints=wanted)
        learned = self.learned.get(source, set())
        self.last_from_batch = frozenset(fp for fp in wanted if fp in learned and not stored.get(fp))
        return {fp for fp in wanted if stored.get(fp, 0) >= 1 or fp in learned}

    def learn(self, source: str | None, fingerprints: Sequence[str]) -> None:
        if source is not None:
            self.learned.setdefault(source, set()).update(fingerprints)


def prepare_groups(sessions: sessionmaker[Session], groups: list[list[Job]]) -> Batch:
    """Prepare each group's jobs in order against one snapshot of the templates."""
    batch = Batch()
    with sessions() as session, session.begin():
        # The newest id first: whatever the templates then show is at least that new,
        # so the write step's "changed since" check errs only towards checking again.
        batch.seen_id = session.scalar(select(func.max(Article.id))) or 0
        for group in groups:
            templates = SnapshotTemplates(session)
            for job in group:
                templates.last_from_batch = frozenset()
                prepared = prepare(job.draft, templates)
                batch.prepared[job.index] = prepared
                batch.from_batch[job.index] = templates.last_from_batch
                if prepared.has_text:  # the write step stores it, and counts its lines
                    templates.learn(prepared.source, prepared.line_fingerprints)
    return batch


def share_out(jobs: Sequence[Job], parts: int) -> list[list[list[Job]]]:
    """Jobs grouped by source in input order, the groups shared out in ``parts`` shares
    of about equal size (a source's pages stay together, so each is counted for the
    next). An article without a source is a group of its own.

    >>> from datetime import datetime, UTC
    >>> d = lambda s: Draft(None, "x", None, s, None, datetime(2026, 1, 1, tzinfo=UTC))
    >>> shares = share_out([Job(i, d(s)) for i, s in enumerate("aabca")], 2)
    >>> [[[j.index for j in g] for g in share] for share in shares]
    [[[0, 1, 4]], [[2], [3]]]
    """
    groups: dict[object, list[Job]] = {}
    for job in jobs:
        key = job.draft.source if job.draft.source is not None else ("unsourced", job.index)
        groups.setdefault(key, []).append(job)
    shares: list[list[list[Job]]] = [[] for _ in range(max(1, min(parts, len(groups))))]
    sizes = [0] * len(shares)
    for group in sorted(groups.values(), key=len, reverse=True):  # largest first: an even share
        smallest = sizes.index(min(sizes))
        shares[smallest].append(group)
        sizes[smallest] += len(group)
    for share in shares:
        share.sort(key=lambda group: group[0].index)
    return [share for share in shares if share]


# -- worker processes ----------------------------------------------------------------


@functools.cache
def _context() -> multiprocessing.context.BaseContext:
    """Workers are forked from a fork server: a process of their own that imported this
    module (the whole prepare pipeline) once, so a worker, first or restarted, is ready
    after loading the encoder instead of importing everything again. Never a fork of
    the server itself, whose threads a fork would copy mid-flight."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return context


def _serve(connection: Connection, database_url: str) -> None:
    """A worker process: prepare what arrives until the connection closes.

    Signals meant for the server (SIGTERM from ``docker stop``, Ctrl-C) reach its whole
    process group: a worker ignores them and leaves when the server closes its pipe, so
    requests still in flight during a graceful shutdown are prepared.
    """
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        engine = make_engine(Settings(database_url=database_url), writer=False)
        sessions = make_sessionmaker(engine)
        embed.encoder()  # loaded once, before the first article waits for it
    except Exception as err:  # noqa: BLE001 - the server says why it cannot start
        connection.send(err)
        return
    connection.send("ready")
    while True:
        try:
            groups = connection.recv()
        except (EOFError, OSError):
            break
        try:
            reply: object = prepare_groups(sessions, groups)
        except Exception as err:  # noqa: BLE001 - the request that sent it gets the error, the worker carries on
            reply = err
        connection.send(reply)
    engine.dispose()


class _Worker:
    """One worker process and the thread that feeds it tasks from the shared queue."""

    def __init__(self, pool: PreparePool, number: int):
        self.pool = pool
        self.number = number
        self.process: multiprocessing.process.BaseProcess | None = None
        self.connection: Connection | None = None
        self.busy = threading.Event()  # set while the process holds a task
        self.thread = threading.Thread(target=self._feed, name=f"prepare-feeder-{number}", daemon=True)

    def launch(self) -> None:
        """Start the process; ``wait_ready`` waits until it can take work."""
        parent, child = self.pool.context.Pipe()
        self.process = self.pool.context.Process(
            target=_serve, args=(child, self.pool.database_url), name=f"stories-prepare-{self.number}", daemon=True
        )
        self.process.start()
        child.close()
        self.connection = parent

    def wait_ready(self) -> None:
        answer = self._receive()
        if isinstance(answer, BaseException):
            raise answer
        if answer != "ready":
            raise WorkerCrashed(f"prepare worker {self.number} did not start")

    def start(self) -> None:
        self.launch()
        self.wait_ready()

    def _receive(self) -> object:
        """The worker's next message; WorkerCrashed if it dies first."""
        assert self.connection is not None and self.process is not None
        while not self.connection.poll(0.2):
            if not self.process.is_alive():
                raise WorkerCrashed(f"prepare worker {self.number} died (exit code {self.process.exitcode})")
        try:
            return self.connection.recv()
        except (EOFError, OSError) as err:
            raise WorkerCrashed(f"prepare worker {self.number} died") from err

    def _restart(self) -> None:
        self.stop()
        while not self.pool.closing.is_set():
            try:
                self.start()
                log.warning("prepare worker %d started again", self.number)
                return
            except Exception:  # noqa: BLE001 - keep trying: the pool must not shrink for good
                log.exception("prepare worker %d failed to start; retrying", self.number)
                self.pool.closing.wait(1.0)

    def _feed(self) -> None:
        while True:
            task = self.pool.tasks.get()
            if task is None:
                return
            groups, future = task
            if not future.set_running_or_notify_cancel():
                continue
            self.busy.set()
            try:
                assert self.connection is not None
                try:
                    self.connection.send(groups)
                except OSError as err:  # the pipe is gone: the worker died between tasks
                    raise WorkerCrashed(f"prepare worker {self.number} died") from err
                reply = self._receive()
            except WorkerCrashed as err:
                future.set_exception(err)
                self._restart()
                continue
            except Exception as err:  # noqa: BLE001 - e.g. a task that cannot be sent
                future.set_exception(err)
                continue
            finally:
                self.busy.clear()
            if isinstance(reply, BaseException):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    def stop(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None
        if self.process is not None:
            self.process.join(timeout=5)
            if self.process.is_alive():
                self.process.kill()
                self.process.join()
            self.process = None


class PreparePool:
    """``workers`` prepare processes over ``database_url``; ``prepare`` shares a
    request's articles out between them and waits for all of them."""

    def __init__(self, database_url: str, workers: int):
        if workers < 1:
            raise ValueError("a prepare pool needs at least one worker (0 workers: prepare in the calling thread)")
        self.database_url = database_url
        self.context = _context()
        self.tasks: queue.Queue = queue.Queue()
        self.closing = threading.Event()
        self.workers = [_Worker(self, n) for n in range(workers)]
        self._ready = False
        self._ready_lock = threading.Lock()

    def start(self) -> PreparePool:
        return self.launch().wait_ready()

    def launch(self) -> PreparePool:
        """Start the processes, all at once (each spends seconds importing and loading the
        encoder); the caller can do other work (a server rebuilds its caches) until
        ``wait_ready``."""
        for worker in self.workers:
            worker.launch()
        return self

    def wait_ready(self) -> PreparePool:
        """Once every process can take work, start feeding them (at most once)."""
        with self._ready_lock:
            if not self._ready:
                for worker in self.workers:
                    worker.wait_ready()
                    worker.thread.start()
                self._ready = True
        return self

    @property
    def pids(self) -> list[int]:
        return [w.process.pid for w in self.workers if w.process is not None and w.process.pid is not None]

    def submit(self, groups: list[list[Job]]) -> Future:
        future: Future = Future()
        self.tasks.put((groups, future))
        return future

    def close(self) -> None:
        self.closing.set()
        for _ in self.workers:
            self.tasks.put(None)
        for worker in self.workers:
            if worker.thread.ident is not None:  # never started if the pool was closed before it was ready
                worker.thread.join(timeout=10)
            worker.stop()


class Preparer:
    """Where a request's articles are prepared: a ``PreparePool``, or (``workers`` 0)
    the calling thread, with the same snapshot semantics."""

    def __init__(self, sessions: sessionmaker[Session], database_url: str, workers: int):
        self.sessions = sessions
        self.pool = PreparePool(database_url, workers).launch() if workers > 0 else None
        self.parts = max(1, workers)

    def ready(self) -> None:
        """Wait until the worker processes can take work (they start in the background)."""
        if self.pool is not None:
            self.pool.wait_ready()

    def prepare(self, jobs: Sequence[Job]) -> list[Batch]:
        """Every job prepared; one ``Batch`` per share (each with its own snapshot)."""
        if not jobs:
            return []
        shares = share_out(jobs, self.parts)
        if self.pool is None:
            return [prepare_groups(self.sessions, share) for share in shares]
        self.ready()
        futures = [self.pool.submit(share) for share in shares]
        return [future.result() for future in futures]

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
