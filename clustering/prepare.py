"""Prepare: everything an article becomes before any decision, from the article alone.

extract → normalise → embed → vectorise → fingerprint. ``prepare`` is a pure function
of the article and a view of its source's learned template (``Templates``), so it runs
before the write step, in parallel, in worker processes: almost all the CPU an article
costs is here. What it returns is plain values that pickle cheaply.

The one thing that ties it to other articles is the template: the lines that earlier
pages of the same source carried. The caller looks them up in a snapshot and, in the
write step, prepares an article again only if its source's template changed since
(``Prepared.template`` says which lines were taken for template).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import cached_property

import numpy as np

from clustering import embed, fingerprint
from clustering.extract import Extraction, Templates, extract_html, extract_text
from clustering.normalise import words
from clustering.summarise import StoryTerms, story_terms
from clustering.vectorise import ArticleFeatures, PackedFeatures, features

# Dates outside [EARLIEST, arrival + FUTURE_TOLERANCE] are not news dates: a client's
# published_at there is refused, and a date found in a page there is ignored.
EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)
FUTURE_TOLERANCE = timedelta(days=1)


@dataclass(frozen=True)
class Draft:
    """An article as received: exactly one of ``text`` and ``html``; ``source`` is the
    outlet (or None); ``published_at`` as the client gave it (or None)."""

    title: str | None
    text: str | None
    html: str | None
    source: str | None
    published_at: datetime | None
    received_at: datetime


@dataclass(frozen=True)
class Prepared:
    """A draft through the pure stages.

    ``title`` is the given one or the page's; ``text`` the main text (empty when none
    could be extracted: such an article is refused); ``removed`` how many lines each
    rule dropped; ``line_fingerprints`` the page's learnable lines and ``template``
    those of them taken as the source's template; ``packed`` the term vectors and
    embedding (``features`` unpacks them); ``signature`` the MinHash signature;
    ``terms`` what a story summary counts of it (``clustering.summarise.story_terms``).
    """

    source: str | None
    title: str | None
    text: str
    removed: dict[str, int]
    line_fingerprints: tuple[str, ...]
    template: frozenset[str]
    published_at: datetime
    packed: PackedFeatures
    signature: np.ndarray
    terms: StoryTerms = StoryTerms()  # ``summarise.story_terms``

    @cached_property
    def features(self) -> ArticleFeatures:
        return self.packed.unpack()

    @property
    def has_text(self) -> bool:
        return bool(self.text.strip())


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _untimed(_stage: str) -> AbstractContextManager:
    return nullcontext()


def prepare(
    draft: Draft, templates: Templates | None = None, stage: Callable[[str], AbstractContextManager] = _untimed
) -> Prepared:
    """Run the pure stages on one draft; ``templates`` says which of its lines are its
    source's template, ``stage(name)`` times each stage.

    >>> d = Draft("Harbour bridge closes", "The harbour bridge closes for repairs on Monday.", None,
    ...           "example.com", None, datetime(2026, 3, 1, tzinfo=UTC))
    >>> p = prepare(d)
    >>> p.text, p.published_at.isoformat(), p.signature.shape
    ('The harbour bridge closes for repairs on Monday.', '2026-03-01T00:00:00+00:00', (128,))
    """
    with stage("extract"):
        extraction = _extract(draft, templates)
    return _finish(draft, extraction, stage)


def prepare_again(prepared: Prepared, draft: Draft, templates: Templates | None) -> Prepared:
    """``draft`` prepared once more against ``templates`` (its source's template changed
    since ``prepared`` was made). Extraction runs again; the costly stages only if the
    main text changed: a line that newly became template is often one the page-level
    rules drop anyway (a "trending" headline), and then nothing else changes."""
    extraction = _extract(draft, templates)
    if extraction.text == prepared.text:
        return replace(
            prepared,
            removed=extraction.removed,
            line_fingerprints=extraction.line_fingerprints,
            template=extraction.template,
        )
    return _finish(draft, extraction, _untimed)


def _extract(draft: Draft, templates: Templates | None) -> Extraction:
    if draft.html is not None:
        return extract_html(draft.html, draft.source, templates)
    return extract_text(draft.text or "", draft.source, templates)


def _finish(draft: Draft, extraction: Extraction, stage: Callable[[str], AbstractContextManager]) -> Prepared:
    title = draft.title or extraction.title
    found = extraction.published_at
    if found is not None and not EARLIEST <= _as_utc(found) <= draft.received_at + FUTURE_TOLERANCE:
        found = None  # a date in the page is a hint, never trusted outside plausible bounds
    published = draft.published_at or found or draft.received_at
    # A page that was all furniture (a video page: the site's template and nothing else)
    # is decided on its title alone: its text, the same on every such page of the site,
    # is no evidence of the event and never makes it a copy of another.
    body = "" if extraction.fell_back else extraction.text
    with stage("embed"):
        embedding = embed.embed(title, body) if body.strip() or (extraction.fell_back and title) else None
    with stage("vectorise"):
        packed = features(title, body, embedding).pack()
    with stage("fingerprint"):
        signature = fingerprint.signature(words(body))
    return Prepared(
        source=draft.source,
        title=title,
        text=extraction.text,
        removed=extraction.removed,
        line_fingerprints=extraction.line_fingerprints,
        template=extraction.template,
        published_at=_as_utc(published),
        packed=packed,
        signature=signature,
        terms=story_terms(title, body),
    )
