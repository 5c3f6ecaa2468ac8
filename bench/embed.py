"""What the sentence encoder costs an article, at the shipped length and beside it.

    python -m bench.embed --articles 60 --runs 5

Encodes the titles and bodies of ``--articles`` labelled articles
(``../shared/data/giveme5w1h``, read in place) with the shipped encoder
(``clustering.embed``: int8 on ONNX Runtime, one thread) truncated to ``MAX_TOKENS`` and
to half and twice that, the lengths taking turns in each run so all see the same machine
load. Prints, per length, the median over runs of the milliseconds an article takes,
and each length's ratio to the shipped one; then what tokenising costs the shipped
encoder, the whole text against only its first words (``Encoder._token_ids``), taking
turns the same way.
"""

from __future__ import annotations

import argparse
import time

from bench.report import DATA, median, print_header, require_data
from clustering import embed
from evaluation.evaluate import read_jsonl


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=60)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    require_data()
    rows = read_jsonl(DATA / "giveme5w1h" / "articles.jsonl")[: args.articles]
    texts = [embed.article_text(row.get("title"), row.get("text") or "") for row in rows]
    lengths = (embed.MAX_TOKENS // 2, embed.MAX_TOKENS, embed.MAX_TOKENS * 2)
    encoders = {n: embed.Encoder.load(max_tokens=n) for n in lengths}
    print_header(
        f"sentence encoder ({embed.EMBEDDING_SCHEME['runtime']}): {len(texts)} articles, "
        f"{args.runs} runs, median ms per article"
    )
    timings: dict[int, list[float]] = {n: [] for n in lengths}
    for encoder in encoders.values():
        encoder.encode(texts[0])  # warm-up
    for _ in range(args.runs):
        for n, encoder in encoders.items():
            start = time.perf_counter()
            for text in texts:
                encoder.encode(text)
            timings[n].append(1000 * (time.perf_counter() - start) / len(texts))
    shipped = median(timings[embed.MAX_TOKENS])
    for n in lengths:
        mark = " (shipped)" if n == embed.MAX_TOKENS else ""
        print(
            f"{n:>4} tokens{mark}: {median(timings[n]):7.2f} ms an article, ratio to shipped "
            f"{median(timings[n]) / shipped:.2f}"
        )
    shipped_encoder = encoders[embed.MAX_TOKENS]
    ways = {"the whole text": shipped_encoder._tokenise, "its first words (shipped)": shipped_encoder._token_ids}
    tokenising: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(args.runs):
        for name, tokenise in ways.items():
            start = time.perf_counter()
            for text in texts:
                tokenise(text)
            tokenising[name].append(1000 * (time.perf_counter() - start) / len(texts))
    for name in ways:
        print(f"tokenising {name}: {median(tokenising[name]):.3f} ms an article")


if __name__ == "__main__":
    main()
