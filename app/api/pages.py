"""Rendered read responses, served again while the change feed stands still.

Every write that changes what a story listing or a story view shows (an article
stored, taken down or moved, stories merged, corrected, threaded or pruned) appends to
the change feed in its own transaction, so the feed's last position names the state a
response was rendered from. A reader process keeps the bytes of the responses it
rendered last, each under the position it read *before* rendering: a write that
commits between the two only makes the response newer than its position, and moves
the position for every later request, so a kept response is never older than what the
database held when it is served. Fifty readers asking for the first page between two
writer commits cost one rendering, not fifty.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

from fastapi import Response
from pydantic import BaseModel

# Distinct requests kept (their query strings): each response is a page of at most 200
# summaries or one story, tens of kilobytes at most.
CAPACITY = 512


class RenderedPages:
    """The last rendering of each recent request, with the change-feed position it is
    current at. Thread-safe: read routes run in a thread pool."""

    def __init__(self, capacity: int = CAPACITY):
        if capacity < 1:
            raise ValueError("capacity must be at least 1 (responses kept)")
        self.capacity = capacity
        self._kept: OrderedDict[Hashable, tuple[int, bytes]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits_ = 0
        self.misses_ = 0

    def get(self, key: Hashable, position: int) -> bytes | None:
        """The response kept for ``key`` if it was rendered at ``position``, else None."""
        with self._lock:
            kept = self._kept.get(key)
            if kept is None or kept[0] != position:
                self.misses_ += 1
                return None
            self._kept.move_to_end(key)
            self.hits_ += 1
            return kept[1]

    def put(self, key: Hashable, position: int, body: bytes) -> None:
        """Keep ``body`` as the response to ``key`` at ``position`` (never replacing a
        response rendered at a later position); the least recently used goes first."""
        with self._lock:
            kept = self._kept.get(key)
            if kept is not None and kept[0] > position:
                return
            self._kept[key] = (position, body)
            self._kept.move_to_end(key)
            while len(self._kept) > self.capacity:
                self._kept.popitem(last=False)

    def respond(self, key: Hashable, position: int, render: Callable[[], BaseModel]) -> Response:
        """The JSON response to ``key`` at ``position``: kept, or ``render``-ed and kept
        (whatever ``render`` raises, an HTTP error included, is raised and nothing kept)."""
        body = self.get(key, position)
        if body is None:
            body = render().model_dump_json().encode()
            self.put(key, position, body)
        return Response(body, media_type="application/json")

    def __len__(self) -> int:
        return len(self._kept)
