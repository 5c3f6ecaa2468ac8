"""Which sentence encoder keeps the semantic feature's gain, and what each costs.

    python -m bench.encoders                              # every variant below
    python -m bench.encoders --variants none int8:96 int8:128

For each variant, ``clustering.embed.embed`` is replaced, a decision model is fitted on
``../shared/data/giveme5w1h`` (read in place) as ``stories calibrate`` fits it
(``evaluation.calibrate.fit``), and the four calibration streams (clean, wrapped, compressed
10 days, jittered 24 hours) are scored online at thresholds 0.05, 0.08, ... 0.62; the
row is the threshold with the best mean, beside the quality floors of ``.ci/run``.
Variants:

* ``none``: no embedding (the term model);
* ``int8:N`` / ``fp32:N``: all-MiniLM-L6-v2 on ONNX Runtime over the first N tokens,
  the shipped int8 graph or the float graph it is quantised from;
* ``static:N``: a static token table distilled from the same weights, model2vec's
  recipe (each vocabulary token alone through the float encoder, PCA to 256
  dimensions, SIF weights by token rank), mean over the first N tokens (0: all);
* ``headline:int8`` / ``headline:static``: the headline alone.

Also prints each variant's encoding time per article (median of 3 passes over the
first 200 texts, one thread).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from bench.report import DATA, median, print_header, require_data
from clustering import embed, encoder_graph
from clustering.assign import AssignParams
from evaluation import calibrate
from evaluation.evaluate import read_jsonl

FLOORS = {"clean": 0.925, "wrapped": 0.925, "compressed_10d": 0.92, "jitter_24h": 0.93}
GRID = tuple(round(0.05 + 0.03 * i, 2) for i in range(20))
DEFAULT = (
    "none",
    "fp32:256",
    "static:0",
    "static:128",
    "headline:static",
    "headline:int8",
    "fp32:96",
    "int8:64",
    "int8:80",
    "int8:96",
    "int8:112",
    "int8:128",
    "int8:256",
)


def float_encoder(directory: Path, max_tokens: int) -> embed.Encoder:
    """The float graph the shipped one is quantised from, on ONNX Runtime."""
    import zipfile

    import onnx
    from safetensors.numpy import load as load_safetensors

    path = directory / "float.onnx"
    if not path.exists():
        with zipfile.ZipFile(embed.model_zip()) as archive:
            onnx.save(encoder_graph.graph(load_safetensors(archive.read("model.safetensors"))), path)
    return embed.Encoder(path, embed.tokenizer(), max_tokens)


def static_table(directory: Path) -> np.ndarray:
    """Every vocabulary token alone ([CLS] token [SEP]) through the float encoder, mean
    pooled, PCA to 256, scaled by SIF weights of its rank (model2vec's distillation)."""
    from sklearn.decomposition import PCA

    path = directory / "static.npy"
    if path.exists():
        return np.load(path)
    encoder = float_encoder(directory, 8)
    vocabulary = encoder.tokenizer.get_vocab()
    cls, sep = vocabulary["[CLS]"], vocabulary["[SEP]"]
    vectors = np.stack(
        [
            encoder.session.run(None, {"input_ids": np.array([cls, token, sep], dtype=np.int64)})[0]
            for token in range(len(vocabulary))
        ]
    )
    table = PCA(n_components=256, svd_solver="full").fit_transform(vectors)
    rank = 1.0 / np.arange(2, len(table) + 2)
    table = table * (1e-4 / (1e-4 + rank / rank.sum()))[:, None]
    np.save(path, table.astype(np.float32))
    return table.astype(np.float32)


def static_embed(table: np.ndarray, max_tokens: int):
    tokenizer = embed.tokenizer()
    tokenizer.no_truncation()
    unknown = tokenizer.get_vocab()["[UNK]"]

    def encode(text: str) -> np.ndarray:
        ids = [i for i in tokenizer.encode(text, add_special_tokens=False).ids if i != unknown]
        ids = ids[:max_tokens] if max_tokens else ids
        if not ids:
            return np.zeros(embed.DIMENSIONS, dtype=np.float16)
        vector = table[ids].mean(0)
        vector = np.pad(vector / np.linalg.norm(vector), (0, embed.DIMENSIONS - len(vector)))  # cosines unchanged
        return vector.astype(np.float16)

    return encode


def encoding(variant: str, directory: Path):
    """(text -> embedding, or None for no embedding; what of an article is encoded)."""
    kind, _, arg = variant.partition(":")
    whole = embed.article_text
    if kind == "none":
        return None, whole
    if kind == "headline":
        inner, _ = encoding("static:0" if arg == "static" else f"int8:{embed.MAX_TOKENS}", directory)
        return inner, lambda title, body: (title or "").strip() or body[:200]
    if kind == "static":
        return static_embed(static_table(directory), int(arg)), whole
    n = int(arg)
    encoder = embed.Encoder.load(max_tokens=n) if kind == "int8" else float_encoder(directory, n)
    return encoder.encode, whole


def score(rows: list[dict], encode, text_of) -> tuple[float, dict[str, float]]:
    cache: dict[str, np.ndarray] = {}

    def embedded(title: str | None, body: str):
        if encode is None:
            return None
        text = text_of(title, body)
        if text not in cache:
            cache[text] = encode(text)
        return cache[text]

    original = embed.embed
    embed.embed = embedded
    try:
        base = AssignParams()
        model, _ = calibrate.fit(rows, base)
        streams = calibrate.streams(rows)
    finally:
        embed.embed = original
    best = None
    for threshold in GRID:
        params = replace(base, model=model, threshold=threshold, merge_threshold=max(threshold, base.merge_threshold))
        f1 = {name: calibrate.online_bcubed(stream, params).f1 for name, stream in streams.items()}
        mean = float(np.mean(list(f1.values())))
        if best is None or mean > best[2]:
            best = (threshold, f1, mean)
    return best


def timing(encode, texts: list[str]) -> float:
    if encode is None:
        return 0.0
    runs = []
    for _ in range(3):
        began = time.perf_counter()
        for text in texts:
            encode(text)
        runs.append(1000 * (time.perf_counter() - began) / len(texts))
    return median(runs)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", default=list(DEFAULT))
    args = parser.parse_args(argv)
    require_data()
    print_header("sentence encoders: quality floors and cost")
    rows = read_jsonl(DATA / "giveme5w1h" / "articles.jsonl")
    print("| encoder | threshold | clean | wrapped | compressed 10 d | jitter 24 h | mean | floors | ms an article |")
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="bench-encoders-") as tmp:
        for variant in args.variants:
            encode, text_of = encoding(variant, Path(tmp))
            threshold, f1, mean = score(rows, encode, text_of)
            held = all(f1[name] >= floor for name, floor in FLOORS.items())
            cost = timing(encode, [text_of(r.get("title"), r.get("text") or "") for r in rows[:200]])
            cells = " | ".join(f"{f1[name]:.4f}" for name in FLOORS)
            print(
                f"| {variant} | {threshold:.2f} | {cells} | {mean:.4f} | {'yes' if held else 'no'} | {cost:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
