"""Cluster summaries: representative headline, lead, keywords, outlets, counts.

Computed from a story's stored members whenever the story changes, so reading a
summary costs one row.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from clustering.normalise import content_words

LEAD_SENTENCES = 2
LEAD_MAX_CHARS = 320
KEYWORDS = 8
_SENTENCE = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[\"'(\[]?[A-Z0-9])")


@dataclass(frozen=True)
class Member:
    """What a summary needs to know of one stored article."""

    article_id: int
    title: str | None
    text: str
    source: str | None
    published_at: datetime
    duplicate_of: int | None = None


@dataclass(frozen=True)
class Summary:
    title: str
    summary: str
    keywords: list[str]
    sources: list[dict[str, int | str]]
    article_count: int
    source_count: int
    first_published_at: datetime
    last_published_at: datetime
    representative_article_id: int


def lead(text: str, sentences: int = LEAD_SENTENCES, max_chars: int = LEAD_MAX_CHARS) -> str:
    """The first sentences of ``text``, cut at a word boundary to ``max_chars``.

    >>> lead("Putin will visit. Kim greeted him. A third sentence.")
    'Putin will visit. Kim greeted him.'
    """
    flat = " ".join(text.split())
    parts = _SENTENCE.split(flat)
    out = " ".join(parts[:sentences])
    if len(out) > max_chars:
        out = out[:max_chars].rsplit(" ", 1)[0].rstrip(",;:") + "\u2026"
    return out


def keywords(members: Sequence[Member], idf: Callable[[list[str]], np.ndarray], k: int = KEYWORDS) -> list[str]:
    """Terms that distinguish the story: in many of its articles, rare elsewhere.

    Near-duplicate copies count once, so one syndicated text cannot fill the list.
    """
    presence: Counter[str] = Counter()
    originals = [m for m in members if m.duplicate_of is None] or list(members)
    for member in originals:
        title_terms = set(content_words(member.title or ""))
        body_terms = set(content_words(member.text))
        presence.update(t for t in title_terms | body_terms if not t.isdigit())
        presence.update(t for t in title_terms if not t.isdigit())  # a title word counts twice
    if not presence:
        return []
    terms = list(presence)
    weights = np.array([presence[t] for t in terms], dtype=float) * idf(terms)
    order = np.argsort(-weights, kind="stable")[:k]
    return [terms[i] for i in order]


def summarise(
    members: Sequence[Member],
    centrality: dict[int, float],
    idf: Callable[[list[str]], np.ndarray],
) -> Summary:
    """Summary of a non-empty story.

    The representative article is the titled member closest to the story's centroid
    (``centrality``); its title is the headline and its first sentences the lead.
    """
    if not members:
        raise ValueError("a story needs at least one member to be summarised")

    def rank(m: Member) -> tuple[bool, float, datetime, int]:
        return (m.title is not None and bool(m.title.strip()), centrality.get(m.article_id, 0.0), -m.published_at.timestamp(), -m.article_id)

    representative = max(members, key=rank)
    headline = (representative.title or "").strip() or lead(representative.text, sentences=1, max_chars=120)
    outlets = Counter(m.source or "unknown" for m in members)
    return Summary(
        title=headline,
        summary=lead(representative.text),
        keywords=keywords(members, idf),
        sources=[{"name": name, "articles": n} for name, n in sorted(outlets.items(), key=lambda kv: (-kv[1], kv[0]))],
        article_count=len(members),
        source_count=len(outlets),
        first_published_at=min(m.published_at for m in members),
        last_published_at=max(m.published_at for m in members),
        representative_article_id=representative.article_id,
    )
