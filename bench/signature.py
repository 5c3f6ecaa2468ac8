"""Text → MinHash signature throughput on one core: the service's path against datasketch.

    python -m bench.signature --articles 2000 --runs 5

On the same generated articles (``bench.stream``), pinned to one CPU:

* the service's path, stage by stage: extract (``clustering.extract.extract_text`` with
  the sources' learned templates), normalise (``clustering.normalise.words``), shingle
  (``clustering.fingerprint.shingle_hashes``) and MinHash (the permutation step of
  ``clustering.fingerprint.signature``), then all four in one loop (the goal's row), and
  ``clustering.prepare.prepare`` (which also embeds and vectorises for story assignment);
* datasketch ``MinHash.update`` once per shingle, and ``MinHash.update_batch`` per article,
  on the same normalised tokens (default SHA-1 shingle hashing), both alone and with the
  same extract and normalise in front.

It also checks, on a sample, that the service's signature equals datasketch's bit for bit
(``MinHash.update_batch`` fed the service's 32-bit shingle hashes under the same seed and
``affine32`` scheme). Every figure is the median of ``--runs`` runs after one warm-up run
(the warm-up fills the token-hash cache, as a running service has it filled).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
from datasketch import MinHash
from datasketch.minhash import _fmix

from bench import stream
from bench.report import median, print_header, require_data, spread
from clustering import fingerprint
from clustering.extract import SourceTemplates, extract_text
from clustering.normalise import words
from clustering.prepare import Draft, prepare


def pin_one_core() -> str:
    try:
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return f"pinned to CPU {cpu}"
    except (AttributeError, OSError):
        return "not pinned (no sched_setaffinity)"


def warmed_rows(articles: int, seed: int) -> tuple[SourceTemplates, list[dict]]:
    """``articles`` stream articles, and the templates a running service would have learned
    from a preceding stretch of the same outlets (as many articles again)."""
    corpus = stream.load_corpus()
    templates = SourceTemplates()
    generated = list(stream.articles(corpus, count=articles * 2, seed=seed))
    for a in generated[:articles]:
        templates.learn(a["source"], extract_text(a["text"], a["source"], templates).line_fingerprints)
    return templates, generated[articles:]


def minhash_of(hashes: np.ndarray) -> np.ndarray:
    """The permutation step of ``fingerprint.signature`` alone."""
    if hashes.size == 0:
        return fingerprint.EMPTY_SIGNATURE.copy()
    a, b = fingerprint._PERMUTATIONS
    with np.errstate(over="ignore"):
        return (_fmix(hashes[:, None], 32) * a + b).min(axis=0)


def shingles(tokens: list[str], k: int = fingerprint.SHINGLE_WORDS) -> set[bytes]:
    """Distinct ``k``-word shingles as datasketch is usually fed them: UTF-8 bytes."""
    k = min(k, len(tokens))
    return {" ".join(tokens[i : i + k]).encode() for i in range(len(tokens) - k + 1)} if tokens else set()


def datasketch_update(tokens: list[str]) -> np.ndarray:
    m = MinHash(num_perm=fingerprint.NUM_PERM, seed=fingerprint.SEED, scheme=fingerprint.PERMUTATION_SCHEME)
    for s in shingles(tokens):
        m.update(s)
    return m.hashvalues


def datasketch_update_batch(tokens: list[str]) -> np.ndarray:
    m = MinHash(num_perm=fingerprint.NUM_PERM, seed=fingerprint.SEED, scheme=fingerprint.PERMUTATION_SCHEME)
    m.update_batch(list(shingles(tokens)))
    return m.hashvalues


def verify(tokens_list: list[list[str]]) -> tuple[int, int]:
    """(equal, compared): service signatures against datasketch fed the same shingle hashes."""
    equal = 0
    for tokens in tokens_list:
        hashes = fingerprint.shingle_hashes(tokens)
        m = MinHash(
            num_perm=fingerprint.NUM_PERM, seed=fingerprint.SEED, scheme=fingerprint.PERMUTATION_SCHEME, hashfunc=int
        )
        m.update_batch([int(h) for h in hashes])
        equal += bool(np.array_equal(m.hashvalues.astype(np.uint32), fingerprint.signature(tokens)))
    return equal, len(tokens_list)


def timed(work: Callable[[], object], runs: int) -> list[float]:
    work()  # warm-up
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        seconds.append(time.perf_counter() - started)
    return seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=2000, help="articles for the service's path")
    parser.add_argument("--slow-articles", type=int, default=300, help="articles for datasketch update per shingle")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args(argv)
    require_data()
    print_header("text -> signature, one core")
    print(pin_one_core())
    templates, rows = warmed_rows(args.articles, args.seed)
    n = len(rows)
    extracted = [extract_text(a["text"], a["source"], templates).text for a in rows]
    tokens = [words(t) for t in extracted]
    hashes = [fingerprint.shingle_hashes(t) for t in tokens]
    received = datetime.now(UTC)
    drafts = [
        Draft(a["title"], a["text"], None, a["source"], datetime.fromisoformat(a["published_at"]), received)
        for a in rows
    ]
    mean_words = sum(map(len, tokens)) / n
    print(
        f"{n} articles ({sum(len(a['text']) for a in rows) / n:.0f} characters as posted, {mean_words:.0f} words "
        f"after extraction, {sum(h.size for h in hashes) / n:.0f} distinct 5-word shingles); median of {args.runs} "
        "runs after a warm-up\n"
    )

    def text_to_signature() -> None:
        for a in rows:
            fingerprint.signature(words(extract_text(a["text"], a["source"], templates).text))

    stages = {
        "extract": lambda: [extract_text(a["text"], a["source"], templates) for a in rows],
        "normalise": lambda: [words(t) for t in extracted],
        "shingle": lambda: [fingerprint.shingle_hashes(t) for t in tokens],
        "MinHash (permutations)": lambda: [minhash_of(h) for h in hashes],
    }
    results: dict[str, list[float]] = {name: timed(work, args.runs) for name, work in stages.items()}
    whole = timed(text_to_signature, args.runs)
    prep = timed(lambda: [prepare(d, templates) for d in drafts], args.runs)

    slow = tokens[: args.slow_articles]
    slow_rows = rows[: args.slow_articles]
    m = len(slow)
    ds_update = timed(lambda: [datasketch_update(t) for t in slow], max(1, args.runs // 2))
    ds_batch = timed(lambda: [datasketch_update_batch(t) for t in tokens], args.runs)
    front = timed(lambda: [words(extract_text(a["text"], a["source"], templates).text) for a in slow_rows], args.runs)
    service_hash = timed(lambda: [fingerprint.signature(t) for t in tokens], args.runs)

    def rate(values: list[float], count: int = n) -> list[float]:
        return [count / s for s in values]

    print("| service stage | ms/article | share of text→signature |")
    print("|---|---|---|")
    total = sum(median(v) for v in results.values())
    for name, values in results.items():
        print(f"| {name} | {1000 * median(values) / n:.3f} | {100 * median(values) / total:.0f}% |")
    front_per = median(front) / m
    print("\n| path (one core) | articles/s, median (min-max) |")
    print("|---|---|")
    print(f"| service: extract + normalise + shingle + MinHash (goal >= 10,000) | {spread(rate(whole), 0)} |")
    print(f"| service: clustering.prepare (also embeds and vectorises) | {spread(rate(prep), 0)} |")
    print(f"| service: shingle + MinHash from tokens | {spread(rate(service_hash), 0)} |")
    print(f"| datasketch update_batch from tokens | {spread(rate(ds_batch), 0)} |")
    print(f"| datasketch update per shingle from tokens ({m} articles) | {spread(rate(ds_update, m), 0)} |")
    batch_full = [1 / (front_per + s / n) for s in ds_batch]
    update_full = [1 / (front_per + s / m) for s in ds_update]
    print(f"| datasketch update_batch, text→signature (same extract+normalise) | {spread(batch_full, 0)} |")
    print(f"| datasketch update per shingle, text→signature | {spread(update_full, 0)} |")
    ratio_batch = median(rate(whole)) / median(batch_full)
    ratio_update = median(rate(whole)) / median(update_full)
    print(
        f"\nservice text→signature vs datasketch update_batch: {ratio_batch:.1f}x; vs update per shingle: "
        f"{ratio_update:.1f}x (same articles, same process)"
    )
    equal, compared = verify(tokens[:200])
    print(
        f"bit-for-bit check: {equal}/{compared} service signatures equal datasketch MinHash.update_batch "
        "(seed, affine32, fed the service's shingle hashes)"
    )
    if equal != compared:
        raise SystemExit("signature mismatch")


if __name__ == "__main__":
    main()
