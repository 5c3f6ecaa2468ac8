"""Extract an article's main text from a crawled page.

HTML goes through trafilatura. Plain text (what many crawlers deliver: the page's
visible text, menus and all) goes through two kinds of rule:

* **source templates**: a line that already appeared on another page of the same
  source is page furniture (menus, footers, ad slots). Line fingerprints are counted
  per source, as CCNet counts paragraph hashes per shard, and the counts are learned
  state that the caller persists.
* **single-page rules**, so the first page of a new source is cleaned too: bulleted
  link lists, headline-and-date lists, date-only lines, short menu-like lines,
  title-case headline lines, share bars, copyright and "read more" furniture.

Every removed line is counted under the rule that removed it, so an extraction can be
explained (``Extraction.removed``).
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from clustering.normalise import STOP_WORDS, fold, folded_words, words

# A line of at most this many words may be learned as template. Longer lines are
# prose; counting them would cost memory and risk removing a paragraph that a
# follow-up story legitimately repeats.
TEMPLATE_MAX_WORDS = 40

_BULLET = re.compile(r"^\s*(?:[\u2022\u00b7\u25aa\u25cf\u25ba\u2023\u2043*>|]|-\s|\d{1,2}[.)]\s)")
_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_DATE = (
    rf"(?:{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}"
    rf"|\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTH},?\s+\d{{4}}"
    r"|\d{4}-\d{2}-\d{2}(?:[ t]\d{1,2}:\d{2}(?::\d{2})?)?"
    r"|\d{1,2}/\d{1,2}/\d{2,4})"
)
_TIME = r"(?:,?\s*(?:at\s+)?\d{1,2}[:.]\d{2}\s*(?:[ap]\.?m\.?)?(?:\s*[a-z]{2,4})?)?"
_DATE_ONLY = re.compile(rf"^\s*(?:\w+,\s+)?{_DATE}{_TIME}\s*$", re.IGNORECASE)
_ENDS_WITH_DATE = re.compile(
    rf"(?:{_DATE}{_TIME}|\d+\s+(?:second|minute|hour|day|week|month|year)s?(?:,\s*\d+\s+\w+)?\s+ago)\s*$",
    re.IGNORECASE,
)
_FURNITURE = re.compile(
    r"^\s*(?:share(?:\s+this)?\b|follow us|read (?:more|next|also)\b|see also\b|related\b"
    r"|latest (?:posts|news|stories)|more on\b|more from\b|recommended\b|trending\b|advertisement"
    r"|sponsored\b|subscribe\b|sign up\b|newsletter|leave a (?:reply|comment)|add a comment"
    r"|comments?\b|loading\b|posted in\b|filed under\b|tags?:|photo(?: courtesy)?:|image:"
    r"|click here|join (?:us|now)\b|copyright|\u00a9|\(c\)\s*\d{4}|all rights reserved"
    r"|privacy policy|terms of (?:use|service)|cookie|skip to (?:content|main)|close menu"
    r"|type above and press|back to top|download (?:our|the) app|home\s*[-\u00bb>/|:])",
    re.IGNORECASE,
)
# "See Also: <other story's headline>" is a link whatever its length.
_LEAD_IN = re.compile(r"^\s*(?:see also|read (?:more|next|also)|related|watch|listen|more)\s*:", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?\"')\]]\s*$")


FALLBACK = "kept-by-fallback"  # the rule that kept every line of a page that was all furniture


@dataclass(frozen=True)
class Extraction:
    """The main text of a page and how it was found."""

    text: str
    title: str | None = None
    published_at: datetime | None = None
    removed: dict[str, int] = field(default_factory=dict)
    line_fingerprints: tuple[str, ...] = ()
    template: frozenset[str] = frozenset()  # the fingerprints that were the source's template

    @property
    def fell_back(self) -> bool:
        """Every line was judged page furniture, so all were kept: the text shows what the
        page carried, and says nothing of the event it reports."""
        return FALLBACK in self.removed


def line_fingerprint(line: str) -> str | None:
    """A stable fingerprint of a line's words, or None for lines too long to learn.

    >>> line_fingerprint("  Close Menu ") == line_fingerprint("close  menu")
    True
    """
    return _fingerprint(words(line))


def _fingerprint(tokens: list[str]) -> str | None:
    if not tokens or len(tokens) > TEMPLATE_MAX_WORDS:
        return None
    return hashlib.blake2b(" ".join(tokens).encode(), digest_size=8).hexdigest()


class Templates(Protocol):
    """Where a page's learned template lines are looked up: ``SourceTemplates`` in
    memory, or the service's stored counts (so a process holds none of them)."""

    def template_lines(self, source: str | None, fingerprints: Iterable[str]) -> set[str]:
        """The fingerprints among ``fingerprints`` that are ``source``'s template."""
        ...


class SourceTemplates:
    """Per-source counts of line fingerprints: which lines are a site's furniture.

    ``min_pages`` is how many earlier pages of the same source must carry a line
    before it counts as template on the next page.
    """

    def __init__(self, min_pages: int = 1):
        if min_pages < 1:
            raise ValueError("min_pages must be at least 1")
        self.min_pages = min_pages
        self.line_counts_: dict[str, Counter[str]] = {}

    def is_template(self, source: str | None, fingerprint: str | None) -> bool:
        if source is None or fingerprint is None:
            return False
        counts = self.line_counts_.get(source)
        return counts is not None and counts[fingerprint] >= self.min_pages

    def template_lines(self, source: str | None, fingerprints: Iterable[str]) -> set[str]:
        return {fp for fp in fingerprints if self.is_template(source, fp)}

    def learn(self, source: str | None, fingerprints: tuple[str, ...] | list[str]) -> None:
        """Count each distinct fingerprint of one page once for ``source``."""
        if source is None:
            return
        counts = self.line_counts_.setdefault(source, Counter())
        counts.update(set(fingerprints))


def _is_title_case(tokens: list[str]) -> bool:
    alpha = [t for t in tokens if t[:1].isalpha()]
    if len(alpha) < 3:
        return False
    # Headline style capitalises every content word; small words ("for", "the") may
    # stay lower-case, so only content words are counted.
    content = [t for t in alpha if t.lower() not in STOP_WORDS]
    capitalised = sum(1 for t in content if t[0].isupper())
    return len(content) >= 2 and capitalised / len(content) >= 0.8


def classify_line(line: str) -> str | None:
    """The single-page rule that marks ``line`` as furniture, or None for content.

    >>> classify_line("February 3, 2026")
    'date'
    >>> classify_line("\u2022 Six Dead, 23 Injured In Lagos-Ibadan Expressway Crash")
    'list'
    >>> classify_line("Share. Facebook Twitter WhatsApp LinkedIn Telegram Email")
    'furniture'
    >>> classify_line("Putin last visited Pyongyang in July 2000, four months after he was elected.") is None
    True
    """
    stripped = fold(line).strip()
    return _classify(stripped, len(words(stripped)))


# A date or "3 hours ago" that ends a line is far shorter than this: searching only the
# line's tail keeps a long paragraph from costing a regex attempt at every character.
_DATE_TAIL = 120


def _classify(stripped: str, n_words: int) -> str | None:
    """``classify_line`` of a line already folded and stripped, of ``n_words`` words."""
    if not stripped:
        return "blank"
    if _DATE_ONLY.match(stripped):
        return "date"
    if _LEAD_IN.match(stripped) or (_FURNITURE.match(stripped) and n_words <= 15):
        return "furniture"
    sentence = _SENTENCE_END.search(stripped) is not None
    if _BULLET.match(stripped) and (not sentence or n_words < 12):
        return "list"
    if n_words <= 30 and _ENDS_WITH_DATE.search(stripped[-_DATE_TAIL:]):
        return "list"
    if n_words < 6 and not sentence:
        return "short"
    if n_words <= 30 and not sentence and _is_title_case(stripped.split()):
        return "headline"
    if n_words < 4:
        return "short"
    return None


_MASTHEAD_WORDS = 12
_NOT_NAMES = {"www", "m", "amp", "mobile", "co", "com", "org", "net", "gov", "ac", "edu"}  # host labels
_LETTERS = re.compile(r"[^a-z]+")


def source_key(source: str | None) -> str | None:
    """The outlet's name as letters, to spot it in a masthead: the longest label of a
    host before its top-level domain, or the letters of a plain name.

    >>> source_key("valleyecho.example"), source_key("www.bbc.co.uk"), source_key("Reuters")
    ('valleyecho', 'bbc', 'reuters')
    """
    if not source:
        return None
    labels = source.lower().split(".")
    candidates = [label for label in labels[:-1] if label not in _NOT_NAMES] if len(labels) > 1 else labels
    if not candidates:
        return None
    key = _LETTERS.sub("", max(candidates, key=len))
    return key if len(key) >= 3 else None


def is_masthead(line: str, key: str | None) -> bool:
    """A short line, not a sentence, that names the outlet: "Valley Echo - Local news since 1902".

    >>> is_masthead("Valley Echo - Local news since 1902", "valleyecho")
    True
    >>> is_masthead("The Valley Echo asked the mayor about the bridge.", "valleyecho")
    False
    """
    if key is None:
        return False
    stripped = fold(line).strip()
    return _is_masthead(stripped, len(words(stripped)), key)


def _is_masthead(stripped: str, n_words: int, key: str) -> bool:
    if n_words > _MASTHEAD_WORDS or _SENTENCE_END.search(stripped):
        return False
    return key in _LETTERS.sub("", stripped.lower())


_ISO_IN_TEXT = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2}))?")


def find_date(text: str, lines: int = 8) -> datetime | None:
    """A publication date written near the top of a page (ISO form), or None.

    >>> find_date(" date 2024-06-18 Putin Set To Meet With Kim")
    datetime.datetime(2024, 6, 18, 0, 0, tzinfo=datetime.timezone.utc)
    """
    head = "\n".join(text.splitlines()[:lines])
    match = _ISO_IN_TEXT.search(head)
    if match is None:
        return None
    year, month, day, hour, minute = match.groups()
    try:
        return datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), tzinfo=UTC)
    except ValueError:
        return None


def extract_text(text: str, source: str | None = None, templates: Templates | None = None) -> Extraction:
    """Main content of a plain-text page.

    Lines learned as ``source``'s template are dropped first, then the single-page
    rules run. A line dropped by a rule also drops an immediately preceding short
    title-case line (the headline of a headline-and-date list). If the rules leave
    nothing, the page's non-blank lines are kept rather than losing the article.
    """
    raw_lines = text.splitlines()
    # Each line is folded and tokenised once; every rule below reads these.
    folded = [fold(line).strip() for line in raw_lines]
    counts: list[int] = []
    fingerprints: list[str | None] = []
    for line in folded:
        tokens = folded_words(line)
        counts.append(len(tokens))
        fingerprints.append(_fingerprint(tokens))
    removed: Counter[str] = Counter()
    kept: list[int] = []
    verdicts: list[str | None] = []
    key = source_key(source)
    known = set(filter(None, fingerprints))
    template = templates.template_lines(source, known) if templates is not None and known else set()
    for i, line in enumerate(folded):
        verdict = "template" if fingerprints[i] in template else None
        verdict = verdict or _classify(line, counts[i])
        if verdict is None and key is not None and _is_masthead(line, counts[i], key):
            verdict = "masthead"
        verdicts.append(verdict)
    # Headline-and-date lists: "Headline\n\nFebruary 3, 2026" — drop the headline too.
    last_content: int | None = None
    for i, verdict in enumerate(verdicts):
        if verdict == "blank":
            continue
        if verdict in ("date", "list") and last_content is not None and verdicts[last_content] is None:
            if counts[last_content] <= 30 and not _SENTENCE_END.search(raw_lines[last_content].strip()):
                verdicts[last_content] = "headline-list"
        last_content = i
    for i, verdict in enumerate(verdicts):
        if verdict is None:
            kept.append(i)
        elif verdict != "blank":
            removed[verdict] += 1
    if not kept:
        kept = [i for i, v in enumerate(verdicts) if v != "blank"]
        removed = Counter({FALLBACK: len(kept)})
    body = "\n".join(folded[i] for i in kept)
    return Extraction(
        text=body,
        published_at=find_date(text),
        removed=dict(removed),
        line_fingerprints=tuple(fp for fp in fingerprints if fp is not None),
        template=frozenset(template),
    )


def extract_html(html: str, source: str | None = None, templates: Templates | None = None) -> Extraction:
    """Main content of an HTML page through trafilatura, then the same line rules.

    Trafilatura never fetches anything: it parses the string it is given.
    """
    import trafilatura

    main = trafilatura.extract(html, include_comments=False, include_tables=False, favor_precision=True) or ""
    metadata = trafilatura.extract_metadata(html)
    title = metadata.title if metadata is not None else None
    published = None
    if metadata is not None and metadata.date:
        try:
            published = datetime.fromisoformat(metadata.date).replace(tzinfo=UTC)
        except ValueError:
            published = None
    from_text = extract_text(main, source, templates) if main.strip() else Extraction(text="")
    return Extraction(
        text=from_text.text,
        title=title,
        published_at=published,
        removed=from_text.removed,
        line_fingerprints=from_text.line_fingerprints,
        template=from_text.template,
    )
