"""Harder versions of a labelled stream, for ``stories evaluate``.

Each transform takes labelled rows and returns new rows (plus, for jitter, the order
in which they arrive); labels are only used to build the variant, never shown to the
service.

* ``wrap``: every article wrapped in a page template of its source, as a crawler
  extracts it: a menu, a "Trending" list made of *other* stories' headlines, a
  related-posts list of headline-and-date pairs, ads between paragraphs, a footer.
* ``compress``: every story moved into one window of ``days``, so time alone no
  longer separates stories.
* ``jitter``: arrival order disturbed by up to ``hours`` (late articles), with
  ``published_at`` unchanged.
* ``shuffle``: random order and no timestamps at all.

``events`` changes the labels instead of the articles: a labelled story is cut into
events wherever it goes quiet for more than ``QUIET_DAYS``, the level at which a story
cluster is one event.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta

_SECTIONS = ["Home", "News", "World", "Politics", "Business", "Tech", "Science", "Sport", "Opinion", "Video"]
_ADS = [
    "Advertisement",
    "ADVERTISEMENT - CONTINUE READING BELOW",
    "Sponsored: Compare the best savings rates today",
    "Subscribe to our newsletter",
    "Download our app",
    "Sponsored content",
]
QUIET_DAYS = 14
_SHARE = ["Share this article", "Share. Facebook Twitter WhatsApp LinkedIn Email", "Follow us on social media"]


def _published(row: dict) -> datetime | None:
    value = row.get("published_at")
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _site_name(source: str) -> str:
    return source.removeprefix("www.").split(".")[0].upper().replace("-", " ") if source else "THE DAILY"


def wrap(rows: list[dict], seed: int = 7) -> list[dict]:
    """Wrap each article's text in its source's page template (one template a source)."""
    rng = random.Random(seed)
    titles_by_label: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        if row.get("title"):
            titles_by_label[row["label"]].append(row["title"])
    templates: dict[str, dict] = {}
    wrapped = []
    for row in rows:
        source = row.get("source") or "unknown"
        if source not in templates:
            site_rng = random.Random(f"{seed}:{source}")
            templates[source] = {
                "name": _site_name(source),
                "menu": site_rng.sample(_SECTIONS, k=7),
                "ads": site_rng.sample(_ADS, k=3),
                "share": site_rng.choice(_SHARE),
                "footer": [
                    f"\u00a9 {site_rng.randint(2015, 2024)} {_site_name(source)}. All rights reserved.",
                    "About us | Contact | Privacy Policy | Terms of Use",
                ],
            }
        site = templates[source]
        other = [t for label, ts in titles_by_label.items() if label != row["label"] for t in ts]
        trending = rng.sample(other, k=min(6, len(other)))
        related = rng.sample(other, k=min(4, len(other)))
        when = _published(row) or datetime(2020, 1, 1)
        paragraphs = [p for p in (row.get("text") or row.get("title") or "").split("\n") if p.strip()]
        body: list[str] = []
        for i, paragraph in enumerate(paragraphs):
            body.append(paragraph)
            if i in (1, 4):
                body.append(site["ads"][i % len(site["ads"])])
        lines = [
            site["name"],
            "  ".join(site["menu"]),
            "Trending",
            *[f"\u2022 {t}" for t in trending],
            "Search",
            *([row["title"]] if row.get("title") else []),
            f"By Staff Reporter {when:%B} {when.day}, {when:%Y}",
            *body,
            site["share"],
            "Related Posts",
            *[line for t in related for line in (t, "", f"{(when - timedelta(days=rng.randint(0, 9))):%B %d, %Y}", "")],
            *site["footer"],
        ]
        wrapped.append({**row, "text": "\n".join(lines)})
    return wrapped


def compress(rows: list[dict], days: float, seed: int = 7) -> list[dict]:
    """Move every story into one window of ``days``: each story starts at a random
    point of the window and its own span is scaled to fit what is left."""
    rng = random.Random(seed)
    by_label: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_label[row["label"]].append(row)
    base = datetime(2021, 3, 1)
    window = timedelta(days=days)
    out = []
    for label in sorted(by_label):
        story = by_label[label]
        times = [_published(r) for r in story if _published(r)]
        first = min(times).replace(tzinfo=None) if times else base
        span = (max(times).replace(tzinfo=None) - first) if times else timedelta(0)
        start = base + window * rng.random() * 0.5
        room = base + window - start
        scale = min(1.0, room / span) if span else 1.0
        for row in story:
            at = _published(row)
            offset = (at.replace(tzinfo=None) - first) * scale if at else timedelta(0)
            out.append({**row, "published_at": (start + offset).isoformat()})
    return out


def jitter_order(rows: list[dict], hours: float, seed: int = 7) -> list[dict]:
    """Rows in arrival order: published order disturbed by up to ``hours`` either way."""
    rng = random.Random(seed)
    keyed = []
    for row in rows:
        at = _published(row)
        arrival = at + timedelta(hours=rng.uniform(-hours, hours)) if at else None
        keyed.append((arrival is None, arrival.isoformat() if arrival else "", row))
    keyed.sort(key=lambda k: (k[0], k[1]))
    return [row for *_, row in keyed]


def shuffle(rows: list[dict], seed: int = 7) -> list[dict]:
    """Random order, timestamps removed (they leak labels in some sets)."""
    rng = random.Random(seed)
    out = [{**row, "published_at": None} for row in rows]
    rng.shuffle(out)
    return out


def events(rows: list[dict], quiet_days: float = QUIET_DAYS) -> list[dict]:
    """Rows relabelled at event level: a label's articles, in published order, start a
    new event (``"<label>/<n>"``, counted from 0) after every gap of more than
    ``quiet_days`` since the label's previous article. Undated articles stay in their
    label's first event. Run it before ``compress`` or ``jitter_order``, which move
    timestamps or order, so events are cut on the dates as published.

    >>> rows = [{"label": "a", "published_at": d} for d in ("2020-01-01", "2020-01-10", "2020-02-01")]
    >>> [r["label"] for r in events(rows)]
    ['a/0', 'a/0', 'a/1']
    """
    by_label: dict[str, list[tuple[datetime, int]]] = defaultdict(list)
    for i, row in enumerate(rows):
        at = _published(row)
        if at is not None:
            at = at if at.tzinfo else at.replace(tzinfo=UTC)
            by_label[row["label"]].append((at, i))
    event_of: dict[int, int] = {}
    gap = timedelta(days=quiet_days)
    for dated in by_label.values():
        dated.sort()
        event, previous = 0, dated[0][0]
        for at, i in dated:
            if at - previous > gap:
                event += 1
            event_of[i], previous = event, at
    return [{**row, "label": f"{row['label']}/{event_of.get(i, 0)}"} for i, row in enumerate(rows)]
