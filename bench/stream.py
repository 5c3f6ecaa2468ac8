"""A realistic article stream of any length, for benchmarks.

    python -m bench.stream --articles 100000 --out /tmp/stream.jsonl --seed 1
    python -m bench.stream --articles 5000 --out - --start 2025-03-01 --days 28 | head -c 2000

Stories are made of real sentences: the bodies in ``../shared/data/*/articles.jsonl``
(read in place, never copied) are split into sentences. A story's core is a short run of
sentences from one real body mixed with sentences from others, under a headline spliced
from two real ones.
Each story is reported by several outlets:

* **write-ups**: each outlet rewrites the core (sentences dropped, a few substituted
  by unrelated ones, some reordered) and the headline (a word dropped or moved);
* **syndicated copies**: for some stories a wire text is republished near-identically
  by several outlets (a credit line added or the last sentence cut);
* every page is wrapped in its outlet's template (menu, "Trending" headlines of other
  stories, ads between paragraphs, share bar, related posts with dates, footer), as
  ``evaluation.variants.wrap`` does for the labelled sets;
* ``published_at`` is spread over ``--days``; a story's reports follow its first one
  by hours to a few days. Lines come out in published order.

Each line is an article as ``POST /v1/articles`` takes it (``url``, ``title``, ``text``,
``source``, ``published_at``) plus ``label`` (the story) and ``copy_of`` (the url of the
wire original a syndicated copy repeats, else null) for scoring; strip those two before
posting. The same seed gives the same file; memory stays bounded by the articles of the
last few days, so millions of lines stream to disk.
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import re
import sys
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from evaluation.variants import _ADS, _SECTIONS, _SHARE  # the labelled variants' page furniture, for one look

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SETS = ("giveme5w1h", "wikiref220", "seeds", "uci_titles")
POSTED_FIELDS = ("url", "title", "text", "source", "published_at")
DEFAULT_START = datetime(2025, 3, 1, tzinfo=UTC)

_SENTENCE = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"')]))\s+(?=[\"'(\[]?[A-Z0-9])")
_ADJECTIVES = (
    "valley harbor north south east west central metro capital river coastal mountain lake prairie "
    "city county state national global daily evening morning weekly union liberty summit pacific atlantic"
).split()
_NOUNS = (
    "post times herald tribune courier gazette journal ledger observer chronicle sentinel dispatch record "
    "monitor standard examiner express star press review bulletin beacon register mirror"
).split()
_CREDITS = (
    "(Reporting by staff correspondents; editing by the news desk)",
    "This story was distributed by a wire service and has not been edited by our staff.",
    "Additional reporting by our correspondents.",
)


@dataclass(frozen=True)
class Corpus:
    """Real sentences, grouped by the body they came from, and real headlines."""

    bodies: tuple[tuple[str, ...], ...]
    titles: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.bodies or not any(self.bodies):
            raise ValueError("a corpus needs at least one body with sentences")
        if not self.titles:
            raise ValueError("a corpus needs at least one headline")


def split_sentences(text: str, min_words: int = 5, max_words: int = 80) -> list[str]:
    """The sentences of a body, one line at a time; fragments and run-ons left out.

    >>> split_sentences("Talks began on Monday in the capital. Both sides met again later that day.")
    ['Talks began on Monday in the capital.', 'Both sides met again later that day.']
    """
    found = []
    for line in text.splitlines():
        for sentence in _SENTENCE.split(line.strip()):
            n = len(sentence.split())
            if min_words <= n <= max_words and sentence[-1:] in ".!?\"')":
                found.append(sentence)
    return found


def load_corpus(data: Path = DATA) -> Corpus:
    """Sentences and headlines of every labelled set under ``data`` (read in place)."""
    bodies, titles = [], []
    for name in SETS:
        path = data / name / "articles.jsonl"
        if not path.exists():
            continue
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if not line.strip():
                    continue
                row = json.loads(line)
                if row.get("title"):
                    titles.append(" ".join(row["title"].split()))
                sentences = split_sentences(row.get("text") or "")
                if len(sentences) >= 3:
                    bodies.append(tuple(sentences))
    return Corpus(tuple(bodies), tuple(titles))


# -- how outlets change a story ---------------------------------------------------


def rewrite(
    sentences: Sequence[str], pool: Sequence[str], rng: random.Random, drop: float = 0.25, substitute: float = 0.12
) -> list[str]:
    """An outlet's own write-up: the lead kept, other sentences dropped, some replaced by
    unrelated sentences from ``pool``, and a few neighbours swapped. Never empty."""
    lead, rest = list(sentences[:1]), []
    for sentence in sentences[1:]:
        roll = rng.random()
        if roll < drop:
            continue
        rest.append(rng.choice(pool) if roll < drop + substitute else sentence)
    for _ in range(len(rest) // 3):
        if len(rest) >= 2:
            i = rng.randrange(len(rest) - 1)
            rest[i], rest[i + 1] = rest[i + 1], rest[i]
    if rng.random() < 0.3 and rest:  # some outlets open with another angle
        lead, rest = [rest[0]], [*lead, *rest[1:]]
    return lead + rest


def retitle(title: str, rng: random.Random) -> str:
    """The headline as another desk writes it: a word dropped, or two words swapped."""
    words = title.split()
    if len(words) < 4:
        return title
    if rng.random() < 0.5:
        del words[rng.randrange(1, len(words))]
    else:
        i = rng.randrange(1, len(words) - 1)
        words[i], words[i + 1] = words[i + 1], words[i]
    return " ".join(words)


def syndicated_copy(sentences: Sequence[str], rng: random.Random) -> list[str]:
    """A republished wire text: identical but for a credit line added or the last sentence cut."""
    copy = list(sentences)
    if rng.random() < 0.5 and len(copy) > 8:
        copy.pop()
    else:
        copy.append(rng.choice(_CREDITS))
    return copy


def paragraphs(sentences: Sequence[str], rng: random.Random) -> list[str]:
    """Sentences grouped into paragraphs of one to three."""
    out, i = [], 0
    while i < len(sentences):
        n = rng.choice((1, 2, 2, 3))
        out.append(" ".join(sentences[i : i + n]))
        i += n
    return out


# -- outlets and their pages --------------------------------------------------------


@dataclass(frozen=True)
class Outlet:
    domain: str
    name: str
    menu: tuple[str, ...]
    ads: tuple[str, ...]
    share: str
    footer: tuple[str, ...]


def make_outlets(n: int, seed: int) -> list[Outlet]:
    """``n`` outlets with distinct domains and page templates."""
    rng = random.Random(f"outlets:{seed}")
    names = [f"{a}-{b}" for a in _ADJECTIVES for b in _NOUNS]
    rng.shuffle(names)
    outlets = []
    for i in range(n):
        base = names[i % len(names)] + ("" if i < len(names) else f"-{i // len(names)}")
        name = base.replace("-", " ").title()
        outlets.append(
            Outlet(
                domain=f"{base}.example",
                name=name,
                menu=tuple(rng.sample(_SECTIONS, k=7)),
                ads=tuple(rng.sample(_ADS, k=3)),
                share=rng.choice(_SHARE),
                footer=(
                    f"\u00a9 {rng.randint(2015, 2024)} {name}. All rights reserved.",
                    "About us | Contact | Privacy Policy | Terms of Use",
                ),
            )
        )
    return outlets


def page(
    outlet: Outlet, title: str, body: Sequence[str], when: datetime, others: Sequence[str], rng: random.Random
) -> str:
    """The page text a crawler extracts: the article inside its outlet's template."""
    trending = rng.sample(list(others), k=min(5, len(others)))
    related = rng.sample(list(others), k=min(3, len(others)))
    lines = [
        outlet.name,
        "  ".join(outlet.menu),
        "Trending",
        *[f"\u2022 {t}" for t in trending],
        "Search",
        title,
        f"By Staff Reporter {when:%B} {when.day}, {when:%Y}",
    ]
    for i, paragraph in enumerate(body):
        lines.append(paragraph)
        if i in (1, 4):
            lines.append(outlet.ads[i % len(outlet.ads)])
    lines += [outlet.share, "Related Posts"]
    for t in related:
        lines += [t, "", f"{when - timedelta(days=rng.randint(1, 9)):%B %d, %Y}", ""]
    lines += list(outlet.footer)
    return "\n".join(lines)


def _slug(title: str) -> str:
    return "-".join(re.findall(r"[a-z0-9]+", title.lower())[:8]) or "story"


# -- the stream -----------------------------------------------------------------------

MEAN_WRITEUPS = 3.0  # independent reports of a story, on average
WIRE_SHARE = 0.35  # stories with a syndicated wire text
MEAN_COPIES = 2.5  # outlets republishing a wire text, on average
MEAN_DELAY_HOURS = 10.0  # a report follows the story's first by this much, on average
MAX_DELAY = 96 * 3600.0  # ... and by at most four days


def _story(corpus: Corpus, pool: Sequence[str], rng: random.Random) -> tuple[str, list[str]]:
    """A story's headline and core: a short run of one real body among other real sentences.

    Real bodies are few (hundreds) and a stream holds thousands of stories a month, so a
    core takes only a few sentences of its body and most from elsewhere, and its
    headline splices two real headlines: two stories rarely look alike by chance.
    """
    which = rng.randrange(len(corpus.bodies))
    body = corpus.bodies[which]
    start = rng.randrange(max(1, len(body) - 3))
    core = list(body[start : start + rng.randint(2, 4)])
    for _ in range(rng.randint(6, 11)):
        core.insert(rng.randrange(1, len(core) + 1), rng.choice(pool))
    first, second = rng.choice(corpus.titles).split(), rng.choice(corpus.titles).split()
    title = " ".join(first[: max(2, len(first) // 2)] + second[len(second) // 2 :])
    return title, core


def articles(
    corpus: Corpus,
    *,
    count: int,
    seed: int = 1,
    start: datetime = DEFAULT_START,
    days: float = 28.0,
    outlets: int = 150,
    prefix: str = "",
    with_body: bool = False,
) -> Iterator[dict]:
    """``count`` articles in published order (see the module docstring).

    ``prefix`` keeps urls and labels of two streams apart (a seeded history and the
    stream measured after it). ``with_body`` adds ``body``: the article's own text
    without the page template (what a perfect extraction would keep).
    """
    if count < 0 or days <= 0 or outlets < 2:
        raise ValueError("count must be >= 0, days > 0 and outlets >= 2")
    rng = random.Random(seed)
    sites = make_outlets(outlets, seed)
    pool = [s for body in corpus.bodies for s in body]
    per_story = 1 + (MEAN_WRITEUPS - 1) + WIRE_SHARE * MEAN_COPIES
    gap = days * 86400.0 / max(1.0, count / per_story)
    recent: deque[str] = deque(maxlen=40)  # headlines of recent stories, for "Trending" lists
    pending: list[tuple[float, int, dict]] = []
    t = start.timestamp()
    emitted = story_no = seq = 0

    def report(story: int, title: str, sentences: list[str], when: float, outlet: Outlet) -> dict:
        nonlocal seq
        seq += 1
        at = datetime.fromtimestamp(when, UTC)
        body = paragraphs(sentences, rng)
        text = page(outlet, title, body, at, list(recent) or [title], rng)
        extra = {"body": "\n".join(body)} if with_body else {}
        return {
            "url": f"https://{outlet.domain}/{at:%Y/%m/%d}/{_slug(title)}-{prefix}{seq}",
            "title": title,
            "text": text,
            "source": outlet.domain,
            "published_at": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "label": f"{prefix}s{story}",
            "copy_of": None,
            **extra,
        }

    while emitted < count:
        t += rng.expovariate(1.0 / gap)
        while pending and pending[0][0] <= t and emitted < count:
            yield heapq.heappop(pending)[2]
            emitted += 1
        story_no += 1
        title, core = _story(corpus, pool, rng)
        n_writeups = 1 + min(int(rng.expovariate(1.0 / (MEAN_WRITEUPS - 1))), 11)
        reporters = rng.sample(sites, k=min(len(sites), n_writeups + 9))
        delays = sorted(
            [0.0] + [min(rng.expovariate(1.0 / (MEAN_DELAY_HOURS * 3600)), MAX_DELAY) for _ in range(n_writeups - 1)]
        )
        for i in range(n_writeups):
            sentences = core if i == 0 else rewrite(core, pool, rng)
            headline = title if i == 0 else retitle(title, rng)
            item = report(story_no, headline, sentences, t + delays[i], reporters[i])
            heapq.heappush(pending, (t + delays[i], seq, item))
        if rng.random() < WIRE_SHARE:
            wire = rewrite(core, pool, rng)
            wire_title = retitle(title, rng)
            first = t + min(rng.expovariate(1.0 / (MEAN_DELAY_HOURS * 3600)), MAX_DELAY)
            original = report(story_no, wire_title, wire, first, reporters[n_writeups])
            heapq.heappush(pending, (first, seq, original))
            n_copies = 1 + min(int(rng.expovariate(1.0 / (MEAN_COPIES - 1))), 7)
            for outlet in reporters[n_writeups + 1 : n_writeups + 1 + n_copies]:
                when = first + 60 + rng.expovariate(1.0 / (3 * 3600))
                copy = report(story_no, wire_title, syndicated_copy(wire, rng), when, outlet)
                copy["copy_of"] = original["url"]
                heapq.heappush(pending, (when, seq, copy))
        recent.append(title)
    # (the loop leaves as soon as ``count`` articles are out)


def posted(article: dict) -> dict:
    """The article as the service takes it: scoring fields left out."""
    return {k: article[k] for k in POSTED_FIELDS if article.get(k) is not None}


def read(path: Path) -> Iterator[dict]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, required=True, help="how many articles to write")
    parser.add_argument("--out", required=True, help="JSONL file to write (- for standard output)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", default=DEFAULT_START.date().isoformat(), help="first published day (ISO date)")
    parser.add_argument("--days", type=float, default=28.0, help="days the stream's published_at spreads over")
    parser.add_argument("--outlets", type=int, default=150)
    args = parser.parse_args(argv)
    if not DATA.is_dir():
        print(f"skipped: no evaluation data at {DATA} (stories are built from its article bodies)", file=sys.stderr)
        raise SystemExit(0)
    start = datetime.fromisoformat(args.start).replace(tzinfo=UTC)
    corpus = load_corpus()
    began = time.perf_counter()
    out = sys.stdout if args.out == "-" else open(args.out, "w", encoding="utf-8")
    labels = set()
    n = copies = 0
    try:
        for article in articles(
            corpus, count=args.articles, seed=args.seed, start=start, days=args.days, outlets=args.outlets
        ):
            out.write(json.dumps(article, ensure_ascii=False) + "\n")
            n += 1
            copies += article["copy_of"] is not None
            if len(labels) < 2_000_000:
                labels.add(article["label"])
    finally:
        if out is not sys.stdout:
            out.close()
    seconds = time.perf_counter() - began
    print(
        f"wrote {n} articles ({len(labels)} stories, {copies} syndicated copies) from {len(corpus.bodies)} real "
        f"bodies to {args.out} in {seconds:.1f} s ({n / seconds:.0f} articles/s)",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
