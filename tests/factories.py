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


def ferry_article(**overrides) -> dict:
    """An unrelated event: a storm cancels a night ferry."""
    return article(
        url="https://harbour.example.net/ferry",
        source="harbour.example.net",
        title="Night ferry to Skye Harbour cancelled as storm nears the coast",
        text=(
            "The operator of the night ferry between Port Elwin and Skye Harbour cancelled Friday's crossings as "
            "a storm moved towards the coast, with gusts of up to 110 kilometres an hour forecast.\n"
            "Passengers holding tickets can travel on Saturday's morning sailing or ask for a refund, the company "
            "said, adding that freight bookings would be honoured first once the weather cleared."
        ),
        **overrides,
    )
