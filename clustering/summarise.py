"""Cluster summaries: representative headline, lead, keywords, outlets, counts.

Kept up to date whenever a story changes, so reading a summary costs one row. A
``Digest`` is a story's running state (outlets, keyword presence, members' titles and
dates): adding an article updates it in place, so a story's summary never needs its
members read back; ``summarise`` is the digest of a list of members.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

import numpy as np
from lemminflect import getAllLemmas

from clustering.normalise import content_words, folded_words, name_phrases, stems

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
    terms: StoryTerms | None = None  # ``story_terms`` of it, when known


class StoryTerms(NamedTuple):
    """What ``keywords`` counts of one article: its title's terms, its title and body
    terms (digits left out), and the names its body gives, each as written with its
    case-folded words."""

    title: frozenset[str] = frozenset()
    all: frozenset[str] = frozenset()
    names: frozenset[tuple[str, tuple[str, ...]]] = frozenset()


def story_terms(title: str | None, text: str) -> StoryTerms:
    """The ``StoryTerms`` of an article: cheap to keep per article, costly to recompute
    per summary. Names come from the body only, since many outlets capitalise every
    word of a headline.

    >>> terms = story_terms("Flood in Calder", "The river rose 2 metres at Calder Bridge.")
    >>> sorted(terms.title), sorted(terms.names)
    (['calder', 'flood'], [('Calder Bridge', ('calder', 'bridge'))])
    """
    title_terms = frozenset(t for t in content_words(title or "") if not t.isdigit())
    body_terms = frozenset(t for t in content_words(text) if not t.isdigit())
    names = {name: tuple(folded_words(name)) for name in set(name_phrases(text))}
    return StoryTerms(title_terms, title_terms | body_terms, frozenset((n, key) for n, key in names.items() if key))


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
    """What a digest keeps of one member: enough to rank it, not its text, nor its
    terms once counted (a story's words are kept once, in its ``_Words``)."""

    title: str | None
    source: str
    published_at: datetime
    original: bool


_NAME_WORDS = 4  # longer runs of capitals are mostly headlines or titles, not names
_CALENDAR = frozenset(
    "january february march april may june july august september october november december "
    "jan feb mar apr jun jul aug sep sept oct nov dec".split()
)
# What the English lexicon says of a word: (known to it, a verb and nothing else). Kept
# per process, emptied when full, as ``normalise.stems`` keeps stems.
_LEXICON: dict[str, tuple[bool, bool]] = {}
_LEXICON_KEPT = 200_000


def load_lexicon() -> None:
    """Read the English lexicon now (about 0.4 s), not in the first summary written."""
    _lexicon("be")


def _lexicon(word: str) -> tuple[bool, bool]:
    found = _LEXICON.get(word)
    if found is None:
        classes = getAllLemmas(word)
        found = (bool(classes), bool(classes) and set(classes) <= {"VERB", "AUX"})
        if len(_LEXICON) >= _LEXICON_KEPT:
            _LEXICON.clear()
        _LEXICON[word] = found
    return found


def _tells_nothing(word: str) -> bool:
    """A month, or a bare verb ("met", "announced"): words that say what happened to
    every story alike. A word that is also a noun or adjective ("set", "attack") stays.

    >>> [w for w in ["met", "september", "set", "summit", "announced"] if _tells_nothing(w)]
    ['met', 'september', 'announced']
    """
    return word in _CALENDAR or _lexicon(word)[1]


class _Words:
    """Keyword presence of some members, kept grouped by stem as it grows: each stem's
    total presence and the form it shows (the most frequent form; ties: the shorter,
    then the first in order). Presence only grows, so a stem's shown form can change
    only to a form the latest member carried: adding costs what the member has, and
    ranking needs no stemming or regrouping of the whole story.

    Names are counted beside the words, by their case-folded words: how many members
    name them, and the form most of them write. A multi-word name that two members give
    (or the only member) can stand as a keyword, in place of its words."""

    __slots__ = ("presence", "total", "shown", "members", "named", "named_shown", "forms", "phrases")

    def __init__(self) -> None:
        self.presence: Counter[str] = Counter()
        self.total: dict[str, int] = {}  # stem -> presence of all its forms
        self.shown: dict[str, str] = {}  # stem -> the form shown
        self.members = 0
        self.named: Counter[tuple[str, ...]] = Counter()  # a name's case-folded words -> members naming it
        self.forms: Counter[str] = Counter()  # a name as written -> members writing it so
        self.named_shown: dict[tuple[str, ...], str] = {}  # a name's words -> the form shown
        self.phrases: set[tuple[str, ...]] = set()  # multi-word names two members give

    def add(self, terms: StoryTerms) -> None:
        title_terms, all_terms, names = terms
        # Words kept as keys are interned: many stories' states share one copy of each
        # word, where each would otherwise hold the copy its first member brought.
        words = [sys.intern(t) for t in all_terms | title_terms]  # (``story_terms`` puts the title's among all)
        presence, total, shown = self.presence, self.total, self.shown
        presence.update(words if len(words) == len(all_terms) else [t for t in words if t in all_terms])
        presence.update(title_terms)  # a title word counts twice
        for term, stem in zip(words, stems(words)):
            total[stem] = total.get(stem, 0) + (term in all_terms) + (term in title_terms)
            current = shown.get(stem)
            if current is None or (-presence[term], len(term), term) < (-presence[current], len(current), current):
                shown[stem] = term
        self.members += 1
        forms, named = self.forms, self.named
        for name, key in names:
            forms[name] += 1
            count = named[key] = named[key] + 1
            current = self.named_shown.get(key)
            if current is None or (-forms[name], name.isupper(), name) < (-forms[current], current.isupper(), current):
                self.named_shown[key] = name
            if count == 2 and len(key) > 1:
                self.phrases.add(key)

    def _phrases(self, title: str | None) -> set[tuple[str, ...]]:
        """Multi-word names that can stand as keywords: of two to four words, given by two
        members, or in a story of one member, by its body and its title alike."""
        if self.members > 1:
            return {key for key in self.phrases if len(key) <= _NAME_WORDS}
        title_words = " " + " ".join(folded_words(title or "")) + " "
        return {key for key in self.named if 1 < len(key) <= _NAME_WORDS and f" {' '.join(key)} " in title_words}

    def top(self, idf: Callable[[list[str]], np.ndarray], k: int, title: str | None = None) -> list[str]:
        """The ``k`` best keywords, names first, each part by presence times IDF (ties:
        in alphabetical order). A multi-word name weighs its presence times the IDF of
        its rarest word and stands in place of its words; months and bare verbs are
        left out; a word the lexicon does not know shows as its members name it ("Putin")."""
        if not self.total:
            return []
        shown = [self.shown[stem] for stem in self.total]
        phrases = sorted(self._phrases(title))
        parts = sorted({word for key in phrases for word in key})
        idfs = idf(shown + parts)  # one call: the words, then the words of names
        weights = np.fromiter(self.total.values(), dtype=float, count=len(self.total)) * idfs[: len(shown)]
        named: list[tuple[float, str, tuple[str, ...]]] = []
        fuller: dict[str, tuple[str, ...]] = {}  # a word -> the most named phrase holding it
        if phrases:
            part_idf = dict(zip(parts, idfs[len(shown) :].tolist()))
            named = [(-self.named[key] * max(part_idf[w] for w in key), self.named_shown[key], key) for key in phrases]
            for key in sorted(phrases, key=lambda key: (-self.named[key], len(key), key), reverse=True):
                fuller.update(dict.fromkeys(key, key))  # the best is written last
        looked = 4 * k  # words looked at: enough unless many are left out
        while True:
            ranked = sorted([(-weights[i], shown[i], None) for i in self._best(weights, shown, looked)] + named)
            chosen = self._choose(ranked, k, fuller)
            if len(chosen) == k or looked >= len(weights):
                return chosen
            looked = len(weights)

    def _choose(
        self, ranked: list[tuple[float, str, tuple[str, ...] | None]], k: int, fuller: dict[str, tuple[str, ...]]
    ) -> list[str]:
        names = self._names(ranked, k // 2 + 1, fuller)
        others = self._others(ranked, names, k - len(names))
        if len(names) + len(others) < k:  # few other words: names may take their places
            names = self._names(ranked, k - len(others), fuller)
            others = self._others(ranked, names, k - len(names))
        return [shown for shown, _ in names] + others

    def _names(
        self, ranked: list[tuple[float, str, tuple[str, ...] | None]], n: int, fuller: dict[str, tuple[str, ...]]
    ) -> list[tuple[str, tuple[str, ...]]]:
        """The ``n`` best names as (shown form, case-folded words). A name-word shows as
        the most named phrase holding it ("Kim" as "Kim Jong Un"), and a longer name
        takes the place of a shorter one inside it."""
        names: list[tuple[str, tuple[str, ...]]] = []
        for _, shown, key in ranked:
            if len(names) == n:
                break
            if key is None:
                if not self._is_name(shown):
                    continue
                key = fuller.get(shown, (shown,))
                shown = self.named_shown[key]
            if any(set(key) <= set(words) for _, words in names):
                continue
            names = [(s, words) for s, words in names if not set(words) <= set(key)]
            names.append((shown, key))
        return names

    def _is_name(self, word: str) -> bool:
        """A word members write as a name and the English lexicon does not know ("Putin")."""
        return (word,) in self.named and not _lexicon(word)[0]

    def _others(
        self, ranked: list[tuple[float, str, tuple[str, ...] | None]], names: list[tuple[str, tuple[str, ...]]], n: int
    ) -> list[str]:
        """The ``n`` best words that are no name, no part of a chosen name, no month or bare verb."""
        taken = {word for _, words in names for word in words}
        others: list[str] = []
        for _, word, key in ranked:
            if len(others) >= n:
                break
            if key is None and word not in taken and not self._is_name(word) and not _tells_nothing(word):
                others.append(word)
        return others

    @staticmethod
    def _best(weights: np.ndarray, shown: list[str], n: int) -> list[int]:
        """Indices of the ``n`` largest weights, best first (ties: alphabetical), or all."""
        if len(weights) > n:  # only the weights at or above the n-th largest can be chosen
            chosen = np.flatnonzero(weights >= np.partition(weights, len(weights) - n)[len(weights) - n])
        else:
            chosen = range(len(weights))
        return sorted(chosen, key=lambda i: (-weights[i], shown[i]))


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
        seen = _Seen(member.title, member.source or "unknown", member.published_at, original)
        self.members[member.article_id] = seen
        self.outlets[seen.source] += 1
        (self.of_originals if original else self.of_copies).add(terms)
        self.originals += original

    def keywords(self, idf: Callable[[list[str]], np.ndarray], k: int = KEYWORDS) -> list[str]:
        """The ``k`` terms with the most presence times IDF. Inflections of one word
        ("arrives", "arrived") are one term: their presence adds up, and it shows in its
        most frequent form (ties: the shorter, then the first in order)."""
        words = self.of_originals if self.originals else self.of_copies
        title = None
        if words.members == 1:  # a lone member's names are judged by its title
            title = next(m.title for m in self.members.values() if m.original or not self.originals)
        return words.top(idf, k, title)

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
