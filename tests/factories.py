"""Articles written for the tests."""

from __future__ import annotations


def article(**overrides) -> dict:
    """A plausible article body for POST /v1/articles; override any field."""
    body = {
        "url": "https://news.example.com/world/putin-pyongyang-visit",
        "title": "Putin arrives in Pyongyang for talks with Kim Jong Un",
        "text": (
            "Russian President Vladimir Putin arrived in Pyongyang on Tuesday for his first visit to North Korea "
            "in 24 years, where leader Kim Jong Un greeted him at the airport.\n"
            "The two leaders are expected to sign a strategic partnership agreement covering security and trade, "
            "officials in Moscow said.\n"
            "Washington and Seoul have accused Pyongyang of supplying artillery shells and ballistic missiles for "
            "Russia's war in Ukraine, a charge both governments deny."
        ),
        "source": "news.example.com",
        "published_at": "2024-06-18T22:00:00Z",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}
