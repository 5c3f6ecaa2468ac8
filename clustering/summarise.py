"""Cluster summaries: representative headline, lead, keywords, outlets, counts.

Kept up to date whenever a story changes, so reading a summary costs one row. A
``Digest`` is a story's running state (outlets, keyword presence, members' titles and
dates): adding an article updates it in place, so a story's summary never needs its
members read back; ``summarise`` is the digest of a list of members.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from clustering.normalise import content_words, stems

LEAD_SENTENCES = 2
LEAD_MAX_CHARS = 320
KEYWORDS = 8
# A sentence ends at . ! or ? (and any closing quotes or brackets) before white space
# and a capital or digit, unless the full stop closes an abbreviation or an initial.
_SENTENCE_END = re.compile(r"[.!?][\"')\]\u201d\u2019]*\s+(?=[\"'(\[\u201c\u2018]?[A-Z0-9])")
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr st prof gen col lt sgt capt gov sen rep jr sr inc corp co ltd no vs etc "
    "jan feb mar apr jun jul aug sep sept oct nov dec u.s u.k e.g i.e a.m p.m".split()
)


def split_sentences(text: str) -> list[str]:
    """Split flowing text into sentences, keeping abbreviations and initials whole.

    >>> split_sentences('Mr. Okafor said: "It stays shut." Crews worked. J. Smith agreed.')
    ['Mr. Okafor said: "It stays shut."', 'Crews worked.', 'J. Smith agreed.']
    """
    flat = " ".join(text.split())
    out, start = [], 0
    for match in _SENTENCE_END.finditer(flat):
        word = flat[start : match.start()].rsplit(" ", 1)[-1].lower().lstrip("\"'(")
        if match.group(0)[0] == "." and (word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha())):
            continue
        end = match.end() - (len(match.group(0)) - len(match.group(0).rstrip()))
        out.append(flat[start:end])
        start = match.end()
    if start < len(flat):
        out.append(flat[start:])
    return out


@dataclass(frozen=True)
class Member:
    """What a summary needs to know of one stored article."""

    article_id: int
    title: str | None
    text: str
    source: str | None
    published_at: datetime
    duplicate_of: int | None = None
    terms: tuple[frozenset[str], frozenset[str]] | None = None  # ``story_terms`` of it, when known


def story_terms(title: str | None, text: str) -> tuple[frozenset[str], frozenset[str]]:
    """(title terms, title and body terms) of an article, digits left out: what
    ``keywords`` counts. Cheap to keep per article, costly to recompute per summary.

    >>> story_terms("Flood in Calder", "The river rose 2 metres.")[0] == {"flood", "calder"}
    True
    """
    title_terms = frozenset(t for t in content_words(title or "") if not t.isdigit())
    return title_terms, title_terms | frozenset(t for t in content_words(text) if not t.isdigit())


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
    out = " ".join(split_sentences(text)[:sentences])
    if len(out) > max_chars:
        out = out[:max_chars].rsplit(" ", 1)[0].rstrip(",;:") + "\u2026"
    return out


def keywords(members: Sequence[Member], idf: Callable[[list[str]], np.ndarray], k: int = KEYWORDS) -> list[str]:
    """Terms that distinguish the story: in many of its articles, rare elsewhere.

    Near-duplicate copies count once, so one syndicated text cannot fill the list.
    """
    return Digest.of(members).keywords(idf, k)


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
    texts = {m.article_id: m.text for m in members}
    return Digest.of(members).summary(centrality, idf, texts.__getitem__)


@dataclass(slots=True)
class _Seen:
    """What a digest keeps of one member: enough to rank it, not its text."""

    title: str | None
    source: str
    published_at: datetime
    original: bool
    terms: tuple[frozenset[str], frozenset[str]]


class _Words:
    """Keyword presence of some members, kept grouped by stem as it grows: each stem's
    total presence and the form it shows (the most frequent form; ties: the shorter,
    then the first in order). Presence only grows, so a stem's shown form can change
    only to a form the latest member carried: adding costs what the member has, and
    ranking needs no stemming or regrouping of the whole story."""

    __slots__ = ("presence", "total", "shown")

    def __init__(self) -> None:
        self.presence: Counter[str] = Counter()
        self.total: dict[str, int] = {}  # stem -> presence of all its forms
        self.shown: dict[str, str] = {}  # stem -> the form shown

    def add(self, title_terms: frozenset[str], all_terms: frozenset[str]) -> None:
        presence, total, shown = self.presence, self.total, self.shown
        presence.update(all_terms)
        presence.update(title_terms)  # a title word counts twice
        terms = list(all_terms | title_terms)  # (``story_terms`` puts the title's among all)
        for term, stem in zip(terms, stems(terms)):
            total[stem] = total.get(stem, 0) + (term in all_terms) + (term in title_terms)
            current = shown.get(stem)
            if current is None or (-presence[term], len(term), term) < (-presence[current], len(current), current):
                shown[stem] = term

    def top(self, idf: Callable[[list[str]], np.ndarray], k: int) -> list[str]:
        """The ``k`` shown forms with the most presence times IDF (ties: in alphabetical order)."""
        if not self.total:
            return []
        shown = [self.shown[stem] for stem in self.total]
        weights = np.fromiter(self.total.values(), dtype=float, count=len(self.total)) * idf(shown)
        if len(weights) > k:  # only the weights at or above the k-th largest can be chosen
            chosen = np.flatnonzero(weights >= np.partition(weights, len(weights) - k)[len(weights) - k])
        else:
            chosen = range(len(weights))
        ranked = sorted(chosen, key=lambda i: (-weights[i], shown[i]))[:k]
        return [shown[i] for i in ranked]


class Digest:
    """A story's summary as running state, updated one member at a time.

    Keyword presence is counted over originals (a near-duplicate copy counts once, as
    its original); while a story holds no original (its original was taken down),
    every member counts, as ``keywords`` does.
    """

    def __init__(self) -> None:
        self.members: dict[int, _Seen] = {}
        self.outlets: Counter[str] = Counter()
        self.of_originals = _Words()
        self.of_copies = _Words()  # what counts while the story holds no original
        self.originals = 0

    @classmethod
    def of(cls, members: Sequence[Member]) -> Digest:
        digest = cls()
        for member in members:
            digest.add(member)
        return digest

    def __len__(self) -> int:
        return len(self.members)

    def add(self, member: Member) -> None:
        """Count one more member (a member already counted is ignored)."""
        if member.article_id in self.members:
            return
        terms = member.terms or story_terms(member.title, member.text)
        original = member.duplicate_of is None
        seen = _Seen(member.title, member.source or "unknown", member.published_at, original, terms)
        self.members[member.article_id] = seen
        self.outlets[seen.source] += 1
        (self.of_originals if original else self.of_copies).add(*terms)
        self.originals += original

    def keywords(self, idf: Callable[[list[str]], np.ndarray], k: int = KEYWORDS) -> list[str]:
        """The ``k`` terms with the most presence times IDF. Inflections of one word
        ("arrives", "arrived") are one term: their presence adds up, and it shows in its
        most frequent form (ties: the shorter, then the first in order)."""
        return (self.of_originals if self.originals else self.of_copies).top(idf, k)

    def representative(self, centrality: dict[int, float]) -> int:
        """The titled member closest to the centroid (ties: the earliest, then the lowest id)."""

        def rank(article_id: int) -> tuple[bool, float, float, int]:
            m = self.members[article_id]
            return (
                m.title is not None and bool(m.title.strip()),
                centrality.get(article_id, 0.0),
                -m.published_at.timestamp(),
                -article_id,
            )

        return max(self.members, key=rank)

    def summary(
        self,
        centrality: dict[int, float],
        idf: Callable[[list[str]], np.ndarray],
        text_of: Callable[[int], str],
    ) -> Summary:
        """The summary of a non-empty story; ``text_of(id)`` gives the representative's text."""
        if not self.members:
            raise ValueError("a story needs at least one member to be summarised")
        chosen = self.representative(centrality)
        representative = self.members[chosen]
        text = text_of(chosen)
        headline = (representative.title or "").strip() or lead(text, sentences=1, max_chars=120)
        times = [m.published_at for m in self.members.values()]
        return Summary(
            title=headline,
            summary=lead(text),
            keywords=self.keywords(idf),
            sources=[
                {"name": name, "articles": n}
                for name, n in sorted(self.outlets.items(), key=lambda kv: (-kv[1], kv[0]))
            ],
            article_count=len(self.members),
            source_count=len(self.outlets),
            first_published_at=min(times),
            last_published_at=max(times),
            representative_article_id=chosen,
        )
