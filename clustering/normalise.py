"""Normalise text before fingerprinting and vectorising.

NFKC folds compatibility characters (ligatures, full-width forms), curly quotes and
dashes are folded to ASCII so that two outlets typing the same sentence produce the
same tokens, and everything is case-folded. For story similarity, content words are
also reduced to their Snowball stems (``stems``), so "indicts" meets "indicted" and
"launches" meets "launch"; fingerprints keep the words as written.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Iterator

import Stemmer

_FOLD = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u201f": '"',
        "\u2033": '"',
        "\u00ab": '"',
        "\u00bb": '"',
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2015": "-",
        "\u2212": "-",
        "\u00a0": " ",
        "\u200b": "",
        "\ufeff": "",
    }
)
# A word is a run of letters/digits, optionally joined by an inner apostrophe
# ("kim's", "don't"); the possessive "'s" is then cut so "kim's" and "kim" match.
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")

# The English stop words of the Glasgow Information Retrieval Group, as scikit-learn
# ships them (``sklearn.feature_extraction.text.ENGLISH_STOP_WORDS``; a test holds the
# two equal). They are written out so that serving, which needs nothing else from
# scikit-learn, does not import it: that import costs every served process ~30 MiB.
_GLASGOW_STOP_WORDS = frozenset(
    (
        "a about above across after afterwards again against all almost alone along already also "
        "although always am among amongst amoungst amount an and another any anyhow anyone "
        "anything anyway anywhere are around as at back be became because become becomes becoming "
        "been before beforehand behind being below beside besides between beyond bill both bottom "
        "but by call can cannot cant co con could couldnt cry de describe detail do done down due "
        "during each eg eight either eleven else elsewhere empty enough etc even ever every "
        "everyone everything everywhere except few fifteen fifty fill find fire first five for "
        "former formerly forty found four from front full further get give go had has hasnt have "
        "he hence her here hereafter hereby herein hereupon hers herself him himself his how "
        "however hundred i ie if in inc indeed interest into is it its itself keep last latter "
        "latterly least less ltd made many may me meanwhile might mill mine more moreover most "
        "mostly move much must my myself name namely neither never nevertheless next nine no "
        "nobody none noone nor not nothing now nowhere of off often on once one only onto or "
        "other others otherwise our ours ourselves out over own part per perhaps please put "
        "rather re same see seem seemed seeming seems serious several she should show side since "
        "sincere six sixty so some somehow someone something sometime sometimes somewhere still "
        "such system take ten than that the their them themselves then thence there thereafter "
        "thereby therefore therein thereupon these they thick thin third this those though three "
        "through throughout thru thus to together too top toward towards twelve twenty two un "
        "under until up upon us very via was we well were what whatever when whence whenever "
        "where whereafter whereas whereby wherein whereupon wherever whether which while whither "
        "who whoever whole whom whose why will with within without would yet you your yours "
        "yourself yourselves"
    ).split()
)
# That list holds words that carry news ("fire", "bill", "system"): they
# are given back, since a story about a fire must be able to say so.
_NEWS_WORDS = frozenset(
    "fire bill system interest mill computer find found move show serious front side top back "
    "empty full part detail fill call thick thin bottom amount describe cry un co de".split()
)
STOP_WORDS: frozenset[str] = (_GLASGOW_STOP_WORDS - _NEWS_WORDS) | {
    "said",
    "says",
    "say",
    "told",
    "according",
    "also",
    "would",
    "could",
    "new",
    "mr",
    "ms",
    "mrs",
    "dr",
    "st",
    "like",
    "just",
    "year",
    "years",
    "time",
    "week",
    "day",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "today",
    "yesterday",
    "people",
    "including",
    "s",
    "t",
    "don't",
    "it's",
}


def fold(text: str) -> str:
    """NFKC-normalise and fold quotes and dashes, keeping case.

    >>> fold("\u201cKim\u2019s visit\u201d \u2014 ok")
    '"Kim\\'s visit" - ok'
    """
    return unicodedata.normalize("NFKC", text).translate(_FOLD)


def words(text: str) -> list[str]:
    """Case-folded word tokens of ``text``, possessives cut.

    >>> words("Putin\u2019s visit to Pyongyang, June 18-19")
    ['putin', 'visit', 'to', 'pyongyang', 'june', '18', '19']
    """
    return folded_words(fold(text))


def folded_words(folded: str) -> list[str]:
    """``words`` of a text that is already ``fold``-ed (folding twice changes nothing,
    so a caller holding the folded text skips the second pass)."""
    return [w[:-2] if w.endswith("'s") else w for w in _WORD.findall(folded.casefold())]


def content_words(text: str) -> list[str]:
    """Word tokens without stop words and bare one-character tokens.

    >>> content_words("The President said he will visit North Korea")
    ['president', 'visit', 'north', 'korea']
    """
    return [w for w in words(text) if w not in STOP_WORDS and len(w) > 1]


_local = threading.local()  # a Stemmer object must not be shared between threads
# Stems already made: a dict lookup is about three times cheaper than the stemmer's own
# cache, and summaries stem every word of a story each time it changes. Emptied when
# full (a news vocabulary's working set is a few tens of thousands of words).
_STEMS: dict[str, str] = {}
_STEMS_KEPT = 200_000


def stems(tokens: list[str]) -> list[str]:
    """The Snowball (Porter 2) English stem of each token, in order.

    >>> stems(["indicts", "indicted", "launches", "glasses", "korea"])
    ['indict', 'indict', 'launch', 'glass', 'korea']
    """
    known = _STEMS
    missing = [t for t in tokens if t not in known]
    if missing:
        made = dict(zip(missing, _stemmer().stemWords(missing)))
        if len(known) + len(made) > _STEMS_KEPT:
            known.clear()
        known.update(made)
    out = [known.get(t) for t in tokens]
    if None in out:  # another thread emptied the cache meanwhile
        return _stemmer().stemWords(tokens)
    return out


def _stemmer() -> Stemmer.Stemmer:
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:
        stemmer = _local.stemmer = Stemmer.Stemmer("english")
    return stemmer


# Capitalised words that are not names: function words that open a sentence or a
# headline, titles, and calendar words. (Not the full stop list: it holds "un", "co"
# and other parts of real names.)
_NOT_NAMES = frozenset(
    "a an the and or but if of in on at to for by with from as into after before over under "
    "he she it its they we i you his her their our this that these those there here when while "
    "what who why how mr ms mrs dr sir said says also monday tuesday wednesday thursday friday "
    "saturday sunday january february march april may june july august september october "
    "november december".split()
)
_NAME = re.compile(r"\b[A-Z][\w'\-]*(?:\s+(?:of|de|la|al|bin|von|van)?\s*[A-Z][\w'\-]*)*")
_SENTENCE_START = re.compile(r"(?:^|[.!?:;\"]\s+|\n\s*)$")


def names(text: str) -> list[str]:
    """Name-like terms: capitalised words not opening a sentence, case-folded.

    Multi-word names are kept whole ("north korea") and each capitalised word is also
    returned alone, so "Kim Jong Un" still meets "Kim".

    >>> names("Russian President Vladimir Putin met Kim Jong Un. He left.")
    ['russian', 'president', 'vladimir', 'putin', 'russian president vladimir putin', 'kim', 'jong', 'un', 'kim jong un']
    """
    found: list[str] = []
    for phrase, starts_sentence in _capitalised_runs(fold(text)):
        parts = [w for w in words(phrase) if w not in _NOT_NAMES]
        if not parts or (starts_sentence and len(parts) == 1):
            continue
        found.extend(p for p in parts if len(p) > 1)
        if len(parts) > 1:
            found.append(" ".join(parts))
    return found


# Words that stand before a name without being part of it ("President Vladimir Putin").
_OFFICES = frozenset(
    "president vice prime minister chancellor secretary senator sen rep governor gov mayor king "
    "queen prince princess pope general gen chief leader chairman chairwoman judge justice "
    "spokesman spokeswoman ambassador lieutenant lt colonel col captain capt sergeant sgt".split()
)


def name_phrases(text: str) -> list[str]:
    """Names as written, one entry an occurrence: each run of capitalised words, less
    the words at its ends that are not names (articles, calendar words) and an office
    with what comes before it. A run of one word opening a sentence is left out, as
    ``names`` leaves it.

    >>> name_phrases("Russian President Vladimir Putin met Kim Jong Un in North Korea's capital. Talks went on.")
    ['Vladimir Putin', 'Kim Jong Un', 'North Korea']
    >>> name_phrases("The Democratic People's Republic of Korea said on Monday")
    ["Democratic People's Republic of Korea"]
    """
    found: list[str] = []
    for phrase, starts_sentence in _capitalised_runs(fold(text)):
        parts = _WORD.findall(phrase)
        if parts and parts[-1].endswith(("'s", "'S")):
            parts[-1] = parts[-1][:-2]
        offices = [i for i, w in enumerate(parts[:-1]) if w.casefold() in _OFFICES]
        if offices:  # "Russian President Vladimir Putin": the name follows the office
            parts = parts[offices[-1] + 1 :]
        while parts and parts[0].casefold() in _NOT_NAMES:
            parts.pop(0)
        while parts and parts[-1].casefold() in _NOT_NAMES:
            parts.pop()
        if parts and not (starts_sentence and len(parts) == 1) and len(parts[-1]) > 1:
            found.append(" ".join(parts))
    return found


def _capitalised_runs(folded: str) -> Iterator[tuple[str, bool]]:
    """Each run of capitalised words in a ``fold``-ed text, and whether it opens a sentence."""
    for match in _NAME.finditer(folded):
        before = folded[max(0, match.start() - 4) : match.start()]
        yield match.group(0), match.start() == 0 or _SENTENCE_START.search(before) is not None
