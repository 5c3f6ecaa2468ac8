import numpy as np
import pytest
import scipy.sparse as sp

from clustering.vectorise import (
    DocumentFrequencies,
    PackedFeatures,
    cosine,
    features,
    is_headline,
    normalise_rows,
    term_indices,
)


def test_rows_are_normalised_whatever_rows_are_empty():
    matrix = sp.csr_matrix(np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 0.0], [1.0, 0.0], [0.0, 0.0]]))
    normalised = normalise_rows(matrix).toarray()
    assert np.allclose(normalised, [[0, 0], [0.6, 0.8], [0, 0], [1, 0], [0, 0]])


def test_matrix_of_empty_rows_stays_empty():
    assert normalise_rows(sp.csr_matrix((3, 4))).nnz == 0


def test_fields_are_featurised_apart():
    feats = features("Flood closes bridge", "The Alder River flooded the town of Port Calder on Monday.")
    assert feats.title.nnz == 3
    assert feats.names.nnz > 0
    assert cosine(feats.title, feats.title) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "tokens",
    [
        [],
        ["flood"],
        ["flood", "bridge", "flood", "calder", "flood", "bridge"],
        ["kim jong un", "président", "日本", "", "a" * 300, "naïve", "zürich"],
        ["tzir&}ke"],  # MurmurHash3 -2**31, whose absolute value overflows 32 bits
        [f"term{k}" for k in range(5000)],  # enough to collide in 2**20
    ],
)
def test_terms_are_hashed_and_counted_as_scikit_learns_feature_hasher_does(tokens):
    from sklearn.feature_extraction import FeatureHasher

    from clustering.vectorise import N_FEATURES, _tf

    hasher = FeatureHasher(n_features=N_FEATURES, input_type="string", alternate_sign=False)
    counts = hasher.transform([tokens]).tocsr()
    expected = sp.csr_matrix(
        ((1.0 + np.log(counts.data)).astype(np.float32), counts.indices, counts.indptr), counts.shape
    )
    expected = normalise_rows(expected)
    got = _tf(tokens)
    assert got.shape == expected.shape
    assert got.indices.tolist() == expected.indices.tolist()
    assert np.array_equal(got.data, expected.data)
    assert term_indices(tokens[:100]).tolist() == [hasher.transform([[t]]).indices[0] for t in tokens[:100]]


def test_a_term_without_a_utf8_form_is_refused():
    with pytest.raises(UnicodeEncodeError):
        term_indices(["\ud800"])


def test_rare_terms_weigh_more_than_common_ones():
    df = DocumentFrequencies()
    common, rare = features(None, "river").body.indices, features(None, "calder").body.indices
    for _ in range(10):
        df.add(common)
    df.add(rare)
    assert df.idf(rare)[0] > df.idf(common)[0]


@pytest.mark.parametrize(
    ("title", "body"),
    [
        (
            "Harbour bridge closes for repairs",
            "The Harbour Bridge in Valleyport closed on Monday. Mayor Ines Duarte said repairs take a week.",
        ),
        (None, "Floodwater reached the old town of Valleyport overnight."),
        ("", ""),
    ],
)
def test_packed_features_unpack_to_the_identical_vectors(title, body):
    original = features(title, body)
    packed = original.pack()
    restored = packed.unpack()
    for name in ("title", "body", "names"):
        for b in (restored.field(name), packed.field(name)):
            a = original.field(name)
            assert a.shape == b.shape
            assert np.array_equal(a.indices, b.indices) and np.array_equal(a.data, b.data)
    assert np.array_equal(packed.terms, original.terms)


def test_packed_features_keep_the_embedding():
    embedding = np.linspace(-1, 1, 384).astype(np.float16)
    restored = features("Flood closes bridge", "The Alder River flooded Port Calder.", embedding).pack().unpack()
    assert restored.embedding is embedding


def test_a_body_that_repeats_the_headline_is_left_empty():
    feats = features("Flood closes Riverside Bridge", "Flood closes Riverside Bridge")
    assert feats.body.nnz == 0
    assert feats.title.nnz == 4
    assert is_headline(feats)


def test_a_body_with_words_of_its_own_is_kept():
    feats = features("Flood closes Riverside Bridge", "Flood closes Riverside Bridge in Port Calder")
    assert feats.body.nnz == 6
    assert not is_headline(feats)


def test_an_article_without_a_title_is_not_a_headline():
    assert not is_headline(features(None, "Flood closes Riverside Bridge"))


def test_inflected_titles_of_one_event_meet():
    a = features("Court indicts harbour pilot over ferry collision", "")
    b = features("Harbour pilot indicted after ferry collided", "")
    assert cosine(a.title, b.title) > 0.7


def test_names_are_kept_as_written_and_body_words_are_stemmed():
    feats = features("Storm closes port", "Officials said Captain Ferries of Skye Harbour cancelled the ferries.")
    assert set(term_indices(["ferries"])) <= set(feats.names.indices)
    assert set(term_indices(["ferri"])) <= set(feats.body.indices)
    assert not set(term_indices(["ferries"])) & set(feats.body.indices)


STORED = [
    features("Flood closes Riverside Bridge", "The Alder River rose two metres overnight in Port Calder."),
    features(None, "Mayor Helen Okafor said the bridge would stay shut until Thursday."),
    features("Orchestra names conductor", ""),
]


def test_many_stored_forms_read_back_as_each_alone():
    blobs = [f.pack().to_bytes() for f in STORED]
    embeddings = np.arange(len(blobs) * 4, dtype=np.float16).reshape(len(blobs), 4)
    for many, blob, embedding in zip(PackedFeatures.many_from_bytes(blobs, embeddings), blobs, embeddings):
        one = PackedFeatures.from_bytes(blob)
        assert (many.indices == one.indices).all() and (many.data == one.data).all() and many.ends == one.ends
        assert (many.embedding == embedding).all()


@pytest.mark.parametrize(
    "bad",
    [
        b"\x00" * 8,  # shorter than the header
        b"\x00" * 13,  # not 12 + 8n bytes
        np.array([2, 1, 1], dtype="<i4").tobytes() + b"\x00" * 8,  # says 2 terms, holds 1
        np.array([1, 1, 0], dtype="<i4").tobytes() + b"\x00" * 8,  # title ends after the body
        np.array([1, 0, 1, -5], dtype="<i4").tobytes() + b"\x00" * 4,  # a negative term index
        np.array([1, 0, 1, 1 << 30], dtype="<i4").tobytes() + b"\x00" * 4,  # beyond the hashed space
    ],
)
def test_a_stored_form_that_cannot_be_features_is_refused_among_many(bad):
    good = STORED[0].pack().to_bytes()
    with pytest.raises(ValueError):
        PackedFeatures.many_from_bytes([good, bad, good])
