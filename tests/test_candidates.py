"""clustering.candidates: near-duplicate candidates from LSH, confirmed by Jaccard."""

from __future__ import annotations

import numpy as np
import pytest
from datasketch import MinHashLSH

from clustering.candidates import DUPLICATE_JACCARD, LSH_THRESHOLD, Candidate, NearDuplicateIndex, StoryPostings
from clustering.fingerprint import EMPTY_SIGNATURE, NUM_PERM, jaccard, signature, to_minhash
from clustering.normalise import words

REPORT = (
    "The Riverside Bridge in Port Calder was closed to traffic on Tuesday after the Alder River rose more than "
    "two metres overnight, city officials said. Engineers from the Calder Transport Authority inspected the "
    "bridge supports at dawn and found debris packed against two of the piers. Mayor Helen Okafor told "
    "reporters that the closure would last at least until Thursday, when the water level is expected to fall. "
    "Residents of the low-lying Millbrook district were asked to move their cars to higher ground."
)
COPY = REPORT.replace("inspected the bridge supports", "examined the bridge supports")
# A copy further from COPY than REPORT is: two other words changed.
LOOSE_COPY = REPORT.replace("packed", "jammed").replace("reporters", "journalists")
UNRELATED = (
    "The owners of the Tessel paper mill in Vellmont said on Monday that the plant will close in June, ending "
    "more than a century of papermaking on the river. Northgate Packaging blamed falling demand for printed "
    "catalogues and the rising price of energy. About 300 workers will lose their jobs, and union officials "
    "called the closure a hammer blow for the town. The company said it would offer retraining and help staff "
    "find work at its two other sites."
)


def sig(text: str):
    return signature(words(text))


@pytest.fixture
def index() -> NearDuplicateIndex:
    built = NearDuplicateIndex()
    built.add(1, sig(REPORT))
    built.add(2, sig(UNRELATED))
    return built


def test_copy_of_an_indexed_article_is_found(index):
    found = index.query(sig(COPY))
    assert [c.article_id for c in found] == [1]
    assert found[0].similarity >= DUPLICATE_JACCARD


def test_candidate_similarity_is_the_estimated_jaccard(index):
    (found,) = index.query(sig(COPY))
    assert found == Candidate(1, jaccard(sig(COPY), sig(REPORT)))


def test_held_low_bits_estimate_the_full_signatures_jaccard():
    """Values that differ agree in their low 16 bits only by chance (the module
    docstring): the estimate is the full one, at most a chance value above it."""
    rng = np.random.default_rng(7)
    base = rng.integers(0, 2**32, size=(400, NUM_PERM), dtype=np.uint32)
    other = base.copy()
    apart = rng.random((400, NUM_PERM)) < rng.uniform(0.05, 0.6, size=(400, 1))
    other[apart] = rng.integers(0, 2**32, size=int(apart.sum()), dtype=np.uint32)
    other[:, 0] = base[:, 0] + 2**16  # differs in its high bits only: counted equal when held
    index = NearDuplicateIndex(threshold=0.01)
    index.add_many(np.arange(400), base)
    compared = gained = 0
    for k in range(400):
        full = jaccard(base[k], other[k])
        found = {c.article_id: c.similarity for c in index.query(other[k], min_similarity=0.0)}
        if k in found:
            assert full + 1 / NUM_PERM <= found[k] <= full + 3 / NUM_PERM
            compared += 1
            gained += found[k] > full + 1 / NUM_PERM
    assert compared > 350 and gained <= 2


def test_unrelated_text_finds_no_candidate():
    index = NearDuplicateIndex()
    index.add(1, sig(REPORT))
    assert index.query(sig(UNRELATED)) == []


def test_candidates_are_ordered_most_similar_first():
    index = NearDuplicateIndex()
    index.add(10, sig(LOOSE_COPY))
    index.add(20, sig(REPORT))
    found = index.query(sig(COPY))
    assert [c.article_id for c in found] == [20, 10]
    assert found[0].similarity > found[1].similarity


def test_min_similarity_drops_weaker_candidates():
    index = NearDuplicateIndex()
    index.add(10, sig(LOOSE_COPY))
    index.add(20, sig(REPORT))
    loose = jaccard(sig(COPY), sig(LOOSE_COPY))
    assert loose < jaccard(sig(COPY), sig(REPORT))
    found = index.query(sig(COPY), min_similarity=loose + 1e-9)
    assert [c.article_id for c in found] == [20]


def test_removed_article_is_no_longer_found(index):
    index.remove(1)
    assert index.query(sig(COPY)) == []
    assert 1 not in index
    assert len(index) == 1


def test_removing_an_unknown_article_is_a_no_op(index):
    index.remove(99)
    assert len(index) == 2


def test_empty_signature_is_never_indexed():
    index = NearDuplicateIndex()
    index.add(1, EMPTY_SIGNATURE.copy())
    assert 1 not in index
    assert len(index) == 0


def test_empty_signature_query_finds_nothing(index):
    index.add(3, sig(""))
    assert index.query(EMPTY_SIGNATURE.copy()) == []


def test_query_on_an_empty_index_finds_nothing():
    assert NearDuplicateIndex().query(sig(REPORT)) == []


def test_adding_an_indexed_id_again_keeps_the_first_signature(index):
    index.add(1, sig(UNRELATED))
    assert [c.article_id for c in index.query(sig(COPY))] == [1]


def test_index_reports_membership_and_size(index):
    assert 1 in index and 2 in index
    assert 3 not in index
    assert len(index) == 2


def test_membership_follows_adds_removals_sorting_and_compaction_as_a_set_would():
    rng = np.random.default_rng(3)
    index, held = NearDuplicateIndex(), set()
    for step in range(12):
        ids = rng.integers(0, 20_000, size=int(rng.integers(1, 3000)))
        signatures = rng.integers(1, 2**32, size=(len(ids), NUM_PERM), dtype=np.uint32)
        if step % 3 == 0:
            index.add_many(ids, signatures)  # a bulk add
        else:
            for article_id, values in zip(ids.tolist(), signatures):
                index.add(article_id, values)
        held |= set(ids.tolist())
        for article_id in rng.choice(sorted(held), size=len(held) // 3, replace=False).tolist():
            index.remove(article_id)
            held.discard(article_id)
        index.remove(10**9)  # never added
        assert len(index) == len(held) and set(index) == held
        probe = rng.integers(0, 20_000, size=500).tolist()
        assert [a in index for a in probe] == [a in held for a in probe]


def test_default_threshold_is_the_lsh_threshold():
    assert NearDuplicateIndex().threshold == LSH_THRESHOLD


@pytest.mark.parametrize("threshold", [0.0, 1.0, -0.2, 1.5])
def test_threshold_outside_zero_one_is_rejected(threshold):
    with pytest.raises(ValueError):
        NearDuplicateIndex(threshold=threshold)


def _planted_signatures(n: int, seed: int) -> np.ndarray:
    """Signatures in families: each is a random base with a random share of its values
    redrawn, so pairs lie at every Jaccard from ~0 to 1."""
    rng = np.random.default_rng(seed)
    bases = rng.integers(0, 2**32, size=(n // 5 + 1, NUM_PERM), dtype=np.uint32)
    family = rng.integers(0, len(bases), size=n)
    out = bases[family].copy()
    redraw = rng.random((n, NUM_PERM)) < rng.random((n, 1))
    out[redraw] = rng.integers(0, 2**32, size=int(redraw.sum()), dtype=np.uint32)
    return out


def _datasketch_pairs(signatures: np.ndarray, ids: list[int], queries: np.ndarray) -> list[set[int]]:
    lsh = MinHashLSH(threshold=LSH_THRESHOLD, num_perm=NUM_PERM)
    for article_id in ids:
        lsh.insert(article_id, to_minhash(signatures[article_id]))
    return [set(lsh.query(to_minhash(q))) for q in queries]


def test_band_collisions_are_datasketchs_with_removals_and_compaction():
    signatures = _planted_signatures(3000, seed=7)
    index = NearDuplicateIndex()
    for article_id in range(1500):  # one at a time, then in bulk
        index.add(article_id, signatures[article_id])
    index.add_many(np.arange(1500, 3000), signatures[1500:])
    removed = set(range(0, 3000, 2))  # enough to compact the arrays
    for article_id in removed:
        index.remove(article_id)
    kept = sorted(set(range(3000)) - removed)
    expected = _datasketch_pairs(signatures, kept, signatures[:300])
    for query, want in zip(signatures[:300], expected):
        found = {c.article_id for c in index.query(query, min_similarity=0.0)}
        assert found == want
    assert len(index) == len(kept) and index.signatures_.shape[0] < 3000


def test_bulk_and_one_by_one_indexes_answer_alike():
    signatures = _planted_signatures(800, seed=11)
    one_by_one, bulk = NearDuplicateIndex(), NearDuplicateIndex()
    for article_id, values in enumerate(signatures):
        one_by_one.add(article_id, values)
    bulk.add_many(np.arange(800), signatures)
    for query in signatures[:100]:
        assert one_by_one.query(query) == bulk.query(query)


LIVE = np.ones(100, dtype=bool)


def found(postings: StoryPostings, terms: list[int], live=LIVE) -> list[list[int]]:
    position, stories = postings.lookup(np.array(terms), live)
    return [stories[position == k].tolist() for k in range(len(terms))]


def test_postings_find_each_terms_stories_in_the_terms_order():
    postings = StoryPostings()
    postings.add(np.array([5, 9]), 1)
    postings.add(np.array([9]), 2)
    postings.add_pairs(np.array([9, 7]), np.array([3, 3]))
    assert found(postings, [9, 5, 4]) == [[1, 2, 3], [1], []]


def test_a_pair_posted_twice_counts_once():
    postings = StoryPostings()
    postings.add_pairs(np.array([9, 9]), np.array([1, 1]))
    postings.add(np.array([9]), 1)
    assert found(postings, [9]) == [[1]]


def test_stories_that_left_are_never_found_and_compacting_drops_them():
    postings = StoryPostings()
    postings.add_pairs(np.array([9, 9, 9]), np.array([1, 2, 3]))
    live = LIVE.copy()
    live[2] = False
    assert found(postings, [9], live) == [[1, 3]]
    postings.compact(live)
    assert len(postings) == 2
    assert postings.as_dict(LIVE) == {9: {1, 3}}


def test_postings_pending_and_merged_answer_as_a_set_model_does():
    rng = np.random.default_rng(3)
    postings, model = StoryPostings(), {}
    live = np.ones(60, dtype=bool)
    for step in range(400):
        story, terms = int(rng.integers(60)), rng.integers(0, 40, size=int(rng.integers(1, 6)))
        if step % 7 == 0:  # a bulk add, merged at once
            postings.add_pairs(terms, np.full(len(terms), story))
        else:  # one story, pending until enough wait
            postings.add(terms, story)
        for term in terms.tolist():
            model.setdefault(term, set()).add(story)
        if step % 50 == 49:
            live[rng.integers(60, size=3)] = False
        if step % 120 == 119:
            postings.compact(live)
        asked = rng.permutation(45)[:12].tolist()
        want = [sorted(s for s in model.get(t, ()) if live[s]) for t in asked]
        assert found(postings, asked, live) == want


def _rarest_by_counting_every_term(model: dict, terms: list[int], live: np.ndarray, budget: int) -> list[list[int]]:
    held = [sorted(s for s in model.get(t, ()) if live[s]) for t in terms]
    order = sorted((len(h), k) for k, h in enumerate(held) if h)  # fewest first, ties in the order asked
    taken, total = set(), 0
    for n, k in order:
        if taken and total + n > budget:
            break
        taken.add(k)
        total += n
    return [held[k] if k in taken else [] for k in range(len(terms))]


def _taken(postings: StoryPostings, terms: list[int], live: np.ndarray, budget: int, left: int) -> list[list[int]]:
    position, stories = postings.rarest(np.array(terms, dtype=np.int64), live, budget, left)
    return [sorted(stories[position == k].tolist()) for k in range(len(terms))]


@pytest.mark.parametrize("budget", [1, 5, 20, 80])
def test_the_rarest_terms_are_those_counting_every_term_takes(budget):
    # Terms shared by few to all of 200 stories, stories leaving, pairs pending and
    # merged: reading terms in rounds, and stopping once the terms read settle it, takes
    # exactly the terms (and stories) that counting every term takes.
    rng = np.random.default_rng(budget)
    postings, model, left = StoryPostings(), {}, 0
    live = np.ones(200, dtype=bool)
    for step in range(300):
        story = int(rng.choice(np.flatnonzero(live)))  # as in the index, only a story in it is posted
        terms = np.unique(rng.zipf(1.3, size=int(rng.integers(1, 8))) % 60)
        if step % 5 == 0:
            postings.add_pairs(terms, np.full(len(terms), story))
        else:
            postings.add(terms, story)
        for term in terms.tolist():
            model.setdefault(term, set()).add(story)
        if step % 30 == 29:
            gone = rng.integers(200, size=4)
            left += int(live[gone].sum())
            live[gone] = False
        if step % 100 == 99:
            postings.compact(live)
            left = 0
        asked = rng.permutation(64)[: int(rng.integers(1, 15))].tolist()
        assert _taken(postings, asked, live, budget, left) == _rarest_by_counting_every_term(model, asked, live, budget)


def test_no_terms_take_nothing():
    position, stories = StoryPostings().rarest(np.array([], dtype=np.int64), LIVE, 10, 0)
    assert len(position) == len(stories) == 0


def test_story_ids_beyond_32_bits_are_refused():
    with pytest.raises(ValueError):
        StoryPostings().add(np.array([1]), 1 << 32)


def test_a_lookup_finds_merged_and_pending_pairs_of_live_stories_only():
    postings = StoryPostings()
    postings.add_pairs(np.array([9, 9, 9, 7]), np.array([1, 2, 3, 1]))
    postings.add(np.array([9, 5]), 4)  # pending, not merged yet
    live = LIVE.copy()
    live[2] = False
    assert found(postings, [9, 7, 5, 4], live) == [[1, 3, 4], [1], [4], []]


def test_room_for_more_signatures_grows_by_an_eighth_not_twofold():
    index = NearDuplicateIndex()
    signatures = _planted_signatures(3000, seed=5)
    index.add_many(np.arange(2000), signatures[:2000])
    assert len(index.ids_) == 2000  # a bulk load takes what it needs
    for article_id in range(2000, 2300):
        index.add(article_id, signatures[article_id])
    assert len(index.ids_) == 2000 + 2000 // 8 + 2250 // 8
    assert index.query(signatures[2100])[0].article_id == 2100
