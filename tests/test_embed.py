"""clustering.embed: the sentence encoder that tells which reports mean the same."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from clustering import embed

STRIKE = ("Dock workers walk out at Port Calder",
          "Hundreds of dock workers at Port Calder stopped work on Monday in a dispute over night-shift pay, "
          "leaving container ships waiting at anchor outside the harbour.")
WALKOUT = ("Harbour stoppage strands cargo ships",
           "Ships queued off the coast after stevedores at the Port Calder terminals downed tools over wages "
           "for overnight shifts, union leaders said.")
ORCHESTRA = ("Vellmont orchestra names a new conductor",
             "The Vellmont Symphony Orchestra has appointed Ines Marlow as principal conductor from September, "
             "replacing Anton Ferreira after eighteen years.")


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a.astype(np.float64) @ b.astype(np.float64))


def test_reports_of_one_event_in_other_words_lie_closer_than_another_event():
    strike, walkout, orchestra = (embed.embed(*article) for article in (STRIKE, WALKOUT, ORCHESTRA))
    assert _cosine(strike, walkout) > _cosine(strike, orchestra) + 0.2


def test_an_embedding_is_float16_of_unit_length():
    vector = embed.embed(*STRIKE)
    assert vector.dtype == np.float16 and vector.shape == (embed.DIMENSIONS,)
    assert abs(np.linalg.norm(vector.astype(np.float64)) - 1.0) < 1e-2


def test_the_same_text_always_embeds_the_same():
    assert np.array_equal(embed.embed(*STRIKE), embed.embed(*STRIKE))


def test_only_the_first_max_tokens_count():
    title, body = STRIKE
    padded = body + " " + " ".join(["unrelated filler about the weather"] * 200)
    long = embed.encoder().encode(" ".join([title, padded, "the orchestra appointed a conductor"]))
    assert np.array_equal(long, embed.encoder().encode(" ".join([title, padded])))


def test_a_text_without_tokens_embeds_to_zeros():
    assert not embed.embed(None, "   ").any()


def test_stored_form_round_trips():
    vector = embed.embed(*WALKOUT)
    assert np.array_equal(embed.from_bytes(embed.to_bytes(vector)), vector)


def test_stored_form_of_the_wrong_length_is_refused():
    with pytest.raises(ValueError, match="768 bytes"):
        embed.from_bytes(b"\x00" * 100)


def test_weights_other_than_the_published_ones_are_refused(tmp_path):
    forged = tmp_path / "model.zip"
    with zipfile.ZipFile(forged, "w") as archive:
        archive.writestr("model.safetensors", b"not the published weights")
        archive.writestr("tokenizer.json", "{}")
    with pytest.raises(embed.ModelMissing, match="expected all-MiniLM-L6-v2 weights"):
        embed.Encoder.from_zip(forged)


def test_a_sequence_length_the_encoder_has_no_positions_for_is_refused():
    with pytest.raises(ValueError, match="max_tokens"):
        embed.Encoder(embed.encoder().tensors, embed.encoder().tokenizer, max_tokens=1000)


def test_a_text_seen_again_gets_the_same_vector_back_unchanged():
    first = embed.embed(*ORCHESTRA)
    again = embed.embed(*ORCHESTRA)
    assert again is first and not again.flags.writeable


def test_a_text_with_lone_surrogates_embeds_as_the_rest_of_its_text():
    vector = embed.embed("Dock strike", "Workers walked out \ud800 at the port.")
    assert vector.any() and _cosine(vector, embed.embed("Dock strike", "Workers walked out ? at the port.")) > 0.99
