"""fastText: n-gram hashing and .bin files as the fasttext package has them, the subword step
against a per-pair reference, OOV vectors, persistence and bad input."""

import gzip
import struct

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from embeddings_jax.data import registry, synthetic
from embeddings_jax.data.subwords import char_ngrams, ft_hash, ngram_buckets, subword_rows
from embeddings_jax.models import word2vec as S
from embeddings_jax.models.word2vec import FastText, Word2Vec
from embeddings_jax.models.word2vec.fasttext import (
    load_facebook_model,
    load_facebook_vectors,
    save_facebook_model,
)
from embeddings_jax.ops.sampling import build_alias_table, keep_probabilities, unigram_weights
from embeddings_jax.vectors import KeyedVectors
from embeddings_jax.vectors.fasttext import FastTextKeyedVectors

fasttext = pytest.importorskip("fasttext")  # the bench extra installs it
ONE_DEVICE = jax.devices()[:1]
WORDS = ["the", "company", "naïve", "café", "日本語", "😀ab", "x", "aaaaaaaa", "</s>"]


@pytest.fixture(scope="module")
def world():
    return synthetic.generate_corpus(synthetic.make_world(0), 3000, seed=0)


@pytest.fixture(scope="module")
def theirs(tmp_path_factory):
    """A small model trained and saved by the fasttext package on PTB's validation text
    (skip-gram, 2,000 buckets; on the tiny synthetic corpus its loss check trips on NaN)."""
    d = tmp_path_factory.mktemp("ft")
    with gzip.open(registry.fetch("ptb", "ptb.valid.txt.gz"), "rb") as f:
        (d / "corpus.txt").write_bytes(f.read())
    model = fasttext.train_unsupervised(str(d / "corpus.txt"), model="skipgram", dim=8, epoch=1,
                                        minCount=5, bucket=2000, thread=1, verbose=0)  # fmt: skip
    model.save_model(str(d / "theirs.bin"))
    return model, d / "theirs.bin"


@pytest.fixture(scope="module")
def ours(world):
    return FastText(world, vector_size=16, sg=1, min_count=2, bucket=3000, epochs=3, seed=1,
                    devices=ONE_DEVICE)  # fmt: skip


def test_ngrams_and_hash_are_fasttexts(theirs):
    model, _ = theirs
    assert ft_hash("") == 2166136261 and char_ngrams("ab", 3, 4) == ["<ab", "<ab>", "ab>"]
    nwords = len(model.get_words())
    for word in WORDS[:-1] + [w for w in model.get_words()[:50] if w != "</s>"]:
        _subwords, ids = model.get_subwords(word)
        want = [i - nwords for i in ids if i >= nwords]
        assert ngram_buckets(word, 3, 6, 2000) == want, word
    starts, rows = subword_rows(["ab", "</s>"], 3, 6, 10)
    assert starts.tolist() == [0, 4, 5] and rows[0] == 0 and rows[4] == 1  # </s>: no n-grams


def test_fasttext_package_model_loads_with_the_same_vectors(theirs):
    model, path = theirs
    ours = load_facebook_model(path, devices=ONE_DEVICE)
    kv = load_facebook_vectors(path)
    assert ours.wv.index_to_key == kv.index_to_key == model.get_words()
    assert ours.sg == 1 and ours.bucket == 2000 and ours.vector_size == 8
    for word in model.get_words()[:100] + ["unseenword", "naïve", "x"]:
        np.testing.assert_allclose(ours.wv[word], model.get_word_vector(word), atol=1e-6)
        np.testing.assert_allclose(kv[word], model.get_word_vector(word), atol=1e-6)
    np.testing.assert_allclose(ours.syn1neg, model.get_output_matrix(), atol=0)


def test_our_model_loads_in_fasttext_and_gensim(ours, tmp_path):
    gensim_fasttext = pytest.importorskip("gensim.models.fasttext")
    save_facebook_model(ours, tmp_path / "ours.bin")
    loaded = fasttext.load_model(str(tmp_path / "ours.bin"))
    g = gensim_fasttext.load_facebook_model(str(tmp_path / "ours.bin"))
    assert loaded.get_words() == ours.wv.index_to_key
    for word in ours.wv.index_to_key[:50] + ["unseenword", "naïve", "日本語"]:
        np.testing.assert_allclose(loaded.get_word_vector(word), ours.wv[word], atol=1e-6)
        np.testing.assert_allclose(g.wv[word], ours.wv[word], atol=1e-5)
    full = np.concatenate([ours.wv.vectors_vocab, ours.wv.vectors_ngrams])
    np.testing.assert_allclose(loaded.get_input_matrix(), full, atol=0)


def test_oov_words_get_ngram_vectors(ours):
    wv = ours.wv
    assert isinstance(wv, FastTextKeyedVectors) and wv.vectors_ngrams.shape == (3000, 16)
    assert "frannce" in wv and not wv.has_index_for("frannce")
    v = wv["frannce"]
    np.testing.assert_allclose(v, wv.vectors_ngrams[wv.ngram_buckets("frannce")].mean(0), rtol=1e-6)
    i = wv.key_to_index["france"]
    rows = [wv.vectors_vocab[i]] + [wv.vectors_ngrams[b] for b in wv.ngram_buckets("france")]
    np.testing.assert_allclose(wv["france"], np.mean(rows, 0), rtol=1e-5, atol=1e-7)
    for typo, word in (("germanyy", "germany"), ("tokyoo", "tokyo")):  # most n-grams shared
        assert wv.most_similar(typo, topn=1)[0][0] == word
    assert len(wv.most_similar(positive=["frannce", "king"], negative=["germanyy"], topn=3)) == 3


def test_word_pairs_with_oov_words_are_scored_from_ngrams(ours, tmp_path):
    from embeddings_jax.eval.word_similarity import (
        evaluate_word_pairs,
        pair_similarities,
        read_word_pairs,
    )

    (tmp_path / "pairs.tsv").write_text("germanyy\tgermany\t9\nking\tqueen\t8\ntokyoo\tpoland\t1\n"
                                        "king\tfrannce\t2\nfrance\tparis\t7\n")
    known = evaluate_word_pairs(ours.wv, tmp_path / "pairs.tsv")
    every = evaluate_word_pairs(ours.wv, tmp_path / "pairs.tsv", infer_oov=True)
    assert (known.n_pairs, every.n_pairs, every.oov_ratio) == (2, 5, 60.0)
    sims, _, _ = pair_similarities(ours.wv, read_word_pairs(tmp_path / "pairs.tsv"), infer_oov=True)
    a, b = ours.wv.get_vector("germanyy", norm=True), ours.wv.get_vector("germany", norm=True)
    np.testing.assert_allclose(sims[0], a @ b, rtol=1e-6)


def test_without_ngrams_fasttext_trains_as_word2vec(world):
    """``max_n < min_n``: each token's only row is its word's, through the subword slots; the
    vectors equal Word2Vec's with the same seed (up to float rounding)."""
    for sg in (1, 0):
        kw = {"vector_size": 12, "sg": sg, "min_count": 2, "epochs": 1, "seed": 3, "devices": ONE_DEVICE}
        ft = FastText(world[:1000], max_n=0, bucket=0, **kw)
        w2v = Word2Vec(world[:1000], **kw)
        assert ft._step is not w2v._step  # the subword path, not the word path
        np.testing.assert_allclose(ft.wv.vectors, w2v.wv.vectors, atol=2e-6)


def _reference(params, tables, d, alpha, cfg):
    """fastText's updates with negative sampling, one (centre, context) pair at a time, every
    gradient from the chunk's starting parameters (the engine's semantics)."""
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    new = {k: v.copy() for k, v in p.items()}
    ids, sents, reach, negs = (np.asarray(d[k]) for k in ("ids", "sents", "reach", "negs"))
    rows = lambda t: tables["rows"][tables["row_start"][ids[t]]:][: tables["n_rows"][ids[t]]]
    err = lambda label, z: 0.0 if abs(z) >= S.MAX_EXP else label - 1 / (1 + np.exp(-z))
    c, w, s = cfg.capacity, cfg.window, cfg.negative_group
    for j in np.flatnonzero(sents >= 0):
        ctx = [j + o for o in range(-w, w + 1) if o and 0 <= j + o < c and abs(o) <= reach[j]
               and sents[j + o] == sents[j]]  # fmt: skip
        if not ctx:
            continue
        if cfg.sg:
            for i in ctx:  # input = the mean of context i's rows, output = centre j
                x = p["syn0"][rows(i)].mean(0)
                g = err(1.0, x @ p["syn1neg"][ids[j]]) * alpha
                e = g * p["syn1neg"][ids[j]]
                new["syn1neg"][ids[j]] += g * x
                weight = cfg.negative / cfg.negative_draws
                for n in negs[i % (c // s)]:
                    g = err(0.0, x @ p["syn1neg"][n]) * alpha * weight
                    e += g * p["syn1neg"][n]
                    new["syn1neg"][n] += g * x
                np.add.at(new["syn0"], rows(i), e)  # every row gets the whole gradient
        else:
            bag = np.concatenate([rows(i) for i in ctx])  # all rows of the window, averaged
            h = p["syn0"][bag].sum(0) / (len(bag) if cfg.cbow_mean else 1)
            e = np.zeros_like(h)
            for n, label in [(ids[j], 1.0)] + [(n, 0.0) for n in negs[j % (c // s)] if n != ids[j]]:
                g = err(label, h @ p["syn1neg"][n]) * alpha
                e += g * p["syn1neg"][n]
                new["syn1neg"][n] += g * h
            np.add.at(new["syn0"], bag, e if cfg.cbow_mean else e / len(bag))
    return new


@pytest.mark.parametrize("sg,cbow_mean", [(1, 1), (0, 1), (0, 0)])
def test_subword_step_matches_per_pair_reference(sg, cbow_mean):
    rng = np.random.default_rng(0)
    words = ["ab", "abc", "bcd", "naïve", "x", "abcdefgh", "cab", "dab", "éa", "zz", "q"]
    v, dim, c, bucket = len(words), 6, 48, 17
    starts, rows = subword_rows(words, 2, 4, bucket)
    counts = np.sort(rng.integers(1, 50, v))[::-1]
    tables = {"keep": keep_probabilities(counts, 0.05).astype(np.float32),
              "row_start": starts[:-1].astype(np.int32), "n_rows": np.diff(starts).astype(np.int32),
              "rows": rows}  # fmt: skip
    tables["accept"], tables["alias"] = build_alias_table(unigram_weights(counts))
    slots = 40 * int(np.diff(starts).max())
    cfg = S.StepConfig(bool(sg), False, 3, 3, bool(cbow_mean), c, 4, 40, subword_slots=slots)
    params = {"syn0": rng.normal(size=(v + bucket, dim)).astype(np.float32) * 0.3,
              "syn1neg": rng.normal(size=(v, dim)).astype(np.float32) * 0.3}  # fmt: skip
    ids = jnp.asarray(rng.integers(0, v, c), jnp.int32)
    sents = jnp.asarray(np.repeat(np.arange(6), 8), jnp.int32).at[-3:].set(-1)
    draws = S.sample_chunk(tables, ids, sents, jax.random.key(3), cfg)
    dev_params, dev_tables = jax.tree.map(jnp.asarray, (params, tables))
    upd, stats = S.updates_from_draws(dev_params, dev_tables, draws, 0.1, cfg)
    got = S.apply_updates(dev_params, upd)
    want = _reference(params, tables, draws, 0.1, cfg)
    assert float(stats[2]) == float(draws["n_dropped"])  # every kept token got all its rows
    for k in params:
        np.testing.assert_allclose(np.asarray(got[k]), want[k], rtol=1e-4, atol=1e-5)
    # Too few slots: the last tokens lose rows, and the step says how many tokens were cut.
    small = S.StepConfig(bool(sg), False, 3, 3, bool(cbow_mean), c, 4, 40, subword_slots=64)
    assert float(S.updates_from_draws(dev_params, dev_tables, draws, 0.1, small)[1][2]) > stats[2]


def test_save_load_and_keyed_vectors_round_trip(ours, tmp_path):
    ours.save(tmp_path / "model")
    again = FastText.load(tmp_path / "model", devices=ONE_DEVICE)
    assert (again.min_n, again.max_n, again.bucket) == (3, 6, 3000)
    np.testing.assert_array_equal(again.wv["frannce"], ours.wv["frannce"])
    ours.wv.save(tmp_path / "kv")
    kv = FastTextKeyedVectors.load(tmp_path / "kv")
    np.testing.assert_array_equal(kv["frannce"], ours.wv["frannce"])
    with pytest.raises(ValueError, match="FastTextKeyedVectors.load"):  # the plain loader says which
        KeyedVectors.load(tmp_path / "kv")


def test_bad_input_errors(world, tmp_path):
    with pytest.raises(ValueError, match="word_ngrams"):
        FastText(word_ngrams=2)
    with pytest.raises(ValueError, match="min_n >= 1"):
        FastText(min_n=0)
    with pytest.raises(TypeError, match="bucket must be an integer"):
        FastText(bucket=2.5)
    with pytest.raises(FileNotFoundError):
        load_facebook_model(tmp_path / "missing.bin")
    (tmp_path / "text.vec").write_text("2 3\na 1 2 3\nb 1 2 3\n")
    with pytest.raises(ValueError, match="not a fastText .bin"):
        load_facebook_model(tmp_path / "text.vec")
    (tmp_path / "short.bin").write_bytes(struct.pack("<ii", 793712314, 12) + b"\x00" * 10)
    with pytest.raises(ValueError, match="truncated"):
        load_facebook_vectors(tmp_path / "short.bin")
    both = FastText(world[:300], hs=1, negative=2, vector_size=4, bucket=50, min_count=2, epochs=1,
                    devices=ONE_DEVICE)  # fmt: skip
    with pytest.raises(ValueError, match="one loss"):
        save_facebook_model(both, tmp_path / "both.bin")
    assert not (tmp_path / "both.bin").exists()


def test_growing_the_vocabulary_keeps_every_trained_row(world):
    """``build_vocab(update=True)``: new words get rows, the trained word and n-gram rows stay
    (the device packs a new set of buckets, the host table keeps the rest)."""
    model = FastText(world[:800], vector_size=8, min_count=2, bucket=500, epochs=1, devices=ONE_DEVICE)
    before = model.wv
    extra = [["zyxwv", "king", "qqqq"], ["zyxwv", "queen", "qqqq"]] * 3
    model.build_vocab(extra, update=True)
    after = model.wv
    assert "zyxwv" in after.key_to_index and after.vectors_vocab.shape[0] == len(before) + 2
    np.testing.assert_array_equal(after.vectors_vocab[: len(before)], before.vectors_vocab)
    np.testing.assert_array_equal(after.vectors_ngrams, before.vectors_ngrams)
    model.train(extra, epochs=1)
    assert not np.array_equal(model.wv["zyxwv"], after["zyxwv"])


def test_experiment_runlocal_writes_its_table(tmp_path):
    from experiments import fasttext as experiment

    config = experiment.get_config("runlocal")
    config.variants, config.min_counts = ("sg",), (20,)
    metrics = experiment.run(config, str(tmp_path))
    assert metrics["synthetic_sg_min_count_20_ours_synthetic_pairs_oov_pairs_pct"] == 100.0
    assert np.isnan(metrics["synthetic_sg_min_count_20_word2vec_synthetic_pairs_spearman"])  # none known
    assert np.isfinite(metrics["synthetic_sg_min_count_20_ours_synthetic_pairs_all_pairs_spearman"])
    assert "synthetic_sg_min_count_20_ours_words_per_second_speedup_vs_word2vec" in metrics
    md = (tmp_path / "fasttext.md").read_text()
    assert "| 20 | FastText (ours) | 200 |" in md and (tmp_path / "fasttext_oov.png").stat().st_size > 1000
