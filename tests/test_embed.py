"""clustering.embed: the sentence encoder that tells which reports mean the same."""

from __future__ import annotations

import math
import zipfile

import numpy as np
import onnxruntime
import pytest
from safetensors.numpy import load as load_safetensors
from scipy.special import erf

from clustering import embed, encoder_graph

STRIKE = (
    "Dock workers walk out at Port Calder",
    "Hundreds of dock workers at Port Calder stopped work on Monday in a dispute over night-shift pay, "
    "leaving container ships waiting at anchor outside the harbour.",
)
WALKOUT = (
    "Harbour stoppage strands cargo ships",
    "Ships queued off the coast after stevedores at the Port Calder terminals downed tools over wages "
    "for overnight shifts, union leaders said.",
)
ORCHESTRA = (
    "Vellmont orchestra names a new conductor",
    "The Vellmont Symphony Orchestra has appointed Ines Marlow as principal conductor from September, "
    "replacing Anton Ferreira after eighteen years.",
)


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


def _whole_text_ids(text: str) -> list[int]:
    tokenizer = embed.encoder().tokenizer
    return tokenizer.encode(text).ids


def test_a_long_text_reads_the_same_tokens_as_if_all_of_it_were_tokenised():
    title, body = STRIKE
    text = " ".join([title, body] * 40)  # far more words than the encoder reads
    assert len(text) > embed.MAX_TOKENS * embed._CHARS_A_TOKEN
    assert embed.encoder()._token_ids(text) == _whole_text_ids(text)


def test_a_long_text_of_many_short_tokens_still_reads_its_first_tokens():
    # Digits and punctuation are a token each: the first characters hold too few words'
    # worth of text to decide, so the whole text is tokenised.
    text = "x" * 2000 + " " + ", ".join(str(n % 10) for n in range(400))
    assert embed.encoder()._token_ids(text) == _whole_text_ids(text)
    dense = ",".join("1" for _ in range(1000)) + " tail words"
    assert embed.encoder()._token_ids(dense) == _whole_text_ids(dense)


def test_a_text_without_tokens_embeds_to_zeros():
    assert not embed.embed(None, "   ").any()


def test_stored_form_round_trips():
    vector = embed.embed(*WALKOUT)
    assert np.array_equal(embed.from_bytes(embed.to_bytes(vector)), vector)


def test_stored_form_of_the_wrong_length_is_refused():
    with pytest.raises(ValueError, match="768 bytes"):
        embed.from_bytes(b"\x00" * 100)


def test_a_missing_encoder_stops_with_how_to_build_it(tmp_path):
    with pytest.raises(embed.ModelMissing, match="make install"):
        embed.Encoder.load(tmp_path / "absent.onnx")


def test_an_encoder_other_than_the_built_one_is_refused(tmp_path):
    forged = tmp_path / "encoder.onnx"
    forged.write_bytes(b"not the encoder")
    with pytest.raises(embed.ModelMissing, match="not the expected encoder"):
        embed.Encoder.load(forged)


def test_a_sequence_length_the_encoder_has_no_positions_for_is_refused():
    with pytest.raises(ValueError, match="max_tokens"):
        embed.Encoder.load(max_tokens=1000)


def _weights() -> dict[str, np.ndarray]:
    with zipfile.ZipFile(embed.model_zip()) as archive:
        return {k: v.astype(np.float32) for k, v in load_safetensors(archive.read("model.safetensors")).items()}


def _reference(w: dict[str, np.ndarray], ids: list[int]) -> np.ndarray:
    """BERT and mean pooling written out in numpy, as sentence-transformers computes them."""

    def norm(x, p):
        mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + 1e-12) * w[f"{p}.weight"] + w[f"{p}.bias"]

    def dense(x, p):
        return x @ w[f"{p}.weight"].T + w[f"{p}.bias"]

    n, head = len(ids), 32
    x = (
        w["embeddings.word_embeddings.weight"][ids]
        + w["embeddings.position_embeddings.weight"][:n]
        + w["embeddings.token_type_embeddings.weight"][0]
    )
    x = norm(x, "embeddings.LayerNorm")
    for layer in range(6):
        p = f"encoder.layer.{layer}"
        q, k, v = (
            dense(x, f"{p}.attention.self.{m}").reshape(n, 12, head).transpose(1, 0, 2)
            for m in ("query", "key", "value")
        )
        logits = q @ k.transpose(0, 2, 1) / math.sqrt(head)
        attention = np.exp(logits - logits.max(-1, keepdims=True))
        attention /= attention.sum(-1, keepdims=True)
        context = (attention @ v).transpose(1, 0, 2).reshape(n, 384)
        x = norm(x + dense(context, f"{p}.attention.output.dense"), f"{p}.attention.output.LayerNorm")
        inner = dense(x, f"{p}.intermediate.dense")
        inner = 0.5 * inner * (1.0 + erf(inner / math.sqrt(2.0)))
        x = norm(x + dense(inner, f"{p}.output.dense"), f"{p}.output.LayerNorm")
    pooled = x.mean(0)
    return pooled / np.linalg.norm(pooled)


@pytest.fixture(scope="module")
def float_graph(tmp_path_factory) -> onnxruntime.InferenceSession:
    import onnx

    path = tmp_path_factory.mktemp("graph") / "float.onnx"
    onnx.save(encoder_graph.graph(_weights()), path)
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("article", [STRIKE, WALKOUT, ORCHESTRA])
def test_the_graph_computes_what_the_model_computes(float_graph, article):
    ids = embed.encoder().tokenizer.encode(embed.article_text(*article)).ids
    (graph,) = float_graph.run(None, {"input_ids": np.asarray(ids, dtype=np.int64)})
    np.testing.assert_allclose(graph, _reference(_weights(), ids), atol=1e-5)


@pytest.mark.parametrize("article", [STRIKE, WALKOUT, ORCHESTRA])
def test_8_bit_weights_keep_the_direction_of_the_float_model(float_graph, article):
    ids = embed.encoder().tokenizer.encode(embed.article_text(*article)).ids
    (graph,) = float_graph.run(None, {"input_ids": np.asarray(ids, dtype=np.int64)})
    assert _cosine(embed.encoder().encode(embed.article_text(*article)), graph) > 0.98


def test_every_integer_product_multiplies_unsigned_weights():
    # u8 x u8 products are exact on every x86 kernel; u8 x s8 ones saturate on AVX2 only,
    # which gave one text different embeddings on different CPUs.
    import onnx
    from onnx import TensorProto

    model = onnx.load(embed.artefact_path())
    weights = {node.input[1] for node in model.graph.node if node.op_type == "MatMulInteger"}
    kinds = {i.name: i.data_type for i in model.graph.initializer}
    assert len(weights) == 36 and {kinds[w] for w in weights} == {TensorProto.UINT8}


def test_the_build_gives_the_pinned_artefact(tmp_path):
    built = encoder_graph.build(tmp_path / "encoder.onnx")
    assert embed.file_sha256(built) == embed.ARTEFACT_SHA256


def test_a_text_seen_again_gets_the_same_vector_back_unchanged():
    first = embed.embed(*ORCHESTRA)
    again = embed.embed(*ORCHESTRA)
    assert again is first and not again.flags.writeable


def test_a_text_with_lone_surrogates_embeds_as_the_rest_of_its_text():
    vector = embed.embed("Dock strike", "Workers walked out \ud800 at the port.")
    assert vector.any() and _cosine(vector, embed.embed("Dock strike", "Workers walked out ? at the port.")) > 0.99


def test_the_service_does_not_start_without_the_built_encoder(settings, tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    from app.api.factory import create_app

    monkeypatch.setattr(embed, "artefact_path", lambda: tmp_path / "absent.onnx")
    embed.encoder.cache_clear()
    try:
        with pytest.raises(embed.ModelMissing, match=r"not built \(.*\): build it with `make install`"):
            with TestClient(create_app(settings)):
                pass
    finally:
        monkeypatch.undo()
        embed.encoder.cache_clear()
