"""What the sentence encoder costs an article, at the shipped length and at half of it.

    python -m bench.embed --articles 60 --runs 5

Encodes the titles and bodies of ``--articles`` labelled articles
(``../shared/data/giveme5w1h``, read in place) with ``clustering.embed`` truncated to
``MAX_TOKENS`` and to half of that, the two lengths taking turns in each run so both see
the same machine load. Prints, per length, the median over runs of the milliseconds an
article takes, and the ratio of the medians.
"""

from __future__ import annotations

import argparse
import time

from tokenizers import Tokenizer

from app.evaluate import read_jsonl
from bench.report import DATA, median, print_header, require_data
from clustering import embed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=60)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    require_data()
    rows = read_jsonl(DATA / "giveme5w1h" / "articles.jsonl")[: args.articles]
    texts = [embed.article_text(row.get("title"), row.get("text") or "") for row in rows]
    shipped = embed.encoder()
    lengths = (embed.MAX_TOKENS // 2, embed.MAX_TOKENS)
    shorter = embed.Encoder(shipped.tensors, Tokenizer.from_str(shipped.tokenizer.to_str()), lengths[0])
    encoders = dict(zip(lengths, (shorter, shipped)))
    print_header(f"sentence encoder: {len(texts)} articles, {args.runs} runs, median ms per article")
    timings: dict[int, list[float]] = {n: [] for n in lengths}
    for _ in range(args.runs):
        for n, encoder in encoders.items():
            start = time.perf_counter()
            for text in texts:
                encoder.encode(text)
            timings[n].append(1000 * (time.perf_counter() - start) / len(texts))
    for n in lengths:
        print(f"{n:>4} tokens: {median(timings[n]):7.1f} ms an article")
    print(f"ratio {lengths[1]} / {lengths[0]} tokens: {median(timings[lengths[1]]) / median(timings[lengths[0]]):.2f}")


if __name__ == "__main__":
    main()
