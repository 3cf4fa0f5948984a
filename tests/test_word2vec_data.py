"""Vocabulary, corpora, subsampling and negative-sampling distributions (statistical checks)."""

import gzip

import jax
import numpy as np
import pytest

from embeddings_jax.data import synthetic, text
from embeddings_jax.data.vocab import build_vocab
from embeddings_jax.ops import sampling


def test_vocab_counts_sorting_and_pruning():
    sents = [["b", "a", "a", "c"], ["a", "b", "d"], ["c", "e"]]
    v = build_vocab(sents, min_count=2)
    assert v.words == ["a", "b", "c"]  # by count, ties in first-seen order
    assert v.counts.tolist() == [3, 2, 2] and v.raw_words == 9 and v.num_sentences == 3
    assert build_vocab(sents, min_count=1, max_final_vocab=2).words == [
        "a"
    ]  # gensim raises min_count
    corpus = v.encode(sents)
    assert corpus.ids.tolist() == [1, 0, 0, 2, 0, 1, 2]
    assert corpus.sentence_ids.tolist() == [0, 0, 0, 0, 1, 1, 2]
    assert corpus.raw_words == 9
    # max_vocab_size prunes rare words while counting, like gensim.
    many = [[f"w{i}" for i in range(50)] + ["x"] * 10]
    assert "x" in build_vocab(many, min_count=1, max_vocab_size=20)


def test_max_vocab_size_prunes_the_words_gensim_prunes():
    gensim = pytest.importorskip("gensim")
    rng = np.random.default_rng(0)
    sents = [[f"w{int(i)}" for i in rng.zipf(1.3, size=12) % 400] for _ in range(300)]
    keep_w7 = lambda word, count, min_count: 2 if word == "w7" else 0
    for max_size, rule in [(60, None), (150, None), (60, keep_w7)]:
        theirs = gensim.models.Word2Vec(vector_size=4, min_count=1, max_vocab_size=max_size)
        theirs.build_vocab(sents, trim_rule=rule)
        ours = build_vocab(sents, min_count=1, max_vocab_size=max_size, trim_rule=rule)
        assert dict(zip(ours.words, ours.counts.tolist())) == {
            w: theirs.wv.get_vecattr(w, "count") for w in theirs.wv.index_to_key}


def test_vocab_bad_input():
    with pytest.raises(ValueError, match="empty"):
        build_vocab([], min_count=1)
    with pytest.raises(ValueError, match="empty"):
        build_vocab([[], []], min_count=1)
    with pytest.raises(ValueError, match="min_count=5 removed every word"):
        build_vocab([["a", "b", "a"]], min_count=5)
    with pytest.raises(TypeError, match="list of tokens"):
        build_vocab(["a sentence as a string"], min_count=1)


def test_keep_probabilities_match_gensim_formula():
    counts = np.array([10_000, 1_000, 100, 10, 1])
    p = sampling.keep_probabilities(counts, 1e-3)
    t = 1e-3 * counts.sum()
    expected = np.minimum(1.0, (np.sqrt(counts / t) + 1) * t / counts)
    np.testing.assert_allclose(p, expected)
    assert (sampling.keep_probabilities(counts, 0) == 1).all()
    np.testing.assert_allclose(sampling.keep_probabilities(counts, 50)[0], (np.sqrt(200) + 1) / 200)


def test_on_device_subsampling_frequency_matches_formula():
    """The step's keep decision: empirical keep rate per word within 5 standard errors."""
    from embeddings_jax.models import word2vec as S

    counts = np.array([5000, 800, 300, 60, 20])
    keep = sampling.keep_probabilities(counts, 1e-2).astype(np.float32)
    c = 4096
    cfg = S.StepConfig(True, False, 1, 2, True, c, 1)
    ids = jax.numpy.asarray(np.tile(np.arange(5, dtype=np.int32), c // 5 + 1)[:c])
    tables = {"keep": keep, "accept": np.ones(5, np.float32), "alias": np.arange(5, dtype=np.int32)}
    params = {"syn0": np.zeros((5, 4), np.float32), "syn1neg": np.zeros((5, 4), np.float32)}
    tables, params = jax.tree.map(jax.numpy.asarray, (tables, params))
    f = jax.jit(
        lambda k: S.chunk_updates(
            params, tables, ids, jax.numpy.zeros(c, jax.numpy.int32), k, 0.0, cfg
        )
    )
    kept = np.zeros(5)
    n = 40
    for i in range(n):
        upd, stats = f(jax.random.key(i))
        rows = np.asarray(upd["syn0"][0])[: int(stats[0])]
        kept += np.bincount(rows, minlength=5)
    trials = n * np.bincount(np.asarray(ids), minlength=5)
    rate = kept / trials
    se = np.sqrt(keep * (1 - keep) / trials) + 1e-9
    assert (np.abs(rate - keep) <= 5 * se + 1e-6).all(), (rate, keep)


def test_alias_sampling_matches_unigram_power_distribution():
    counts = np.array([1000, 400, 90, 30, 7, 1])
    probs = sampling.unigram_weights(counts, 0.75)
    np.testing.assert_allclose(probs, counts**0.75 / (counts**0.75).sum())
    accept, alias = sampling.build_alias_table(probs)
    np.testing.assert_allclose(sampling.alias_probabilities(accept, alias), probs, atol=1e-6)
    n = 200_000
    draws = np.asarray(sampling.alias_sample(jax.random.key(0), accept, alias, (n,)))
    freq = np.bincount(draws, minlength=6) / n
    se = np.sqrt(probs * (1 - probs) / n)
    assert (np.abs(freq - probs) < 5 * se).all(), (freq, probs)
    # Chi-square goodness of fit with 5 degrees of freedom (p > 0.001 <=> stat < 20.5).
    chi2 = (((freq - probs) * n) ** 2 / (probs * n)).sum()
    assert chi2 < 20.5


def test_read_sentences_plain_gz_and_split(tmp_path):
    p = tmp_path / "c.txt.gz"
    with gzip.open(p, "wt") as f:
        f.write("Hello World\n\n" + " ".join(["x"] * 25) + "\n")
    s = text.read_sentences(p, lower=True, max_sentence_length=10)
    assert s[0] == ["hello", "world"] and [len(x) for x in s[1:]] == [10, 10, 5]
    with pytest.raises(FileNotFoundError):
        text.read_sentences(tmp_path / "missing.txt")


def test_real_corpora_load(shared_data):
    shared_data("ptb")
    shared_data("brown")
    ptb = text.load_ptb("valid")
    assert len(ptb) == 3370 and sum(map(len, ptb)) == 70390
    brown = text.load_brown()
    assert sum(map(len, brown)) == 1_161_192
    assert brown[0][:4] == ["the", "fulton", "county", "grand"]
    assert all("/" not in w or w.count("/") < 2 for w in brown[0])
    with pytest.raises(ValueError, match="split"):
        text.load_ptb("dev")


def test_synthetic_world_and_analogy_file(tmp_path):
    world = synthetic.make_world(0)
    corpus = synthetic.generate_corpus(world, 500, seed=1)
    assert len(corpus) == 500 and corpus == synthetic.generate_corpus(world, 500, seed=1)
    path = synthetic.write_analogies(world, tmp_path / "q.txt")
    from embeddings_jax.eval.analogy import read_analogies

    sections = read_analogies(path)
    assert [n for n, _ in sections][:2] == ["capital-world", "currency"]
    assert sum(len(q) for _, q in sections) == 3 * 24 * 23 + 3 * 16 * 15
    assert ("paris", "france", "tokyo", "japan") in sections[0][1]
