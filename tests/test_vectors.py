"""KeyedVectors: queries against brute force, evaluation, word2vec file I/O and gensim interop."""

import numpy as np
import pytest

from embeddings_jax.eval.analogy import evaluate_word_analogies, read_analogies
from embeddings_jax.eval.word_similarity import evaluate_word_pairs, rankdata, spearman
from embeddings_jax.vectors import KeyedVectors


@pytest.fixture
def kv():
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(200)] + ["king", "queen", "man", "woman", "Paris"]
    return KeyedVectors(words, rng.normal(size=(len(words), 16)).astype(np.float32))


def _brute(kv, pos, neg, topn):
    n = kv.vectors / np.linalg.norm(kv.vectors, axis=1, keepdims=True)
    q = sum(n[kv.key_to_index[w]] for w in pos) - sum(n[kv.key_to_index[w]] for w in neg)
    q = q / (len(pos) + len(neg))
    s = n @ (q / np.linalg.norm(q))
    for w in pos + neg:
        s[kv.key_to_index[w]] = -np.inf
    return [kv.index_to_key[i] for i in np.argsort(-s)[:topn]]


def test_most_similar_matches_brute_force(kv):
    got = kv.most_similar(positive=["king", "woman"], negative=["man"], topn=7)
    assert [w for w, _ in got] == _brute(kv, ["king", "woman"], ["man"], 7)
    assert [w for w, _ in kv.most_similar("w3", topn=5)] == _brute(kv, ["w3"], [], 5)
    sims = [s for _, s in got]
    assert sims == sorted(sims, reverse=True)
    assert len(kv.most_similar("w1", topn=3, restrict_vocab=50)) == 3
    assert all(
        kv.key_to_index[w] < 50 for w, _ in kv.most_similar("w1", topn=10, restrict_vocab=50)
    )
    cm = kv.most_similar_cosmul(positive=["king", "woman"], negative=["man"], topn=3)
    assert len(cm) == 3 and "king" not in [w for w, _ in cm]
    assert kv.similarity("w1", "w1") == pytest.approx(1.0, abs=1e-6)
    assert kv.similarity("w1", "w2") == pytest.approx(kv.similarity("w2", "w1"))


def test_unknown_words_and_bad_queries(kv):
    with pytest.raises(KeyError, match="not in the vocabulary"):
        kv.most_similar("unknownword")
    with pytest.raises(KeyError, match="xyz"):
        kv.most_similar(positive=["king"], negative=["xyz"])
    with pytest.raises(ValueError, match="at least one"):
        kv.most_similar()
    with pytest.raises(KeyError):
        kv["nope"]
    with pytest.raises(ValueError, match="pooling"):
        kv.sentence_vector(["w1"], pooling="median")


def test_doesnt_match_and_sentence_vectors(kv):
    base = kv.get_vector("w5")
    vecs = np.stack([base + 0.01 * i for i in range(3)] + [-base])
    small = KeyedVectors(["a", "b", "c", "odd"], vecs)
    assert small.doesnt_match(["a", "b", "c", "odd", "unknown"]) == "odd"
    np.testing.assert_allclose(small.sentence_vector(["a", "b", "x"]), vecs[:2].mean(0), rtol=1e-6)
    np.testing.assert_allclose(small.sentence_vector(["a", "b"], "sum"), vecs[:2].sum(0), rtol=1e-6)
    np.testing.assert_allclose(small.sentence_vector(["a", "odd"], "max"), vecs[[0, 3]].max(0))
    assert (small.sentence_vector(["x"]) == 0).all()


def test_analogy_evaluation_and_malformed_files(tmp_path):
    # Two clean relations: vec(b) - vec(a) is the same offset for every pair.
    rng = np.random.default_rng(1)
    base = rng.normal(size=(6, 20))
    off = rng.normal(size=20) * 2
    words = [f"a{i}" for i in range(6)] + [f"b{i}" for i in range(6)] + ["noise"]
    kv = KeyedVectors(words, np.vstack([base, base + off, rng.normal(size=(1, 20))]))
    q = tmp_path / "q.txt"
    q.write_text(": rel\nA0 B0 A1 B1\na2 b2 a3 b3\n: gram-x\na4 b4 a5 b5\na1 b1 zz b3\n")
    res = evaluate_word_analogies(kv, q)
    assert res.accuracy == 1.0 and res.n_questions == 4 and res.n_answered == 3
    assert res.semantic == 1.0 and res.syntactic == 1.0
    acc, sections = kv.evaluate_word_analogies(q)
    assert acc == 1.0 and sections[-1]["section"] == "Total accuracy"
    assert len(sections[-1]["correct"]) == 3
    res = evaluate_word_analogies(kv, q, dummy4unknown=True)
    assert res.accuracy == 0.75
    bad = tmp_path / "bad.txt"
    bad.write_text(": s\na b c\n")
    with pytest.raises(ValueError, match="bad.txt:2: expected 4 words"):
        read_analogies(bad)
    bad.write_text("a b c d\n")
    with pytest.raises(ValueError, match="before the first"):
        read_analogies(bad)
    bad.write_text("\n\n")
    with pytest.raises(ValueError, match="no analogy questions"):
        read_analogies(bad)
    with pytest.raises(FileNotFoundError):
        read_analogies(tmp_path / "missing.txt")


def test_word_pairs_spearman(tmp_path, kv):
    p = tmp_path / "pairs.tsv"
    pairs = [("w1", "w2"), ("w1", "w3"), ("w4", "w5"), ("king", "queen"), ("w6", "oov")]
    sims = [kv.similarity(a, b) for a, b in pairs[:4]]
    p.write_text(
        "# comment\n" + "".join(f"{a}\t{b}\t{s}\n" for (a, b), s in zip(pairs, sims + [1.0]))
    )
    r = evaluate_word_pairs(kv, p)
    assert r.spearman == pytest.approx(1.0) and r.pearson == pytest.approx(1.0, abs=1e-6)
    assert r.oov_ratio == pytest.approx(20.0) and r.n_pairs == 4
    np.testing.assert_allclose(rankdata([3, 1, 3, 2]), [3.5, 1, 3.5, 2])
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    p.write_text("a\tb\n")
    with pytest.raises(ValueError, match="pairs.tsv:1"):
        evaluate_word_pairs(kv, p)


@pytest.mark.parametrize("binary", [False, True])
def test_word2vec_format_roundtrip(tmp_path, kv, binary):
    f = tmp_path / ("v.bin" if binary else "v.txt")
    kv.save_word2vec_format(f, binary=binary)
    back = KeyedVectors.load_word2vec_format(f, binary=binary)
    assert back.index_to_key == kv.index_to_key
    np.testing.assert_allclose(back.vectors, kv.vectors, rtol=0 if binary else 1e-6)
    assert len(KeyedVectors.load_word2vec_format(f, binary=binary, limit=10)) == 10
    (tmp_path / "broken.txt").write_text("3 4\na 1 2 3 4\nb 1 2\n")
    with pytest.raises(ValueError, match="line 3"):
        KeyedVectors.load_word2vec_format(tmp_path / "broken.txt")
    with pytest.raises(ValueError, match="whitespace"):
        KeyedVectors(["a b"], np.ones((1, 2))).save_word2vec_format(tmp_path / "x.txt")


@pytest.mark.parametrize("binary", [False, True])
def test_gensim_interop_both_ways(tmp_path, kv, binary):
    gensim_models = pytest.importorskip("gensim.models")
    f = tmp_path / "ours.w2v"
    kv.save_word2vec_format(f, binary=binary)
    g = gensim_models.KeyedVectors.load_word2vec_format(str(f), binary=binary)
    assert g.index_to_key == kv.index_to_key
    for w in ["king", "w7", "Paris"]:
        ours = kv.most_similar(w, topn=5)
        theirs = g.most_similar(w, topn=5)
        assert [a for a, _ in ours] == [a for a, _ in theirs]
        np.testing.assert_allclose([s for _, s in ours], [s for _, s in theirs], atol=1e-5)
    f2 = tmp_path / "theirs.w2v"
    g.save_word2vec_format(str(f2), binary=binary)
    back = KeyedVectors.load_word2vec_format(f2, binary=binary)
    assert back.index_to_key == kv.index_to_key
    np.testing.assert_allclose(back.vectors, kv.vectors, rtol=1e-6, atol=1e-7)
    # Analogy evaluation agrees with gensim's on the same vectors.
    q = tmp_path / "q.txt"
    q.write_text(": s\nking queen man woman\nw1 w2 w3 w4\nw5 w6 w7 w8\n: gram\nw9 w10 w11 w12\n")
    ours = evaluate_word_analogies(kv, q)
    theirs = g.evaluate_word_analogies(str(q))
    assert ours.accuracy == theirs[0]
    assert [len(s["correct"]) for s in ours.sections] == [len(s["correct"]) for s in theirs[1]]


def test_trained_model_vectors_load_in_gensim_with_same_neighbours(tmp_path):
    gensim_models = pytest.importorskip("gensim.models")
    import jax

    from embeddings_jax.data import synthetic
    from embeddings_jax.models.word2vec import Word2Vec

    sents = synthetic.generate_corpus(synthetic.make_world(0), 1500)
    m = Word2Vec(sents, vector_size=16, sg=1, epochs=2, devices=jax.devices()[:1])
    m.wv.save_word2vec_format(tmp_path / "v.bin", binary=True)
    g = gensim_models.KeyedVectors.load_word2vec_format(str(tmp_path / "v.bin"), binary=True)
    for w in ["france", "king", "went"]:
        assert [a for a, _ in m.wv.most_similar(w, topn=5)] == [
            a for a, _ in g.most_similar(w, topn=5)
        ]


# ------------------------------------------------------------------ bad input tables
@pytest.mark.parametrize("restrict_vocab", [-1, 0, 2.5, "10", True])
@pytest.mark.parametrize("query", ["most_similar", "most_similar_cosmul", "similar_by_vector"])
def test_restrict_vocab_must_be_a_positive_integer(kv, query, restrict_vocab):
    arg = kv["w1"] if query == "similar_by_vector" else "w1"
    with pytest.raises(ValueError, match="restrict_vocab must be a positive integer .* or None"):
        getattr(kv, query)(arg, topn=3, restrict_vocab=restrict_vocab)


def test_restrict_vocab_keeps_the_first_words_and_caps_at_the_vocabulary(kv):
    assert kv.most_similar("w1", topn=len(kv), restrict_vocab=len(kv) + 5) == kv.most_similar("w1", topn=len(kv))
    assert {w for w, _ in kv.most_similar("w1", topn=10, restrict_vocab=4)} == {"w0", "w2", "w3"}
    assert len(kv.most_similar("king", topn=len(kv))) == len(kv) - 1  # nothing but the query dropped


@pytest.mark.parametrize("topn", [-1, 2.5, "3"])
def test_topn_must_be_a_non_negative_integer_or_none(kv, topn):
    with pytest.raises(ValueError, match="topn must be a non-negative integer or None"):
        kv.most_similar("w1", topn=topn)
    with pytest.raises(ValueError, match="topn must be a non-negative integer or None"):
        kv.most_similar_cosmul("w1", topn=topn)


def test_topn_none_gives_every_similarity(kv):
    sims = kv.most_similar("w1", topn=None)
    assert isinstance(sims, np.ndarray) and sims.shape == (len(kv),)
    np.testing.assert_allclose(sims, kv.get_normed_vectors() @ kv.get_vector("w1", norm=True), atol=1e-6)
    assert kv.most_similar("w1", topn=None, restrict_vocab=50).shape == (50,)
    assert kv.most_similar_cosmul("w1", topn=None).shape == (len(kv),)


def test_topn_zero_is_empty(kv):
    assert kv.most_similar("w1", topn=0) == [] and kv.most_similar_cosmul("w1", topn=0) == []


@pytest.mark.parametrize("keys, vectors, error, match", [
    ([1, 2], np.ones((2, 3)), ValueError, "keys must be strings"),
    (["a", None], np.ones((2, 3)), ValueError, "keys must be strings"),
    ([b"a", b"b"], np.ones((2, 3)), ValueError, "keys must be strings"),
    ("ab", np.ones((2, 3)), TypeError, "a list of words, got a single string"),
    (["a", "b", "a"], np.ones((3, 3)), ValueError, r"duplicate keys in index_to_key: \['a'\]"),
    (["a", "b"], np.ones((2, 3), np.complex64), ValueError, "real numeric"),
    (["a", "b"], np.array([["x"], ["y"]]), ValueError, "real numeric"),
    (["a", "b"], np.ones((3, 3)), ValueError, r"must be \[len\(keys\), D\]"),
])
def test_bad_keys_and_vectors_are_refused(keys, vectors, error, match):
    with pytest.raises(error, match=match):
        KeyedVectors(keys, vectors)


def test_numpy_string_keys_and_counts(kv):
    small = KeyedVectors(np.array(["a", "b"]), np.eye(2), counts=[5, 3])
    assert small.index_to_key == ["a", "b"] and small.most_similar("a", topn=1)[0][0] == "b"
    with pytest.raises(ValueError, match="one count per key"):
        KeyedVectors(["a", "b"], np.eye(2), counts=[5])


@pytest.mark.parametrize("query, match", [
    (3, "words \\(str\\) or \\[16\\] vectors"),
    (np.ones(5), "words \\(str\\) or \\[16\\] vectors"),
    ([np.ones((2, 16))], "words \\(str\\) or \\[16\\] vectors"),
])
def test_most_similar_refuses_what_is_neither_a_word_nor_a_vector(kv, query, match):
    with pytest.raises(ValueError, match=match):
        kv.most_similar(query)
    with pytest.raises(KeyError, match="look up a word"):
        kv[3]


# ------------------------------------------------------------------ files
@pytest.mark.parametrize("dim", [1, 2, 16])
def test_loading_with_the_wrong_binary_flag_is_an_error(tmp_path, dim):
    rng = np.random.default_rng(4)
    small = KeyedVectors([f"w{i}" for i in range(30)], rng.normal(size=(30, dim)))
    text, binary = tmp_path / "v.txt", tmp_path / "v.bin"
    small.save_word2vec_format(text)
    small.save_word2vec_format(binary, binary=True)
    with pytest.raises(ValueError, match="text format .* load it with binary=False"):
        KeyedVectors.load_word2vec_format(text, binary=True)
    with pytest.raises(ValueError, match="binary=True"):
        KeyedVectors.load_word2vec_format(binary, binary=False)


@pytest.mark.parametrize("content, kwargs, match", [
    (b"", {}, "first line must be"),
    (b"3 4 5\n", {}, "first line must be"),
    (b"3\n", {}, "first line must be"),
    (b"-1 4\n", {}, "vocabulary size >= 0 and a dimension > 0"),
    (b"2 0\n", {}, "vocabulary size >= 0 and a dimension > 0"),
    (b"100000 300\na 1\n", {}, "truncated or the header is wrong"),
    (b"1 2\na 1 x\n", {}, "line 2: could not convert"),
    (b"1 2\na 1 2\n", {"limit": -1}, "limit must be a non-negative integer"),
    (b"1 2\na 1 2\n", {"limit": 1.5}, "limit must be a non-negative integer"),
    (b"1 2\n\xff\xfe 1 2\n", {}, "not valid utf8"),
])
def test_malformed_word2vec_files(tmp_path, content, kwargs, match):
    f = tmp_path / "bad.txt"
    f.write_bytes(content)
    with pytest.raises(ValueError, match=match):
        KeyedVectors.load_word2vec_format(f, **kwargs)


@pytest.mark.parametrize("binary", [False, True])
def test_save_word2vec_format_is_atomic(tmp_path, kv, binary):
    f = tmp_path / "v.w2v"
    kv.save_word2vec_format(f, binary=binary)
    before = f.read_bytes()
    unencodable = KeyedVectors(["fine", "bad\ud800"], np.ones((2, 16)))  # fails after the first row
    with pytest.raises(UnicodeEncodeError):
        unencodable.save_word2vec_format(f, binary=binary)
    assert f.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["v.w2v"]
    assert KeyedVectors.load_word2vec_format(f, binary=binary).index_to_key == kv.index_to_key
