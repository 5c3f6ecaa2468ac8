"""clustering.extract: main text of crawled pages, plain text and HTML."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from clustering.candidates import DUPLICATE_JACCARD, NearDuplicateIndex
from clustering.extract import (
    FALLBACK,
    TEMPLATE_MAX_WORDS,
    SourceTemplates,
    classify_line,
    extract_html,
    extract_text,
    find_date,
    line_fingerprint,
)
from clustering.fingerprint import EMPTY_SIGNATURE
from clustering.prepare import Draft, Prepared, prepare

# A page of an invented local news site, as a crawler delivers its visible text.
PARAGRAPHS = [
    "The Riverside Bridge in Port Calder was closed to traffic on Tuesday after the Alder River rose more than "
    "two metres overnight, city officials said.",
    "Engineers from the Calder Transport Authority inspected the bridge supports at dawn and found debris "
    "packed against two of the piers.",
    "Mayor Helen Okafor told reporters that the closure would last at least until Thursday, when the water "
    "level is expected to fall.",
    "Residents of the low-lying Millbrook district were asked to move their cars to higher ground and to stay "
    "away from the embankment.",
]
MENU = ["Skip to content", "Home", "World", "Business", "Sport", "Harbourview Gazette"]
HEADLINE = "Flood Closes Riverside Bridge as Rains Continue"
SHARE_BAR = "Share. Facebook Twitter WhatsApp LinkedIn Email"
TRENDING = [
    "Trending",
    "\u2022 Council Approves Budget for New Harbour Ferry Terminal",
    "\u2022 Local Bakery Wins National Bread Award for Third Time",
    "\u2022 Police Appeal for Witnesses After Late-Night Warehouse Fire",
]
DATE_LIST = [
    "Latest News",
    "Fishing fleet returns early as storm warning is issued",
    "",
    "February 2, 2026",
    "School choir raises funds for the children's hospital ward",
    "",
    "February 1, 2026",
]
FOOTER = "Copyright \u00a9 2026 Harbourview Gazette. All rights reserved."

PAGE = "\n".join(
    [
        *MENU,
        HEADLINE,
        "February 3, 2026",
        SHARE_BAR,
        PARAGRAPHS[0],
        PARAGRAPHS[1],
        "Advertisement",
        PARAGRAPHS[2],
        PARAGRAPHS[3],
        *TRENDING,
        *DATE_LIST,
        FOOTER,
    ]
)

# Another page of the same site: same menu, trending list and footer, another story.
SECOND_PAGE_PARAGRAPHS = [
    "Councillors in Port Calder voted on Wednesday to approve a budget for a new ferry terminal on the north "
    "side of the harbour.",
    "Opponents on the council argued that the money should go to road repairs, but the plan passed by nine "
    "votes to four.",
]

# A line a single-page rule would keep: a full sentence the site prints on every page.
ABOUT_LINE = "Harbourview Gazette is an independent newspaper that has served the Calder coast since 1987."


@pytest.fixture
def extraction():
    return extract_text(PAGE, source="harbourview-gazette.example")


def lines_of(text: str) -> list[str]:
    return text.split("\n") if text else []


# -- single-page rules on the first page of a new source ----------------------


def test_article_paragraphs_are_kept_in_order(extraction):
    assert lines_of(extraction.text) == PARAGRAPHS


def test_menu_lines_are_removed_on_first_page_of_a_new_source(extraction):
    for line in MENU:
        assert line not in extraction.text


def test_title_case_headline_line_is_removed(extraction):
    assert HEADLINE not in extraction.text


def test_share_bar_is_removed(extraction):
    assert "Facebook" not in extraction.text


def test_advertisement_between_paragraphs_is_removed(extraction):
    assert "Advertisement" not in extraction.text


def test_trending_bullet_list_of_other_headlines_is_removed(extraction):
    for line in TRENDING:
        assert line.lstrip("\u2022 ") not in extraction.text


def test_headline_and_date_list_is_removed_with_its_headlines(extraction):
    assert "Fishing fleet" not in extraction.text
    assert "School choir" not in extraction.text
    assert "February" not in extraction.text


def test_copyright_footer_is_removed(extraction):
    assert "Copyright" not in extraction.text
    assert "rights reserved" not in extraction.text


def test_removed_counts_every_dropped_line_under_its_rule(extraction):
    assert extraction.removed == {
        "furniture": 6,  # skip link, share bar, advertisement, "Trending", "Latest News", copyright
        "short": 5,  # Home, World, Business, Sport, site name
        "headline": 1,
        "date": 3,
        "list": 3,  # trending bullets
        "headline-list": 2,  # the sentence-case headlines above the two dates
    }


def test_blank_lines_are_neither_kept_nor_counted(extraction):
    assert "blank" not in extraction.removed
    assert "" not in lines_of(extraction.text)


def test_plain_text_has_no_title():
    assert extract_text(PAGE).title is None


def test_kept_lines_are_folded_and_stripped():
    result = extract_text("   Mayor Helen Okafor said the bridge was \u201cnot safe\u201d for cars or buses today.   ")
    assert result.text == 'Mayor Helen Okafor said the bridge was "not safe" for cars or buses today.'


# -- classify_line: one rule at a time ----------------------------------------


def test_date_only_line_is_a_date():
    assert classify_line("Tuesday, February 3, 2026") == "date"


def test_date_with_time_is_a_date():
    assert classify_line("3 Feb 2026, 08:15 am") == "date"


def test_numbered_short_line_is_a_list_item():
    assert classify_line("1. Council approves ferry terminal budget") == "list"


def test_line_ending_with_relative_time_is_a_list_item():
    assert classify_line("Council approves ferry terminal budget 3 hours ago") == "list"


def test_see_also_lead_in_is_furniture_whatever_its_length():
    line = (
        "See also: Council approves the budget for a new harbour ferry terminal after a long and heated debate "
        "in the chamber on Wednesday night."
    )
    assert classify_line(line) == "furniture"


def test_newsletter_prompt_is_furniture():
    assert classify_line("Sign up for our morning newsletter") == "furniture"


def test_bulleted_full_sentence_of_prose_is_content():
    line = (
        "- The authority said crews would work through the night to clear the channel before the bridge can "
        "be reopened to traffic."
    )
    assert classify_line(line) is None


def test_sentence_case_prose_sentence_is_content():
    assert classify_line("Officials confirmed the closure on Tuesday.") is None


def test_blank_line_is_blank():
    assert classify_line("   \t ") == "blank"


def test_title_case_headline_with_lowercase_short_words_is_a_headline():
    assert classify_line("Man Arrested for the Theft of a Car in the City") == "headline"


# -- fallback -----------------------------------------------------------------


def test_page_of_only_short_lines_keeps_its_lines_instead_of_returning_empty_text():
    result = extract_text("Ferry Times\nNorth Pier\n\nDepartures 07:30\nReturns 18:00")
    assert result.text == "Ferry Times\nNorth Pier\nDepartures 07:30\nReturns 18:00"


def test_fallback_is_reported_in_removed():
    result = extract_text("Ferry Times\nNorth Pier\n\nDepartures 07:30\nReturns 18:00")
    assert result.removed == {"kept-by-fallback": 4}


# -- source templates ---------------------------------------------------------


def second_page() -> str:
    return "\n".join([*MENU, ABOUT_LINE, *SECOND_PAGE_PARAGRAPHS, *TRENDING, FOOTER])


def first_page_with_about_line() -> str:
    return "\n".join([*MENU, ABOUT_LINE, *PARAGRAPHS, *TRENDING, FOOTER])


def test_line_seen_on_an_earlier_page_of_the_same_source_is_template():
    templates = SourceTemplates()
    first = extract_text(first_page_with_about_line(), "gazette", templates)
    assert ABOUT_LINE in first.text  # the single-page rules keep it
    templates.learn("gazette", first.line_fingerprints)

    second = extract_text(second_page(), "gazette", templates)

    assert lines_of(second.text) == SECOND_PAGE_PARAGRAPHS


def test_template_lines_are_counted_under_template_before_single_page_rules():
    templates = SourceTemplates()
    templates.learn("gazette", extract_text(first_page_with_about_line(), "gazette", templates).line_fingerprints)

    second = extract_text(second_page(), "gazette", templates)

    # menu (6) + about line + trending heading and bullets (4) + footer
    assert second.removed == {"template": 12}


def test_line_learned_for_one_source_is_not_template_for_another():
    templates = SourceTemplates()
    templates.learn("gazette", extract_text(first_page_with_about_line(), "gazette", templates).line_fingerprints)

    other = extract_text(second_page(), "calder-courier.example", templates)

    assert ABOUT_LINE in other.text
    assert "template" not in other.removed


def test_page_without_source_never_uses_templates():
    templates = SourceTemplates()
    templates.learn("gazette", [line_fingerprint(ABOUT_LINE)])

    assert ABOUT_LINE in extract_text(ABOUT_LINE, None, templates).text


def test_line_is_not_template_before_min_pages_earlier_pages_carried_it():
    templates = SourceTemplates(min_pages=2)
    fingerprint = line_fingerprint(ABOUT_LINE)
    templates.learn("gazette", [fingerprint])
    assert not templates.is_template("gazette", fingerprint)
    templates.learn("gazette", [fingerprint])
    assert templates.is_template("gazette", fingerprint)


def test_a_line_repeated_within_one_page_counts_once():
    templates = SourceTemplates(min_pages=2)
    fingerprint = line_fingerprint(ABOUT_LINE)
    templates.learn("gazette", [fingerprint, fingerprint, fingerprint])
    assert not templates.is_template("gazette", fingerprint)


def test_learning_without_source_is_ignored():
    templates = SourceTemplates()
    templates.learn(None, [line_fingerprint(ABOUT_LINE)])
    assert templates.line_counts_ == {}


def test_min_pages_below_one_is_rejected():
    with pytest.raises(ValueError):
        SourceTemplates(min_pages=0)


# -- line fingerprints --------------------------------------------------------


def test_line_fingerprint_ignores_case_spacing_and_punctuation():
    assert line_fingerprint("  Latest   NEWS: ") == line_fingerprint("latest news")


def test_different_lines_have_different_fingerprints():
    assert line_fingerprint("Latest news") != line_fingerprint("Latest sport")


def test_line_longer_than_template_limit_has_no_fingerprint():
    long_line = " ".join(["word"] * (TEMPLATE_MAX_WORDS + 1))
    assert line_fingerprint(long_line) is None
    assert line_fingerprint(" ".join(["word"] * TEMPLATE_MAX_WORDS)) is not None


def test_extraction_lists_fingerprints_of_all_learnable_lines(extraction):
    learnable = [line for line in PAGE.splitlines() if line.strip()]
    assert extraction.line_fingerprints == tuple(line_fingerprint(line) for line in learnable)


# -- dates --------------------------------------------------------------------


def test_iso_date_near_the_top_is_the_publication_date():
    page = "Home\nWorld\nPosted 2026-02-03 08:15\n" + PARAGRAPHS[0]
    assert extract_text(page).published_at == datetime(2026, 2, 3, 8, 15, tzinfo=UTC)


def test_iso_date_far_down_the_page_is_not_the_publication_date():
    page = "\n".join(PARAGRAPHS * 3) + "\nUpdated 2026-02-03"
    assert find_date(page) is None


def test_impossible_iso_date_is_ignored():
    assert find_date("Posted 2026-02-30\nThe bridge closed.") is None


# -- HTML through trafilatura -------------------------------------------------

HTML_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Flood closes Riverside Bridge in Port Calder | Harbourview Gazette</title>
<meta property="og:title" content="Flood closes Riverside Bridge in Port Calder">
<meta property="article:published_time" content="2026-02-03T08:15:00Z">
</head>
<body>
<nav><ul>
<li><a href="/">Home</a></li><li><a href="/world">World</a></li><li><a href="/sport">Sport</a></li>
</ul></nav>
<article>
<p>{}</p>
<p>{}</p>
<p>{}</p>
</article>
<footer><p>Copyright 2026 Harbourview Gazette. All rights reserved.</p><a href="/privacy">Privacy policy</a></footer>
</body>
</html>
""".format(*PARAGRAPHS[:3])


def test_html_article_paragraphs_are_extracted():
    result = extract_html(HTML_PAGE, "harbourview-gazette.example")
    assert lines_of(result.text) == PARAGRAPHS[:3]


def test_html_nav_and_footer_are_not_extracted():
    result = extract_html(HTML_PAGE)
    assert "Home" not in result.text
    assert "Copyright" not in result.text
    assert "Privacy" not in result.text


def test_html_title_comes_from_og_title():
    page = HTML_PAGE.replace("<title>Flood closes Riverside Bridge in Port Calder | Harbourview Gazette</title>\n", "")
    assert extract_html(page).title == "Flood closes Riverside Bridge in Port Calder"


def test_html_title_comes_from_title_element_without_og_title():
    page = HTML_PAGE.replace('<meta property="og:title" content="Flood closes Riverside Bridge in Port Calder">\n', "")
    page = page.replace(" | Harbourview Gazette", "")
    assert extract_html(page).title == "Flood closes Riverside Bridge in Port Calder"


def test_html_publication_date_comes_from_metadata():
    assert extract_html(HTML_PAGE).published_at == datetime(2026, 2, 3, tzinfo=UTC)


def test_html_lines_learned_for_a_source_are_removed_as_template():
    templates = SourceTemplates()
    first = extract_html(HTML_PAGE, "gazette", templates)
    templates.learn("gazette", first.line_fingerprints)
    page = HTML_PAGE.replace(PARAGRAPHS[2], SECOND_PAGE_PARAGRAPHS[0])

    second = extract_html(page, "gazette", templates)

    assert second.text == SECOND_PAGE_PARAGRAPHS[0]
    assert second.removed == {"template": 2}


def test_masthead_naming_the_source_is_removed_from_its_first_page():
    page = (
        "Valley Echo - Local news since 1902\n"
        "Two climbers were rescued from Mount Praxjor on Monday after a night on a narrow ledge.\n"
        "A helicopter lifted them off at first light, the mountain rescue team said."
    )
    extraction = extract_text(page, "valleyecho.example")
    assert "Local news since 1902" not in extraction.text
    assert extraction.removed.get("masthead") == 1


def test_a_sentence_naming_the_source_is_kept():
    page = (
        "The Valley Echo asked the mayor why the bridge stayed closed.\n"
        "Engineers found debris against two piers, the city said."
    )
    assert "Valley Echo asked the mayor" in extract_text(page, "valleyecho.example").text


def test_a_short_line_naming_another_outlet_is_kept():
    page = (
        "Harbour Post reporters on the ferry, part two of our series\nThe ferry operator cancelled Friday's crossings."
    )
    assert "Harbour Post" in extract_text(page, "valleyecho.example").text


# -- a page that is all furniture ---------------------------------------------------------------------


class _EveryLineLearned:
    """A source whose template is every line it sends (its video pages carry nothing else)."""

    def template_lines(self, source, fingerprints):
        return set(fingerprints)


def _video_page(title: str) -> Prepared:
    furniture = "Chat with us in Facebook Messenger. Find out what's happening in the world as it unfolds."
    draft = Draft(title, furniture, None, "video.example.com", None, datetime(2026, 3, 1, tzinfo=UTC))
    return prepare(draft, _EveryLineLearned())


def test_a_page_that_is_all_furniture_keeps_its_text_and_is_decided_on_its_title():
    page = _video_page("Ship seized for selling oil to North Korea")
    assert page.removed == {FALLBACK: 1} and page.text.startswith("Chat with us")
    assert (page.signature == EMPTY_SIGNATURE).all()  # never a copy of anything
    assert page.features.field("body").nnz == 0 and page.features.field("title").nnz > 0


def test_two_pages_of_nothing_but_one_sites_furniture_are_not_copies():
    one, two = _video_page("Ship seized for selling oil to North Korea"), _video_page("The first shots in Las Vegas")
    index = NearDuplicateIndex()
    index.add(1, one.signature)
    assert index.query(two.signature, min_similarity=DUPLICATE_JACCARD) == []
