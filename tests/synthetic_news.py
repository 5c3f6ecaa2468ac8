"""News written by code, for the crash and concurrency tests: as many distinct stories as
asked for, each with wire copies and independent write-ups, some on pages with a site's
menus and footer. Every name is made up from syllables, so stories do not share names.

>>> stories = make_stories(3, seed=1)
>>> len({s.slots["person"] for s in stories})
3
>>> report(stories[0], "harbourpost.example")["url"]
'https://harbourpost.example/news/story-000'
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

SYLLABLES = (
    "bra ken vor lin dal mar tesh ol quin rav sel thu wen zor ash ell fen gar hol ist jor kal lum nor pel ros "
    "sten tav ulm vesk brin cor dov eth fal grim hest ilk jun kess lorn mov nesh orv prax rell sorn tully"
).split()
GIVEN = (
    "Ada Bram Cora Dario Edda Femi Greta Hugo Ines Jonas Kaia Lars Mira Nils Oona Pavel Rhea Soren Tess Umar "
    "Vera Wilf Yara Zeno Alba Brio Cato Dina Elio Faye"
).split()
WEEKDAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()

# Each kind of event: a headline and sentences for the wire report, and different
# sentences, with the same facts, for an independent write-up of the same event.
KINDS = {
    "flood": (
        "{river} bursts its banks in {place}, {number} homes evacuated",
        [
            "The {river} burst its banks in {place} on {weekday} after three days of rain, and {number} homes were "
            "evacuated overnight.",
            "Mayor {person} said emergency shelters had opened at the {place} sports hall and schools would stay "
            "closed until the water fell.",
            "The {org} warned that the river would peak again on {weekday2} as more rain moved in from the hills.",
            "Farmers downstream in {place2} moved livestock to higher ground while volunteers filled sandbags.",
        ],
        "Residents of {place} leave homes as the {river} floods",
        [
            "Water from the {river} poured into the streets of {place} on {weekday}, forcing families from "
            "{number} houses.",
            "{person}, the town's mayor, told reporters the sports hall shelter was already full by midnight.",
            "Forecasters at the {org} said a second crest was likely on {weekday2}.",
        ],
    ),
    "strike": (
        "{org} workers walk out in {place} over pay",
        [
            "Workers at the {org} plant in {place} walked out on {weekday} in a dispute over pay, halting "
            "production of {thing}.",
            "Union organiser {person} said {number} members had voted for the strike after talks collapsed.",
            "The company said it had offered a four percent rise and called the walkout premature.",
            "Suppliers in {place2} said deliveries would be delayed for at least a week.",
        ],
        "Pay strike shuts {org} factory at {place}",
        [
            "Production of {thing} stopped at the {org} factory in {place} on {weekday} as {number} staff went on "
            "strike.",
            "{person} of the workers' union said the four percent offer fell short of rising prices.",
            "Managers said they hoped to resume talks before {weekday2}.",
        ],
    ),
    "election": (
        "{person} wins {place} mayoral election",
        [
            "{person} won the mayoral election in {place} on {weekday} with {number} votes, the election office said.",
            "The {org} candidate promised new bus routes and a freeze on parking fees.",
            "Turnout was the highest in twenty years, officials said, with long queues at polling stations in "
            "{place2}.",
            "The outgoing mayor congratulated {person} and said the handover would take place on {weekday2}.",
        ],
        "{place} elects {person} as mayor",
        [
            "Voters in {place} chose {person} of the {org} as their new mayor on {weekday}.",
            "With {number} votes, {person} took a clear lead on a platform of buses and parking.",
            "Queues formed at polling stations in {place2}, where turnout was unusually high.",
        ],
    ),
    "rescue": (
        "Climbers rescued from {mountain} after night on ledge",
        [
            "Two climbers were rescued from {mountain} above {place} on {weekday} after spending a night on a "
            "narrow ledge.",
            "Mountain rescue leader {person} said a helicopter from {place2} lifted them off at first light.",
            "The pair, both experienced, had been caught by fog on the descent, the {org} said.",
            "Doctors treated them for cold exposure and released them the same day.",
        ],
        "Helicopter lifts stranded pair off {mountain}",
        [
            "A helicopter crew plucked two climbers from a ledge on {mountain} on {weekday} morning after fog "
            "trapped them overnight.",
            "{person}, who led the rescue, said the climbers had done the right thing by staying put.",
            "The {org} urged walkers near {place} to check the forecast before setting out.",
        ],
    ),
    "museum": (
        "{org} museum in {place} returns {number} artefacts",
        [
            "The {org} museum in {place} returned {number} artefacts to {place2} on {weekday}, ending a dispute "
            "that lasted a decade.",
            "Director {person} said the collection, mostly {thing}, had been bought from dealers in the 1920s.",
            "A ceremony in {place2} marked the handover, attended by students and elders.",
            "The museum will show replicas and a film about the return from {weekday2}.",
        ],
        "{place2} welcomes back {number} artefacts from {place}",
        [
            "Crowds gathered in {place2} on {weekday} as {number} artefacts came home from the {org} museum.",
            "{person}, the museum's director, called the return overdue.",
            "Most of the {thing} had left {place2} a century ago through private dealers.",
        ],
    ),
    "bridge": (
        "{river} bridge in {place} closed after crack found",
        [
            "The {river} bridge in {place} was closed to traffic on {weekday} after inspectors found a crack in "
            "a main girder.",
            "Chief engineer {person} of the {org} said repairs could take {number} days.",
            "Buses were diverted through {place2}, adding twenty minutes to journeys.",
            "Pedestrians may still cross on the footway while engineers monitor the span.",
        ],
        "Crack shuts {place} crossing over the {river}",
        [
            "Drivers in {place} faced long detours on {weekday} after the bridge over the {river} was shut.",
            "{person}, chief engineer at the {org}, said the cracked girder needed {number} days of work.",
            "Commuters from {place2} said their buses were running late.",
        ],
    ),
}
THINGS = ["tractor engines", "ceramic bowls", "bicycle frames", "bronze masks", "wind turbine blades", "textiles"]

# Outlets, some printing their site's menus, trending list and footer around every article.
FURNITURE = {
    "harbourpost.example": (
        ["Home | News | Sport | Weather | Puzzles", "Trending now", "- Council backs new ferry timetable"],
        ["Subscribe to the Harbour Post newsletter", "(c) Harbour Post Ltd. All rights reserved."],
    ),
    "valleyecho.example": (
        ["Valley Echo - Local news since 1902", "News  Business  Opinion  Obituaries"],
        ["Share this article: Facebook | X | Email", "Valley Echo, 12 Mill Street. Contact the newsroom."],
    ),
    "northwire.example": ([], []),
    "citybeat.example": (["Menu", "Latest | Most read | Video"], ["Advertisement", "Back to top"]),
    "plainsreporter.example": ([], []),
}
OUTLETS = list(FURNITURE)


@dataclass(frozen=True)
class Story:
    key: str
    kind: str
    slots: dict
    published_at: datetime


def _fresh(rng: random.Random, used: set[str], parts: int) -> str:
    while True:
        word = "".join(rng.choice(SYLLABLES) for _ in range(parts)).capitalize()
        if word not in used:
            used.add(word)
            return word


def make_stories(
    count: int,
    *,
    seed: int,
    start: datetime = datetime(1995, 1, 1, 9, tzinfo=UTC),
    spacing: timedelta = timedelta(days=100),
) -> list[Story]:
    """``count`` events with made-up people and places, ``spacing`` apart from ``start``."""
    rng = random.Random(seed)
    used: set[str] = set()
    kinds = list(KINDS)
    stories = []
    for i in range(count):
        slots = {
            "person": f"{rng.choice(GIVEN)} {_fresh(rng, used, 3)}",
            "place": _fresh(rng, used, 2) + rng.choice(["by", "ford", "holm", "wick", "stad"]),
            "place2": _fresh(rng, used, 2) + rng.choice(["ton", "vale", "mouth", "berg"]),
            "river": "River " + _fresh(rng, used, 2),
            "mountain": "Mount " + _fresh(rng, used, 2),
            "org": _fresh(rng, used, 2) + rng.choice([" Group", " Authority", " Party", " Trust", " Works"]),
            "number": str(rng.randint(12, 4800)),
            "weekday": rng.choice(WEEKDAYS),
            "weekday2": rng.choice(WEEKDAYS),
            "thing": rng.choice(THINGS),
        }
        stories.append(Story(f"story-{i:03d}", kinds[i % len(kinds)], slots, start + i * spacing))
    return stories


def report(
    story: Story, outlet: str, *, rewrite: bool = False, hours_later: float = 0.0, page: bool = True, copy: int = 0
) -> dict:
    """The article ``outlet`` publishes about ``story``: the wire report (identical text at
    every outlet) or its own write-up; on ``page`` with the outlet's furniture around it."""
    title, sentences, rewrite_title, rewrite_sentences = KINDS[story.kind]
    if rewrite:
        title, sentences = rewrite_title, rewrite_sentences
    body = "\n".join(s.format(**story.slots) for s in sentences)
    if page:
        header, footer = FURNITURE[outlet]
        body = "\n".join([*header, body, *footer])
    path = f"news/{story.key}" + ("-analysis" if rewrite else "") + (f"-{copy}" if copy else "")
    return {
        "url": f"https://{outlet}/{path}",
        "title": title.format(**story.slots),
        "text": body,
        "source": outlet,
        "published_at": (story.published_at + timedelta(hours=hours_later)).isoformat().replace("+00:00", "Z"),
        "language": "en",
    }
