"""clustering.fingerprint: word shingles and MinHash signatures."""

from __future__ import annotations

import numpy as np
import pytest
from datasketch import MinHash

from clustering.fingerprint import (
    EMPTY_SIGNATURE,
    NUM_PERM,
    PERMUTATION_SCHEME,
    SEED,
    SHINGLE_WORDS,
    from_bytes,
    jaccard,
    shingle_hashes,
    signature,
    to_bytes,
    to_minhash,
)
from clustering.normalise import words

# About 80 words of an invented wire report.
REPORT = (
    "The Riverside Bridge in Port Calder was closed to traffic on Tuesday after the Alder River rose more than "
    "two metres overnight, city officials said. Engineers from the Calder Transport Authority inspected the "
    "bridge supports at dawn and found debris packed against two of the piers. Mayor Helen Okafor told "
    "reporters that the closure would last at least until Thursday, when the water level is expected to fall. "
    "Residents of the low-lying Millbrook district were asked to move their cars to higher ground."
)
# The same report with one word changed, as a syndicating outlet might.
REPORT_EDITED = REPORT.replace("inspected the bridge supports", "examined the bridge supports")
UNRELATED = (
    "The Vellmont Symphony Orchestra has appointed Ines Marlow as its principal conductor, the orchestra's "
    "board announced on Friday. Marlow, who grew up in the city and studied violin at the Hartfield "
    "Conservatory, will take up the post in September and lead twelve concerts in her first season. She "
    "replaces Anton Ferreira, who is retiring after eighteen years with the ensemble, and the board chair "
    "praised her work with youth ensembles across the region."
)


def datasketch_minhash(tokens: list[str]) -> MinHash:
    reference = MinHash(num_perm=NUM_PERM, seed=SEED, scheme=PERMUTATION_SCHEME, hashfunc=lambda x: x)
    reference.update_batch([int(h) for h in shingle_hashes(tokens)])
    return reference


def test_fixture_report_is_about_eighty_words():
    assert 70 <= len(words(REPORT)) <= 90
    assert len(words(REPORT_EDITED)) == len(words(REPORT))


def test_signature_equals_datasketch_update_batch_on_the_same_shingle_hashes():
    tokens = words(REPORT)
    assert np.array_equal(signature(tokens), datasketch_minhash(tokens).hashvalues)


def test_signature_of_a_short_text_equals_datasketch_update_batch():
    tokens = words("Bridge closed")
    assert np.array_equal(signature(tokens), datasketch_minhash(tokens).hashvalues)


def test_signature_has_num_perm_uint32_values():
    values = signature(words(REPORT))
    assert values.shape == (NUM_PERM,)
    assert values.dtype == np.uint32


def test_signature_is_deterministic():
    assert np.array_equal(signature(words(REPORT)), signature(words(REPORT)))


def test_empty_token_list_gives_the_empty_signature():
    assert np.array_equal(signature([]), EMPTY_SIGNATURE)


def test_empty_signature_returned_is_a_copy():
    values = signature([])
    values[0] = 7
    assert EMPTY_SIGNATURE[0] == np.iinfo(np.uint32).max


# -- shingles -----------------------------------------------------------------


def test_text_of_n_words_has_n_minus_k_plus_one_shingles():
    tokens = words(REPORT)
    assert len(shingle_hashes(tokens)) == len(tokens) - SHINGLE_WORDS + 1


def test_text_shorter_than_a_shingle_is_one_shingle():
    assert len(shingle_hashes(["bridge", "closed"])) == 1


def test_repeated_shingles_are_counted_once():
    tokens = "the bridge is closed the bridge is closed the bridge is closed".split()
    assert len(shingle_hashes(tokens)) == 4


def test_word_order_changes_shingles():
    assert not np.array_equal(
        shingle_hashes("mayor okafor closed the bridge".split()),
        shingle_hashes("bridge the closed okafor mayor".split()),
    )


# -- similarity ---------------------------------------------------------------


def test_copy_with_one_word_changed_is_a_near_duplicate():
    assert jaccard(signature(words(REPORT)), signature(words(REPORT_EDITED))) >= 0.8


def test_unrelated_text_is_not_similar():
    assert jaccard(signature(words(REPORT)), signature(words(UNRELATED))) < 0.2


def test_identical_texts_have_jaccard_one():
    assert jaccard(signature(words(REPORT)), signature(words(REPORT))) == 1.0


def test_curly_and_straight_typing_give_the_same_signature():
    curly = "Mayor Helen Okafor\u2019s office said the bridge was \u201cnot safe\u201d \u2014 for now."
    straight = 'Mayor Helen Okafor\'s office said the bridge was "not safe" - for now.'
    assert np.array_equal(signature(words(curly)), signature(words(straight)))


def test_jaccard_agrees_with_datasketch():
    a, b = words(REPORT), words(REPORT_EDITED)
    assert jaccard(signature(a), signature(b)) == pytest.approx(datasketch_minhash(a).jaccard(datasketch_minhash(b)))


def test_to_minhash_wraps_the_same_values():
    values = signature(words(REPORT))
    wrapped = to_minhash(values)
    assert np.array_equal(wrapped.hashvalues, values)
    assert wrapped.jaccard(to_minhash(signature(words(REPORT_EDITED)))) == jaccard(
        values, signature(words(REPORT_EDITED))
    )


# -- storage ------------------------------------------------------------------


def test_to_bytes_from_bytes_round_trip():
    values = signature(words(REPORT))
    assert np.array_equal(from_bytes(to_bytes(values)), values)


def test_stored_signature_is_four_bytes_a_value():
    assert len(to_bytes(signature(words(REPORT)))) == 4 * NUM_PERM


def test_stored_signature_is_little_endian():
    values = EMPTY_SIGNATURE.copy()
    values[0] = 1
    assert to_bytes(values)[:4] == b"\x01\x00\x00\x00"


def test_from_bytes_rejects_a_signature_with_too_few_values():
    data = to_bytes(signature(words(REPORT)))
    with pytest.raises(ValueError):
        from_bytes(data[:-4])


def test_from_bytes_rejects_a_signature_with_too_many_values():
    data = to_bytes(signature(words(REPORT)))
    with pytest.raises(ValueError):
        from_bytes(data + data[:4])


def test_from_bytes_rejects_a_length_not_a_multiple_of_four():
    data = to_bytes(signature(words(REPORT)))
    with pytest.raises(ValueError):
        from_bytes(data[:-1])
