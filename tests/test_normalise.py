"""clustering.normalise: folding, word tokens, content words and name-like terms."""

from __future__ import annotations

import subprocess
import sys

from clustering.normalise import _GLASGOW_STOP_WORDS, STOP_WORDS, content_words, fold, names, stems, words

# -- fold ---------------------------------------------------------------------


def test_curly_quotes_are_folded_to_ascii():
    assert fold("\u201cWe will reopen\u201d, the mayor\u2019s aide said") == '"We will reopen", the mayor\'s aide said'


def test_dashes_and_minus_sign_are_folded_to_hyphen():
    assert fold("Port Calder \u2014 flood levels rose 2\u20133 metres, \u22125 degrees") == (
        "Port Calder - flood levels rose 2-3 metres, -5 degrees"
    )


def test_compatibility_characters_are_nfkc_normalised():
    # the "fi" ligature and full-width letters become their plain forms
    assert fold("\ufb01nal \uff21\uff22\uff23") == "final ABC"


def test_non_breaking_space_becomes_space_and_zero_width_space_is_dropped():
    assert fold("Port\u00a0Calder flood\u200bwater") == "Port Calder floodwater"


def test_fold_keeps_case():
    assert fold("Mayor Helen Okafor") == "Mayor Helen Okafor"


# -- words --------------------------------------------------------------------


def test_words_are_case_folded():
    assert words("Riverside BRIDGE Closed") == ["riverside", "bridge", "closed"]


def test_possessive_is_cut_so_it_matches_the_bare_name():
    assert words("Okafor\u2019s statement") == words("Okafor statement") == ["okafor", "statement"]


def test_inner_apostrophe_keeps_contraction_as_one_word():
    assert words("crews don't expect delays") == ["crews", "don't", "expect", "delays"]


def test_punctuation_hyphens_and_underscores_split_words():
    assert words("low-lying Millbrook_district, (flooded)") == ["low", "lying", "millbrook", "district", "flooded"]


def test_numbers_are_kept_as_words():
    assert words("rose 2 metres on 3 February 2026") == ["rose", "2", "metres", "on", "3", "february", "2026"]


def test_accented_letters_are_word_characters():
    assert words("\u00c9cole Sainte-Th\u00e9r\u00e8se") == ["\u00e9cole", "sainte", "th\u00e9r\u00e8se"]


def test_curly_and_straight_typing_give_the_same_words():
    assert words("\u201cThe mayor\u2019s bridge\u201d \u2014 closed") == words('"The mayor\'s bridge" - closed')


def test_empty_text_has_no_words():
    assert words("") == []
    assert words("  ... ,, --  ") == []


# -- content_words ------------------------------------------------------------


def test_content_words_drop_stop_words():
    assert content_words("The mayor said that the bridge would reopen on Thursday") == ["mayor", "bridge", "reopen"]


def test_content_words_drop_one_character_tokens():
    assert content_words("Route A and exit 5 were closed") == ["route", "exit", "closed"]


def test_the_general_stop_words_are_scikit_learns_list():
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    assert _GLASGOW_STOP_WORDS == ENGLISH_STOP_WORDS


def test_serving_does_not_import_scikit_learn():
    # scikit-learn is for fitting and scoring; importing it costs a served process ~30 MiB.
    code = "import sys, app.main, app.cli; print(sorted(m for m in sys.modules if m.split('.')[0] == 'sklearn'))"
    imported = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert imported.strip() == "[]"


def test_reporting_verbs_and_weekdays_are_stop_words():
    for word in ("said", "told", "according", "monday", "yesterday"):
        assert word in STOP_WORDS
    assert content_words("Officials told reporters on Monday, according to the council") == [
        "officials",
        "reporters",
        "council",
    ]


# -- names --------------------------------------------------------------------


def test_multi_word_name_is_kept_whole_and_word_by_word():
    found = names("Crews worked as Mayor Helen Okafor visited the site.")
    assert "mayor helen okafor" in found
    assert {"mayor", "helen", "okafor"} <= set(found)


def test_single_capitalised_word_opening_a_sentence_is_not_a_name():
    assert names("Engineers inspected the piers. Residents were warned.") == []


def test_single_capitalised_word_after_a_line_break_is_not_a_name():
    assert names("the river rose overnight\nRescuers arrived at dawn") == []


def test_capitalised_word_inside_a_sentence_is_a_name():
    assert names("The closure was ordered by Okafor on Tuesday.") == ["okafor"]


def test_multi_word_name_opening_a_sentence_is_kept():
    assert names("Port Calder was flooded.") == ["port", "calder", "port calder"]


def test_connecting_particle_joins_a_name_and_is_dropped_from_it():
    assert names("Rates were raised by the Bank of England.") == ["bank", "england", "bank england"]


def test_capitalised_function_words_and_weekdays_are_not_names():
    assert names("The flood peaked. It was worst on Tuesday when They left in February.") == []


def test_name_part_that_is_a_general_stop_word_is_kept():
    # "Un" is in the general stop list but is part of a real name
    assert names("The envoy met Kim Jong Un in the capital.") == ["kim", "jong", "un", "kim jong un"]


def test_possessive_name_matches_its_bare_form():
    assert names("crews cleared the Alder River\u2019s channel") == ["alder", "river", "alder river"]


# -- stems --------------------------------------------------------------------


def test_inflections_of_one_word_share_a_stem():
    assert len(set(stems(["indicts", "indicted", "indicting", "indict"]))) == 1
    assert stems(["launches", "launched"]) == stems(["launch", "launch"])


def test_different_words_keep_different_stems():
    assert len(set(stems(["flood", "floor", "flight", "fleet"]))) == 4


def test_stems_keep_order_and_length():
    tokens = ["ferries", "cancelled", "storm", "harbour"]
    assert len(stems(tokens)) == len(tokens) and stems(tokens)[2] == "storm"


def test_stems_stay_right_when_the_remembered_stems_overflow(monkeypatch):
    from clustering import normalise

    monkeypatch.setattr(normalise, "_STEMS", {})
    monkeypatch.setattr(normalise, "_STEMS_KEPT", 2)  # every call with new words now empties it
    assert stems(["ministers", "resigned", "resigning", "ministers"]) == ["minist", "resign", "resign", "minist"]
    assert stems(["floods", "ministers"]) == ["flood", "minist"]
    assert stems(["ministers"]) == ["minist"]
    assert len(normalise._STEMS) == 2
