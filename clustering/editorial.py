"""Editors' corrections as constraints on every later automatic decision.

An editor moves an article to another story (or a new one), splits articles out of a
story, or merges two stories. Automatic decisions never undo it:

* an article an editor **placed** (moved or split out) is never moved again by an
  automatic merge: a story holding one is never absorbed, and of two such stories an
  article binds, only the first it joins takes part in the merge;
* two stories an editor **separated** (split, or moved an article from one to the other)
  are never merged automatically: an article binding both joins the better one and
  merges nothing (a cannot-link, carried to the survivor when either story is merged);
* an editor's merge is never undone: nothing automatic splits a story.

``Editorial`` holds these facts as plain ids; the service keeps it beside the story
index and rebuilds it from the stored corrections (``from_corrections``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field


def _pair(a: int, b: int) -> frozenset[int]:
    return frozenset((a, b))


@dataclass
class Editorial:
    placed: set[int] = field(default_factory=set)  # article ids an editor placed
    apart: set[frozenset[int]] = field(default_factory=set)  # pairs of live story ids kept apart

    @classmethod
    def from_corrections(
        cls, corrections: Iterable[tuple[str, int, int, Iterable[int]]], forward: Mapping[int, int]
    ) -> Editorial:
        """The constraints the stored corrections (kind, cluster id, into cluster id,
        article ids; any order) leave in force, story ids resolved through ``forward``
        (each merged story to the one it was merged into). A pair both of whose stories
        were since merged into one (only an editor can do that) is in force no more.

        >>> e = Editorial.from_corrections([("split", 1, 2, [5]), ("merge", 3, 1, [])], {3: 1})
        >>> sorted(e.placed), e.kept_apart(1, 2)
        ([5], True)
        """
        editorial = cls()

        def resolve(story_id: int) -> int:
            seen = set()
            while story_id in forward and story_id not in seen:
                seen.add(story_id)
                story_id = forward[story_id]
            return story_id

        for kind, cluster_id, into_id, article_ids in corrections:
            if kind == "merge":
                continue
            editorial.placed.update(article_ids)
            editorial.separate(resolve(cluster_id), resolve(into_id))
        return editorial

    def separate(self, a: int, b: int) -> None:
        if a != b:
            self.apart.add(_pair(a, b))

    def place(self, article_ids: Iterable[int]) -> None:
        self.placed.update(article_ids)

    def kept_apart(self, a: int, b: int) -> bool:
        return _pair(a, b) in self.apart

    def merged(self, survivor: int, absorbed: int) -> None:
        """``absorbed`` was folded into ``survivor``: its pairs are the survivor's now (a
        pair of the two, which only an editor's merge can join, goes)."""
        self.apart.discard(_pair(survivor, absorbed))
        for pair in [p for p in self.apart if absorbed in p]:
            self.apart.discard(pair)
            (other,) = pair - {absorbed}
            self.separate(survivor, other)

    def holds_placed(self, member_ids: Iterable[int]) -> bool:
        return any(article_id in self.placed for article_id in member_ids)

    def merge_group(
        self,
        story_id: int,
        others: Iterable[int],
        size: Callable[[int], int],
        members: Callable[[int], Iterable[int]],
    ) -> tuple[int, list[int]]:
        """Which of the stories an article binds may be merged, and into which.

        The article joined ``story_id``; ``others`` are the further stories it binds, best
        first. A story kept apart from one already in the group stays out, as does a
        story holding placed articles when the group has one already. The survivor is the
        story holding placed articles if any, else the largest (``size``; the oldest id on
        a tie). Returns (survivor, the stories to fold into it).

        >>> e = Editorial(placed={9}, apart={frozenset((1, 3))})
        >>> sizes, held = {1: 1, 2: 5, 3: 4}, {1: [9], 2: [7], 3: [8]}
        >>> e.merge_group(1, [2, 3], sizes.get, held.get)
        (1, [2])
        """
        group = [story_id]
        has_placed = self.holds_placed(members(story_id))
        for other in others:
            if other in group or any(self.kept_apart(other, kept) for kept in group):
                continue
            placed = self.holds_placed(members(other))
            if placed and has_placed:
                continue
            has_placed |= placed
            group.append(other)
        pinned = [sid for sid in group if self.holds_placed(members(sid))]
        survivor = pinned[0] if pinned else max(group, key=lambda sid: (size(sid), -sid))
        return survivor, [sid for sid in group if sid != survivor]


_AUTOMATIC = {
    "score": 0.0,
    "threshold": 0.0,
    "model": "article",
    "duplicate_of": None,
    "jaccard": None,
    "thread_of": None,
    "merged": [],
    "candidates": [],
}


def placed_decision(
    previous: dict | None, *, correction_id: int, editor: str | None, note: str | None, from_cluster_id: int
) -> dict:
    """The decision of an article an editor placed: rule ``editor``, naming the
    correction, beside what the model had decided (``automatic_rule`` and its values;
    an article placed twice keeps the model's first decision).

    >>> placed_decision({"rule": "join", "score": 0.5}, correction_id=3, editor="ana", note=None,
    ...                 from_cluster_id=7)["automatic_rule"]
    'join'
    """
    automatic = {**_AUTOMATIC, **(previous or {})}
    if automatic.get("rule") == "editor":
        automatic_rule = automatic.get("automatic_rule")
    else:
        automatic_rule = automatic.get("rule")
    return {
        **automatic,
        "rule": "editor",
        "automatic_rule": automatic_rule,
        "correction_id": correction_id,
        "editor": editor,
        "note": note,
        "from_cluster_id": from_cluster_id,
    }
