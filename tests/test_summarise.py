"""clustering.summarise: representative headline, lead, keywords, outlets, counts."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from clustering.normalise import STOP_WORDS
from clustering.summarise import LEAD_MAX_CHARS, Member, keywords, lead, summarise

T0 = datetime(2026, 2, 3, 8, 0, tzinfo=UTC)

GAZETTE_TEXT = (
    "The Riverside Bridge in Port Calder was closed to traffic on Tuesday after the Alder River rose more than "
    "two metres overnight, city officials said. Engineers from the Calder Transport Authority inspected the "
    "bridge supports at dawn and found debris packed against two of the piers. Mayor Helen Okafor told "
    "reporters that the closure would last at least until Thursday."
)
COURIER_TEXT = (
    "Rising water on the Alder River forced authorities to shut the Riverside Bridge in Port Calder early "
    "Tuesday. The river climbed by over two metres during the night, and inspectors discovered logs jammed "
    "against the piers. Mayor Helen Okafor said the crossing would probably stay closed until Thursday."
)
RADIO_TEXT = (
    "Port Calder's Riverside Bridge is closed after the Alder River rose more than two metres on Monday night. "
    "Families in Millbrook were told to move cars to higher ground and keep away from the embankment."
)


def ones(terms: list[str]) -> np.ndarray:
    return np.ones(len(terms))


def member(article_id, title, text=GAZETTE_TEXT, source="gazette.example", at=T0, duplicate_of=None) -> Member:
    return Member(article_id, title, text, source, at, duplicate_of)


# -- lead ---------------------------------------------------------------------


def test_lead_is_the_first_two_sentences():
    assert lead("The bridge closed. The river rose. Crews worked overnight.") == "The bridge closed. The river rose."


def test_lead_takes_the_requested_number_of_sentences():
    assert lead("The bridge closed. The river rose. Crews worked overnight.", sentences=1) == "The bridge closed."


def test_lead_splits_after_question_and_exclamation_marks():
    assert lead("Will it reopen? Nobody knows! Crews wait.") == "Will it reopen? Nobody knows!"


def test_lead_collapses_line_breaks_and_runs_of_spaces():
    assert lead("  The   bridge\nclosed.\n\nThe river  rose.\nCrews worked.") == "The bridge closed. The river rose."


def test_lead_of_a_text_shorter_than_the_limit_is_the_whole_text():
    assert lead("The bridge closed on Tuesday") == "The bridge closed on Tuesday"


def test_lead_is_cut_at_a_word_boundary_with_an_ellipsis():
    text = "The Riverside Bridge in Port Calder was closed to traffic on Tuesday after the river rose."
    assert lead(text, max_chars=30) == "The Riverside Bridge in Port\u2026"


def test_lead_never_exceeds_max_chars():
    out = lead(GAZETTE_TEXT + " " + COURIER_TEXT, sentences=5, max_chars=LEAD_MAX_CHARS)
    assert len(out) <= LEAD_MAX_CHARS
    assert out.endswith("\u2026")


def test_lead_cut_drops_a_trailing_comma_before_the_ellipsis():
    text = "Engineers, inspectors, residents, and officials gathered on the bank."
    assert lead(text, max_chars=23) == "Engineers, inspectors\u2026"


def test_lead_keeps_the_closing_quote_of_a_quoted_sentence():
    text = 'Mayor Helen Okafor said: "The bridge will stay shut." Engineers agreed. Crews worked overnight.'
    assert lead(text) == 'Mayor Helen Okafor said: "The bridge will stay shut." Engineers agreed.'


def test_lead_does_not_split_after_a_title_abbreviation():
    text = "Mr. Okafor closed the Riverside Bridge on Tuesday. Crews worked overnight."
    assert lead(text, sentences=1) == "Mr. Okafor closed the Riverside Bridge on Tuesday."


# -- representative, headline and lead ----------------------------------------


def test_most_central_titled_member_is_the_representative():
    members = [
        member(1, "Flood closes Riverside Bridge", GAZETTE_TEXT),
        member(2, "Alder River flooding shuts crossing", COURIER_TEXT),
    ]
    result = summarise(members, {1: 0.71, 2: 0.83}, ones)
    assert result.representative_article_id == 2
    assert result.title == "Alder River flooding shuts crossing"


def test_titled_member_is_preferred_over_a_more_central_untitled_one():
    members = [member(1, None, GAZETTE_TEXT), member(2, "Alder River flooding shuts crossing", COURIER_TEXT)]
    result = summarise(members, {1: 0.95, 2: 0.40}, ones)
    assert result.representative_article_id == 2


def test_blank_title_counts_as_no_title():
    members = [member(1, "   ", GAZETTE_TEXT), member(2, "Alder River flooding shuts crossing", COURIER_TEXT)]
    result = summarise(members, {1: 0.95, 2: 0.40}, ones)
    assert result.representative_article_id == 2


def test_earliest_member_wins_a_centrality_tie():
    members = [
        member(1, "Later report", COURIER_TEXT, at=T0 + timedelta(hours=4)),
        member(2, "Earlier report", GAZETTE_TEXT, at=T0),
    ]
    assert summarise(members, {1: 0.5, 2: 0.5}, ones).representative_article_id == 2


def test_member_missing_from_centrality_counts_as_least_central():
    members = [member(1, "Flood closes Riverside Bridge", GAZETTE_TEXT), member(2, "Crossing shut", COURIER_TEXT)]
    assert summarise(members, {2: 0.1}, ones).representative_article_id == 2


def test_summary_is_the_lead_of_the_representative():
    members = [member(1, "Flood closes Riverside Bridge", GAZETTE_TEXT)]
    assert summarise(members, {1: 1.0}, ones).summary == (
        "The Riverside Bridge in Port Calder was closed to traffic on Tuesday after the Alder River rose more "
        "than two metres overnight, city officials said. Engineers from the Calder Transport Authority "
        "inspected the bridge supports at dawn and found debris packed against two of the piers."
    )


def test_headline_is_stripped():
    members = [member(1, "  Flood closes Riverside Bridge \n", GAZETTE_TEXT)]
    assert summarise(members, {1: 1.0}, ones).title == "Flood closes Riverside Bridge"


def test_untitled_story_takes_its_first_sentence_as_headline():
    members = [member(1, None, RADIO_TEXT)]
    assert summarise(members, {1: 1.0}, ones).title == (
        "Port Calder's Riverside Bridge is closed after the Alder River rose more than two metres on Monday night."
    )


# -- counts and outlets -------------------------------------------------------


def test_sources_are_counted_most_articles_first():
    members = [
        member(1, "A", source="gazette.example"),
        member(2, "B", source="courier.example"),
        member(3, "C", source="courier.example"),
        member(4, "D", source="radio.example"),
    ]
    result = summarise(members, {}, ones)
    assert result.sources == [
        {"name": "courier.example", "articles": 2},
        {"name": "gazette.example", "articles": 1},
        {"name": "radio.example", "articles": 1},
    ]
    assert result.source_count == 3
    assert result.article_count == 4


def test_member_without_source_counts_as_unknown():
    result = summarise([member(1, "A", source=None), member(2, "B", source=None)], {}, ones)
    assert result.sources == [{"name": "unknown", "articles": 2}]
    assert result.source_count == 1


def test_first_and_last_published_span_the_members():
    members = [
        member(1, "A", at=T0 + timedelta(days=1)),
        member(2, "B", at=T0),
        member(3, "C", at=T0 + timedelta(hours=5)),
    ]
    result = summarise(members, {}, ones)
    assert result.first_published_at == T0
    assert result.last_published_at == T0 + timedelta(days=1)


def test_story_without_members_cannot_be_summarised():
    with pytest.raises(ValueError):
        summarise([], {}, ones)


# -- keywords -----------------------------------------------------------------


def test_keywords_exclude_stop_words():
    members = [member(1, "Flood closes Riverside Bridge", GAZETTE_TEXT)]
    found = keywords(members, ones, k=100)
    assert found
    assert not set(found) & STOP_WORDS


def test_keywords_exclude_numbers():
    members = [member(1, "Plant closes with 300 jobs lost", "The Tessel plant will close in 2026, ending 120 years.")]
    assert set(keywords(members, ones, k=100)) == {
        "plant",
        "closes",
        "jobs",
        "tessel",
        "ending",
    }  # "close" is "closes"; "lost" is a bare verb


def test_term_in_more_members_ranks_first():
    members = [
        member(1, None, "Floodwater reached the mill. Engineers inspected piers."),
        member(2, None, "Floodwater closed roads. Councillors debated."),
        member(3, None, "Floodwater receded slowly."),
    ]
    assert keywords(members, ones, k=1) == ["floodwater"]


def test_title_term_counts_twice():
    members = [
        member(1, "Riverside bridge", "Engineers inspected piers."),
        member(2, None, "Engineers cleared debris."),
    ]
    # "riverside" and "bridge": one article, but in its title (2); "engineers": two bodies (2); others 1
    assert set(keywords(members, ones, k=3)) == {"riverside", "bridge", "engineers"}


def test_idf_weight_demotes_a_common_term():
    members = [
        member(1, None, "Floodwater reached Millbrook. Engineers inspected piers."),
        member(2, None, "Floodwater closed Millbrook roads."),
    ]

    def idf(terms):
        return np.array([0.1 if t == "floodwater" else 1.0 for t in terms])

    assert keywords(members, idf, k=1) == ["Millbrook"]


def test_near_duplicate_copies_count_once_in_keywords():
    original = member(1, "Flood closes Riverside Bridge", GAZETTE_TEXT)
    other = member(2, "Alder River flooding shuts crossing", COURIER_TEXT, source="courier.example")
    copies = [member(10 + i, original.title, GAZETTE_TEXT, source=f"copy{i}.example", duplicate_of=1) for i in range(5)]
    assert keywords([original, other, *copies], ones) == keywords([original, other], ones)


def test_copies_of_an_absent_original_still_give_keywords():
    copies = [member(10 + i, "Flood closes Riverside Bridge", GAZETTE_TEXT, duplicate_of=1) for i in range(2)]
    assert "flood" in keywords(copies, ones, k=100)


def test_story_of_only_stop_words_has_no_keywords():
    assert keywords([member(1, None, "It was said that they would.")], ones) == []


def test_summary_keywords_are_the_story_keywords():
    members = [member(1, "Flood closes Riverside Bridge", GAZETTE_TEXT), member(2, "Crossing shut", COURIER_TEXT)]
    assert summarise(members, {1: 1.0, 2: 0.5}, ones).keywords == keywords(members, ones)


def test_keywords_are_the_same_in_every_process():
    script = (
        "import numpy as np\n"
        "from datetime import datetime, timezone\n"
        "from clustering.summarise import Member, keywords\n"
        "t = datetime(2026, 2, 3, tzinfo=timezone.utc)\n"
        "m = [Member(1, 'Flood closes Riverside Bridge', 'Engineers from Calder Works inspected the piers.', 'a', t),"
        " Member(2, 'Bridge shut', 'Crews from CALDER WORKS and Alder Port met at the piers.', 'b', t),"
        " Member(3, 'Bridge shut', 'Divers from Alder Port and Calder Works checked the piers.', 'c', t)]\n"
        "print(keywords(m, lambda terms: np.ones(len(terms)), k=4))\n"
    )
    outputs = set()
    for seed in range(3):
        run = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": str(seed), "PATH": ""},
        )
        outputs.add(run.stdout.strip())
    assert len(outputs) == 1, outputs


def test_inflections_of_one_word_are_one_keyword_in_its_most_frequent_form():
    members = [
        member(1, "Dock strikes spread", "Dock strikes spread to three ports."),
        member(2, "Dock strike spreads", "The strike reached a fourth port on Tuesday.", source="b.example"),
        member(3, "Dock strikes widen", "Unions called strikes at two more ports.", source="c.example"),
    ]
    found = keywords(members, ones)
    assert "strikes" in found and "strike" not in found


def test_months_and_bare_verbs_are_not_keywords():
    members = [
        member(1, "Leaders met in September", "The leaders met in Vostok in September and announced a summit."),
        member(2, "Leaders met again", "The leaders met again in September to plan the summit.", source="b.example"),
    ]
    found = keywords(members, ones, k=100)
    assert {"leaders", "summit"} <= set(found)
    assert not {"met", "september", "announced"} & set(found)


def test_a_name_two_members_give_stands_in_place_of_its_words_first_and_as_written():
    members = [
        member(1, "Talks in the capital", "Leader Kim Jong Un welcomed the delegation from North Korea's neighbour."),
        member(
            2, "Talks go on", "The delegation met Kim Jong Un, whose North Korea hosts the summit.", source="b.example"
        ),
    ]
    found = keywords(members, ones)
    assert found[:2] == ["Kim Jong Un", "North Korea"] or found[:2] == ["North Korea", "Kim Jong Un"]
    assert not {"kim", "jong", "un", "north", "korea"} & set(found)
    assert "delegation" in found


def test_a_name_unknown_to_the_lexicon_shows_as_written():
    members = [member(1, None, "Rescuers reached Millbrook at dawn. Millbrook lies under water.")]
    assert keywords(members, ones)[0] == "Millbrook"


def test_a_name_of_one_member_is_no_keyword_in_a_larger_story():
    members = [
        member(1, None, "Flood water rose in the valley near Calder Ridge."),
        member(2, None, "Flood water rose again in the valley.", source="b.example"),
    ]
    assert not any(" " in k for k in keywords(members, ones, k=100))
