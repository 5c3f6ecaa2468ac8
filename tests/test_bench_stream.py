"""bench.stream: the benchmark stream generator's pure parts, on sentences written here."""

from __future__ import annotations

import random

import pytest

from bench import stream
from clustering.fingerprint import jaccard, signature
from clustering.normalise import words

SENTENCES = [
    "The Alder River rose more than two metres overnight in Port Calder, officials said on Tuesday.",
    "Engineers from the Calder Transport Authority inspected the bridge supports at dawn.",
    "Debris was found packed against two of the piers of the Riverside Bridge.",
    "Mayor Helen Okafor said the closure would last at least until Thursday morning.",
    "Residents of the low-lying Millbrook district were asked to move their cars to higher ground.",
    "The regional weather office expects the rain to ease by the end of the week.",
    "Schools in the valley stayed open, but two bus routes were diverted around the bridge.",
    "A temporary footbridge will be built if the inspection finds lasting damage to the piers.",
    "The Vellmont Symphony Orchestra appointed Ines Marlow as its principal conductor on Friday.",
    "Marlow studied violin at the Hartfield Conservatory and will lead twelve concerts next season.",
    "She replaces Anton Ferreira, who is retiring after eighteen years with the ensemble.",
    "The board chair praised her work with youth orchestras across the region.",
]
CORPUS = stream.Corpus(
    bodies=(tuple(SENTENCES[:8]), tuple(SENTENCES[8:])),
    titles=("Bridge closed as river rises in Port Calder", "Orchestra names Ines Marlow principal conductor"),
)


def _stream(seed: int, count: int = 60) -> list[dict]:
    return list(stream.articles(CORPUS, count=count, seed=seed, outlets=12))


def test_the_same_seed_gives_the_same_stream():
    assert _stream(3) == _stream(3)


def test_another_seed_gives_another_stream():
    assert _stream(3) != _stream(4)


def test_the_stream_has_the_requested_length_in_published_order_with_unique_urls():
    articles = _stream(5, count=80)
    assert len(articles) == 80
    times = [a["published_at"] for a in articles]
    assert times == sorted(times)
    assert len({a["url"] for a in articles}) == 80


def test_every_article_has_the_posted_fields_and_a_label():
    for article in _stream(6):
        assert set(stream.POSTED_FIELDS) <= article.keys()
        assert article["label"].startswith("s")
        assert article["text"] and article["title"] and article["source"].endswith(".example")


def test_posted_leaves_the_scoring_fields_out():
    article = _stream(6)[0]
    assert set(stream.posted(article)) == set(stream.POSTED_FIELDS)


def test_a_rewrite_differs_from_the_original_but_keeps_its_lead_or_most_sentences():
    rng = random.Random(1)
    rewrites = [stream.rewrite(SENTENCES[:8], SENTENCES, rng) for _ in range(20)]
    assert all(r != SENTENCES[:8] for r in rewrites)
    kept = [len(set(r) & set(SENTENCES[:8])) / len(r) for r in rewrites]
    assert sum(kept) / len(kept) > 0.6


def test_a_syndicated_copy_is_a_near_duplicate_of_its_wire_text():
    rng = random.Random(2)
    wire = SENTENCES[:8]
    for _ in range(10):
        copy = stream.syndicated_copy(wire, rng)
        assert copy != wire
        assert jaccard(signature(words(" ".join(copy))), signature(words(" ".join(wire)))) >= 0.8


def test_copies_in_the_stream_repeat_an_earlier_article_of_the_same_story():
    articles = _stream(7, count=200)
    by_url = {}
    copies = 0
    for article in articles:
        if article["copy_of"] is not None:
            original = by_url[article["copy_of"]]  # published before its copy
            assert original["label"] == article["label"]
            copies += 1
        by_url[article["url"]] = article
    assert copies > 0


def test_a_retitled_headline_differs_in_one_word_at_most_two_positions():
    rng = random.Random(3)
    title = "Bridge closed as river rises in Port Calder"
    for _ in range(10):
        new = stream.retitle(title, rng)
        assert new != title and len(set(new.split()) ^ set(title.split())) <= 1


def test_sentences_are_split_and_fragments_left_out():
    text = "Talks began on Monday in the capital. Both sides met again later that day.\nMenu\nShort one."
    assert stream.split_sentences(text) == [
        "Talks began on Monday in the capital.",
        "Both sides met again later that day.",
    ]


def test_pages_carry_the_outlet_template_around_the_body():
    outlet = stream.make_outlets(3, seed=1)[0]
    text = stream.page(
        outlet,
        "A headline",
        ["Paragraph one.", "Paragraph two."],
        stream.DEFAULT_START,
        ["Other story"],
        random.Random(1),
    )
    lines = text.splitlines()
    assert lines[0] == outlet.name and "Paragraph one." in lines and outlet.footer[-1] == lines[-1]


def test_an_empty_corpus_is_refused():
    with pytest.raises(ValueError):
        stream.Corpus(bodies=(), titles=("x",))
