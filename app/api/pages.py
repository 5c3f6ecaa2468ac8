"""Rendered read responses, served again while the change feed stands still.

Every write the service makes that changes what a story listing or a story view shows
(an article stored, taken down or moved, stories merged, corrected, threaded or pruned)
appends to the change feed in its own transaction, so the feed's last position names
the state a response was rendered from. A process keeps the bytes of the responses it
rendered last, each under the position it read *before* rendering: a write that
commits between the two only makes the response newer than its position, and moves the
position for every later request, so a kept response is never older than what the
database held when it is served. Readers asking for the first page between two writer
commits cost one rendering: those that miss while it renders wait for it. A kept
response is answered on the event loop (``answer``), with the position read there too
where the store allows it (``app.store.position``); only a rendering takes a worker thread.

Writes made outside the service are not on the feed: a data migration that rewrites
summaries shows once the next article is written, and a database restored to an earlier
state needs its processes restarted (their story index needs it too).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

from fastapi import Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

# Bytes kept in all, and the largest response kept: a listing page holds at most 200
# summaries, but a story view lists every member of the story.
BUDGET = 32 * 2**20
LARGEST = 2**20


class RenderedPages:
    """The last rendering of each recent request, with the change-feed position it is
    current at, least recently used first out beyond ``budget`` bytes. Thread-safe: read
    routes run in a thread pool."""

    def __init__(self, budget: int = BUDGET, largest: int = LARGEST):
        if largest < 1 or budget < largest:
            raise ValueError("budget and largest must be positive, and budget at least largest (bytes)")
        self.budget, self.largest = budget, largest
        self._kept: OrderedDict[Hashable, tuple[int, bytes]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._rendering: dict[tuple[Hashable, int], threading.Lock] = {}  # renderings under way
        self.kept_ = 0  # responses served again
        self.rendered_ = 0  # responses rendered from the database

    def get(self, key: Hashable, position: int) -> bytes | None:
        """The response kept for ``key`` if it was rendered at ``position``, else None."""
        with self._lock:
            kept = self._kept.get(key)
            if kept is None or kept[0] != position:
                return None
            self._kept.move_to_end(key)
            return kept[1]

    def put(self, key: Hashable, position: int, body: bytes) -> None:
        """Keep ``body`` as the response to ``key`` at ``position`` (never replacing a
        response rendered at a later position, never one larger than ``largest``)."""
        if len(body) > self.largest:
            return
        with self._lock:
            kept = self._kept.pop(key, None)
            if kept is not None:
                self._bytes -= len(kept[1])
                if kept[0] > position:
                    body, position = kept[1], kept[0]
            self._kept[key] = (position, body)
            self._bytes += len(body)
            while self._bytes > self.budget:
                _, (_, dropped) = self._kept.popitem(last=False)
                self._bytes -= len(dropped)

    async def answer(self, key: Hashable, position: int, render: Callable[[], BaseModel]) -> Response:
        """``respond``, from a coroutine: a kept response is answered where the request
        is; only a rendering takes a worker thread (``render`` reads the database)."""
        body = self.get(key, position)
        if body is None:
            return await run_in_threadpool(self.respond, key, position, render)
        return self._answered(body, rendered=False)

    def respond(self, key: Hashable, position: int, render: Callable[[], BaseModel]) -> Response:
        """The JSON response to ``key`` at ``position``: kept, or ``render``-ed and kept
        (whatever ``render`` raises, an HTTP error included, is raised and nothing kept)."""
        body = self.get(key, position)
        rendered = False
        if body is None:
            # Requests that miss together wait for one of them to render (the first page
            # right after a writer's commit is asked for by every reader at once).
            with self._lock:
                gate = self._rendering.setdefault((key, position), threading.Lock())
            with gate:
                body = self.get(key, position)
                if body is None:
                    try:
                        body = render().model_dump_json().encode()
                        self.put(key, position, body)  # before the gate goes: no second rendering
                        rendered = True
                    finally:
                        with self._lock:
                            if self._rendering.get((key, position)) is gate:
                                del self._rendering[(key, position)]
        return self._answered(body, rendered)

    def _answered(self, body: bytes, rendered: bool) -> Response:
        with self._lock:
            if rendered:
                self.rendered_ += 1
            else:
                self.kept_ += 1
        return Response(body, media_type="application/json")

    def __len__(self) -> int:
        return len(self._kept)

    @property
    def size(self) -> int:
        """Bytes kept."""
        return self._bytes
