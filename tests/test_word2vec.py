"""word2vec training: parity with a per-pair reference, quality, sharding, resume, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from embeddings_jax.data import synthetic
from embeddings_jax.data.vocab import pack_tokens
from embeddings_jax.eval.analogy import evaluate_word_analogies
from embeddings_jax.models import word2vec as S
from embeddings_jax.models.word2vec import Word2Vec
from embeddings_jax.ops.huffman import build_huffman
from embeddings_jax.ops.sampling import build_alias_table, keep_probabilities, unigram_weights
from embeddings_jax.train.sharding import make_mesh


class _Loss:
    total = 0.0


def _err(label, z, weight=1.0):
    """gensim's error term: ``label - sigmoid(z)``, and no update at all beyond +-MAX_EXP; adds
    gensim's loss ``-log sigmoid(+-z)`` (times ``weight``) of the pair to ``_Loss.total``."""
    if abs(z) >= S.MAX_EXP:
        return 0.0
    _Loss.total += weight * np.log1p(np.exp(-(2 * label - 1) * z))
    return label - 1.0 / (1.0 + np.exp(-z))


def _reference(params, tables, d, alpha, cfg):
    """Plain loops over (centre, context) pairs with the same draws and the same semantics:
    every gradient from the chunk's starting parameters, negatives shared by groups of inputs.
    The chunk's training loss is left in ``_Loss.total``."""
    _Loss.total = 0.0
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    new = {k: v.copy() for k, v in p.items()}
    ids, sents, reach = (np.asarray(d[k]) for k in ("ids", "sents", "reach"))
    negs = np.asarray(d["negs"]) if cfg.negative else None
    c, w, s = cfg.capacity, cfg.window, cfg.negative_group
    for j in range(c):
        if sents[j] < 0:
            continue
        ctx = [j + o for o in range(-w, w + 1) if o and 0 <= j + o < c and abs(o) <= reach[j]
               and sents[j + o] == sents[j]]  # fmt: skip
        if not ctx:
            continue
        if cfg.sg:
            for i in ctx:  # input = context i, output = centre j
                x = p["syn0"][ids[i]]
                err = np.zeros_like(x)
                if cfg.negative:
                    y = p["syn1neg"][ids[j]]
                    g = _err(1.0, x @ y) * alpha
                    err += g * y
                    new["syn1neg"][ids[j]] += g * x
                    weight = cfg.negative / cfg.negative_draws  # K of the K * W draws per pair
                    for n in negs[i % (c // s)]:  # input i's group: inputs i mod C / S
                        g = _err(0.0, x @ p["syn1neg"][n], weight) * alpha * weight
                        err += g * p["syn1neg"][n]
                        new["syn1neg"][n] += g * x
                if cfg.hs:
                    for node, code in zip(tables["points"][ids[j]][: tables["lengths"][ids[j]]],
                                          tables["codes"][ids[j]]):  # fmt: skip
                        g = _err(1.0 - code, x @ p["syn1"][node]) * alpha
                        err += g * p["syn1"][node]
                        new["syn1"][node] += g * x
                new["syn0"][ids[i]] += err
        else:
            h = sum(p["syn0"][ids[i]] for i in ctx)
            if cfg.cbow_mean:
                h = h / len(ctx)
            err = np.zeros_like(h)
            targets = []
            if cfg.negative:
                targets = [("syn1neg", ids[j], 1.0)] + [
                    ("syn1neg", n, 0.0) for n in negs[j % (c // s)] if n != ids[j]
                ]
            if cfg.hs:
                L = tables["lengths"][ids[j]]
                targets += [("syn1", n, 1.0 - k) for n, k in
                            zip(tables["points"][ids[j]][:L], tables["codes"][ids[j]][:L])]  # fmt: skip
            for name, row, label in targets:
                g = _err(label, h @ p[name][row]) * alpha
                err += g * p[name][row]
                new[name][row] += g * h
            if not cfg.cbow_mean:
                err = err / len(ctx)
            for i in ctx:
                new["syn0"][ids[i]] += err
    return new


def _tables(counts, keep, negative, hs):
    """The step's device constants for word ``counts`` with keep probabilities ``keep``."""
    tables = {"keep": np.asarray(keep, np.float32)}
    if negative:
        tables["accept"], tables["alias"] = build_alias_table(unigram_weights(counts))
    if hs:
        t = build_huffman(counts)
        tables.update(codes=t.codes, points=t.points, lengths=t.lengths)
    return tables


def _random_params(rng, v, dim, negative, hs):
    """Tables of scale 0.3 for ``v`` words (``syn1`` has one row per inner Huffman node)."""
    params = {"syn0": rng.normal(size=(v, dim)).astype(np.float32) * 0.3}
    if negative:
        params["syn1neg"] = rng.normal(size=(v, dim)).astype(np.float32) * 0.3
    if hs:
        params["syn1"] = rng.normal(size=(v - 1, dim)).astype(np.float32) * 0.3
    return params


@pytest.mark.parametrize("sg,hs,negative,cbow_mean", [(1, 0, 3, 1), (0, 0, 3, 1), (0, 0, 3, 0),
                                                      (1, 1, 0, 1), (0, 1, 2, 1)])  # fmt: skip
def test_step_matches_per_pair_reference(sg, hs, negative, cbow_mean):
    rng = np.random.default_rng(0)
    v, dim, c = 13, 6, 48
    counts = np.sort(rng.integers(1, 50, v))[::-1]
    cfg = S.StepConfig(bool(sg), bool(hs), negative, 3, bool(cbow_mean), c, 4, 40, max_repeats=1e9,
                       compute_loss=True)
    tables = _tables(counts, keep_probabilities(counts, 0.05), negative, hs)
    params = _random_params(rng, v, dim, negative, hs)
    ids = jnp.asarray(rng.integers(0, v, c), jnp.int32)
    sents = jnp.asarray(np.repeat(np.arange(6), 8), jnp.int32).at[-3:].set(-1)
    draws = S.sample_chunk(tables, ids, sents, jax.random.key(3), cfg)
    upd, stats = S.updates_from_draws(params, tables, draws, 0.1, cfg)
    got = S.apply_updates(jax.tree.map(jnp.asarray, params), upd)
    want = _reference(params, tables, draws, 0.1, cfg)
    for k in params:
        np.testing.assert_allclose(np.asarray(got[k]), want[k], rtol=1e-4, atol=1e-5)
    assert _Loss.total > 1.0  # gensim's training loss of the same pairs
    np.testing.assert_allclose(float(stats[3]), _Loss.total, rtol=1e-4)


@pytest.mark.parametrize("sg,hs,negative", [(1, 0, 3), (0, 1, 3)])
def test_train_step_applies_each_chunks_updates(sg, hs, negative):
    """The jitted step (bits and negatives drawn before its loop, barriers, CPU compiler
    options) applies exactly the updates :func:`chunk_updates` gives for ``fold_in(key, i)``."""
    rng = np.random.default_rng(1)
    v, dim, c = 13, 8, 48
    counts = np.sort(rng.integers(1, 50, v))[::-1]
    cfg = S.StepConfig(bool(sg), bool(hs), negative, 3, True, c, 4, 40)
    tables = jax.tree.map(jnp.asarray, _tables(counts, keep_probabilities(counts, 0.05), negative, hs))
    params = _random_params(rng, v, dim, negative, hs)
    corpus = jnp.asarray(rng.integers(0, v, 3 * c), jnp.int32)
    sents = jnp.asarray(np.repeat(np.arange(18), 8), jnp.int32)
    tokens = jnp.asarray(pack_tokens(corpus, sents))
    key, alpha = jax.random.key(7), np.float32(0.05)
    step = S.make_train_step(cfg, make_mesh(jax.devices()[:1]))
    # chunk 1 of the worker's block is global chunk 2 (its fold_in key)
    got, stats = step(jax.tree.map(jnp.asarray, params), tables, tokens[c:],
                      np.array([[[1]]], np.int32), np.array([[[2]]], np.int32), np.array([[[alpha]]]), key)  # fmt: skip
    upd, want_stats = S.chunk_updates(jax.tree.map(jnp.asarray, params), tables, corpus[2 * c :],
                                      sents[2 * c :] - sents[2 * c], jax.random.fold_in(key, 2), alpha, cfg)  # fmt: skip
    want = S.apply_updates(jax.tree.map(jnp.asarray, params), upd)
    for k, before in params.items():
        assert not np.allclose(np.asarray(want[k]), before)  # the chunk trained
        np.testing.assert_allclose(np.asarray(got[k]), np.asarray(want[k]), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(stats), np.asarray(want_stats))


@pytest.mark.parametrize("sg,hs,negative", [(1, 0, 3), (0, 1, 3)])
def test_plain_step_trains_as_the_cpu_tuned_step(sg, hs, negative):
    """Without the XLA:CPU tricks (``tune=False``: no fusion barriers or compiler options,
    negatives drawn inside the loop), as a GPU or TPU compiles it, the step trains the same
    up to float rounding."""
    rng = np.random.default_rng(2)
    v, dim, c = 13, 8, 48
    counts = np.sort(rng.integers(1, 50, v))[::-1]
    cfg = S.StepConfig(bool(sg), bool(hs), negative, 3, True, c, 4, 40)
    tables = _tables(counts, keep_probabilities(counts, 0.05), negative, hs)
    params = _random_params(rng, v, dim, negative, hs)
    corpus = jnp.asarray(rng.integers(0, v, 3 * c), jnp.int32)
    tokens = jnp.asarray(pack_tokens(corpus, np.repeat(np.arange(18), 8)))
    chunks, alpha = np.array([[[2], [0], [1]]], np.int32), np.full((1, 3, 1), 0.05, np.float32)
    mesh = make_mesh(jax.devices()[:1])
    runs = [S.make_train_step(cfg, mesh, tune)(jax.tree.map(jnp.asarray, params), tables, tokens,
                                               chunks, chunks, alpha, jax.random.key(7))
            for tune in (True, False)]  # fmt: skip
    (tuned, tuned_stats), (plain, plain_stats) = runs
    for k in params:
        np.testing.assert_allclose(np.asarray(plain[k]), np.asarray(tuned[k]), rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(np.asarray(plain_stats), np.asarray(tuned_stats))


@pytest.mark.parametrize("sg,hs,negative", [(1, 0, 3), (0, 0, 3), (1, 1, 0), (0, 1, 0)])
def test_saturated_pairs_are_skipped_like_gensim(sg, hs, negative):
    """Every score beyond +-MAX_EXP (here all of them, +-4 * 4 * D = +-96): no update at all."""
    v, dim, c = 9, 6, 32
    counts = np.arange(v, 0, -1) * 10
    cfg = S.StepConfig(bool(sg), bool(hs), negative, 2, True, c, 4)
    tables = _tables(counts, np.ones(v), negative, hs)
    sign = np.where(np.arange(v) % 2, 4.0, -4.0).astype(np.float32)[:, None]
    params = {"syn0": np.full((v, dim), 4.0, np.float32)}
    rows = v if negative else v - 1  # syn1 has one row per inner Huffman node
    params["syn1neg" if negative else "syn1"] = np.broadcast_to(sign[:rows], (rows, dim))
    ids = jnp.asarray(np.arange(c) % v, jnp.int32)
    upd, stats = S.chunk_updates(params, tables, ids, jnp.zeros(c, jnp.int32), jax.random.key(0),
                                 0.1, cfg)  # fmt: skip
    assert stats[1] > 0  # pairs were trained on, yet nothing moved
    got = S.apply_updates(jax.tree.map(jnp.asarray, params), upd)
    for k, before in params.items():
        np.testing.assert_array_equal(np.asarray(got[k]), before)


def test_input_vectors_start_like_gensim():
    """gensim 4 draws input vectors from U[-1/D, 1/D] (the C tool: U[-0.5/D, 0.5/D])."""
    p = S.init_params(0, 2000, 50, True, False, make_mesh(jax.devices()[:1]))
    syn0 = np.asarray(p["syn0"])
    assert -1 / 50 <= syn0.min() < -0.98 / 50 and 0.98 / 50 < syn0.max() < 1 / 50
    assert abs(syn0.mean()) < 1e-3 and not np.asarray(p["syn1neg"]).any()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    w = synthetic.make_world(0)
    path = synthetic.write_analogies(w, tmp_path_factory.mktemp("w2v") / "analogies.txt")
    return synthetic.generate_corpus(w, 8000, seed=0), path


def test_skipgram_learns_synthetic_analogies(world):
    sentences, analogies = world
    model = Word2Vec(sentences, vector_size=32, sg=1, epochs=15, seed=1, devices=jax.devices()[:1])
    res = evaluate_word_analogies(model.wv, analogies)
    assert res.n_answered == res.n_questions == 2376
    assert res.accuracy > 0.9, res.summary()
    assert (
        model.wv.most_similar(positive=["paris", "japan"], negative=["france"], topn=1)[0][0]
        == "tokyo"
    )


@pytest.mark.parametrize("sg,hs,negative", [(0, 0, 5), (1, 1, 0), (0, 1, 0)])
def test_other_variants_learn(world, sg, hs, negative):
    sentences, analogies = world
    model = Word2Vec(sentences[:4000], vector_size=24, sg=sg, hs=hs, negative=negative, epochs=8,
                     alpha=0.05 if not sg else 0.025, seed=2, devices=jax.devices()[:1])  # fmt: skip
    acc = evaluate_word_analogies(model.wv, analogies).accuracy
    assert np.isfinite(model.wv.vectors).all()
    assert acc > 0.1, acc  # chance is < 0.5 %


@pytest.mark.parametrize("sg,hs", [(1, 0), (0, 1)])  # (0, 1): three tables merged
def test_eight_workers_merging_every_step_equal_the_synchronous_step(world, sg, hs):
    """8 workers with ``sync_every=1``: each step's 8 chunks see the same parameters, as one
    device training 8 chunks per step."""
    sentences = world[0][:1500]
    kw = {"vector_size": 16, "sg": sg, "hs": hs, "epochs": 1, "seed": 3, "chunk_size": 256,
          "chunks_per_step": 8, "sync_every": 1}  # fmt: skip
    m8 = Word2Vec(sentences, devices=jax.devices()[:8], **kw)
    m1 = Word2Vec(sentences, devices=jax.devices()[:1], **kw)
    assert m8.mesh.size == 8 and m1.mesh.size == 1
    for k in m1.params:
        np.testing.assert_allclose(np.asarray(m8.params[k]), np.asarray(m1.params[k]), atol=2e-6)
    assert m8.last_train_stats == m1.last_train_stats


def test_workers_with_stale_copies_learn_like_one(world):
    """Two workers merging every 8 steps (Hogwild with bounded staleness) train each chunk on
    stale tables, so they differ from one worker, yet learn the analogies as well."""
    sentences, analogies = world
    kw = {"vector_size": 32, "sg": 1, "epochs": 8, "seed": 1, "chunk_size": 128,
          "chunks_per_step": 2, "sync_every": 8}  # fmt: skip
    two = Word2Vec(sentences, devices=jax.devices()[:2], **kw)
    one = Word2Vec(sentences, devices=jax.devices()[:1], **kw)
    assert not np.allclose(np.asarray(two.params["syn0"]), np.asarray(one.params["syn0"]), atol=1e-4)
    acc = [evaluate_word_analogies(m.wv, analogies).accuracy for m in (one, two)]
    assert acc[1] > 0.6 and abs(acc[1] - acc[0]) < 0.1, acc  # chance is < 0.5 %


def test_steps_per_call_do_not_change_training(world, monkeypatch):
    """Steps scanned inside one call (the last call padded with empty chunks at learning rate 0)
    train exactly as one call per step."""
    from embeddings_jax.models.word2vec import model as w2v

    sentences = world[0][:1500]
    kw = {
        "vector_size": 16,
        "epochs": 2,
        "seed": 5,
        "chunk_size": 128,
        "devices": jax.devices()[:1],
    }
    runs = {}
    for per_call in (1, 7):  # 7 does not divide the number of steps
        monkeypatch.setattr(w2v, "STEPS_PER_CALL", per_call)
        for sg in (0, 1):
            m = Word2Vec(sentences, sg=sg, **kw)
            runs[per_call, sg] = (
                np.asarray(m.params["syn0"]),
                np.asarray(m.params["syn1neg"]),
                m.last_train_stats,
            )
    n_steps = -(-len(m.encode(sentences)) // 128)
    assert n_steps % 7 and n_steps > 7
    for sg in (0, 1):
        one, scanned = runs[1, sg], runs[7, sg]
        np.testing.assert_array_equal(one[0], scanned[0])
        np.testing.assert_array_equal(one[1], scanned[1])
        assert one[2] == scanned[2]


def test_save_load_resume_equals_uninterrupted(world, tmp_path):
    sentences = world[0][:1500]
    kw = {"vector_size": 16, "sg": 1, "seed": 4, "chunk_size": 256, "devices": jax.devices()[:1]}
    full = Word2Vec(**kw)
    full.build_vocab(sentences)
    full.train(sentences, epochs=2)
    part = Word2Vec(**kw)
    part.build_vocab(sentences)
    mid = 0.025 - (0.025 - 0.0001) / 2
    part.train(sentences, epochs=1, end_alpha=mid)
    part.save(tmp_path / "ckpt")
    resumed = Word2Vec.load(tmp_path / "ckpt")
    assert resumed.epochs_trained == 1 and resumed.vocab.words == part.vocab.words
    np.testing.assert_array_equal(
        np.asarray(resumed.params["syn0"]), np.asarray(part.params["syn0"])
    )
    resumed.train(sentences, epochs=1, start_alpha=mid)
    for k in full.params:
        np.testing.assert_allclose(
            np.asarray(resumed.params[k]), np.asarray(full.params[k]), atol=1e-6
        )


def test_bad_input_errors(tmp_path):
    with pytest.raises(ValueError, match="empty"):
        Word2Vec([], min_count=1)
    with pytest.raises(ValueError, match="removed every word"):
        Word2Vec([["a", "b", "c"]] * 2, min_count=5)
    with pytest.raises(ValueError, match="window"):
        Word2Vec([["a", "b", "c"]], min_count=1, window=5)
    with pytest.raises(ValueError, match="fewer than 2"):
        Word2Vec([["a"], ["b"], ["a"], ["b"], ["c"], ["a"], ["b"]], min_count=1, window=2)
    with pytest.raises(ValueError, match="negative sampling"):
        Word2Vec(negative=0, hs=0)
    with pytest.raises(TypeError, match="string"):
        Word2Vec("not a list of sentences")
    with pytest.raises(ValueError, match="build_vocab"):
        Word2Vec().train([["a", "b"]])
    with pytest.raises(FileNotFoundError):
        Word2Vec.load(tmp_path / "nothing")
    cfg = S.StepConfig(True, False, 2, 2, True, 16, 4)
    tables = _tables(np.array([5, 3, 2]), np.ones(3), 2, False)
    with pytest.raises(ValueError, match="chunk_size=16 token ids"):
        S.sample_chunk(tables, jnp.zeros(12, jnp.int32), jnp.zeros(12, jnp.int32),
                       jax.random.key(0), cfg)  # fmt: skip
    with pytest.raises(ValueError, match="random bits"):
        S.sample_chunk(tables, jnp.zeros(16, jnp.int32), jnp.zeros(16, jnp.int32),
                       jnp.zeros(5, jnp.uint32), cfg)  # fmt: skip


@pytest.mark.parametrize("kwargs, message", [
    ({"min_alpha": float("nan")}, "min_alpha must be a finite number"),
    ({"alpha": float("inf")}, "alpha must be a finite number"),
    ({"sample": -1e-3}, "sample must be >= 0"),
    ({"vector_size": 10.5}, "vector_size must be an integer"),
    ({"window": True}, "window must be an integer"),
    ({"ns_exponent": "0.75"}, "ns_exponent must be a finite number"),
])
def test_bad_hyperparameters_are_named(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        Word2Vec(**kwargs)


@pytest.mark.parametrize("token", [3, None, b"bytes"])
def test_non_string_tokens_are_an_error(token):
    with pytest.raises(TypeError, match="tokens must be strings"):
        Word2Vec([["a", "b", token, "c"]] * 3, min_count=1, window=1)


def test_experiment_aggregates_seeds_as_mean_and_sample_std():
    from experiments.reports.word2vec import aggregate, cell

    runs = [{"analogy_acc": 0.2, "wordsim353_spearman": 0.5, "analogy_sections": ["a"]},
            {"analogy_acc": 0.4, "wordsim353_spearman": 0.7, "analogy_sections": ["b"]}]  # fmt: skip
    m = aggregate(runs, [1, 2])
    assert m["analogy_acc"] == pytest.approx(0.3) and m["wordsim353_spearman"] == pytest.approx(0.6)
    assert m["std"]["analogy_acc"] == pytest.approx(np.std([0.2, 0.4], ddof=1))
    assert m["analogy_sections"] == ["a"] and m["seeds"] == [1, 2] and len(m["per_seed"]) == 2
    assert cell(m, "analogy_acc", ".1%") == "30.0% ± 14.1%"
    one = aggregate(runs[:1], [7])
    assert one["std"]["analogy_acc"] == 0.0 and cell(one, "analogy_acc", ".1%") == "20.0%"


def test_report_renders_the_committed_results():
    """The committed table and its JSON agree (numbers rebuilt from the JSON render the table's
    rows and the same JSON), and the speed section is the committed benchmark JSON's."""
    import json

    from experiments.common import RESULTS_DIR
    from experiments.reports import word2vec as report

    md = (RESULTS_DIR / "word2vec.md").read_text()
    flat = json.loads((RESULTS_DIR / "word2vec.json").read_text())
    names = report.json_names(["simlex999", "wordsim353"])
    metrics = {}
    for v, n_seeds in {"sghs": 3, "cbowhs": 3, "sgns": 5, "cbowns": 5}.items():  # see Reproduce
        for key, sfx in ((v, f"_{v}"), (f"gensim_{v}", f"_{v}_gensim")):
            metrics[key] = {src: flat[f"ptb_brown_{dst}{sfx}"] for src, dst in names.items()}
            metrics[key]["std"] = {
                src: flat[f"ptb_brown_{dst}_std{sfx}"] for src, dst in names.items()
            }
            metrics[key]["seeds"] = list(range(1, n_seeds + 1))
    rows, again = report.results_table(metrics, "ptb_brown")
    assert again == flat
    assert "\n".join(rows) in md and len(rows) == 10
    speed = report.speed_section()
    assert len(speed) > 5 and "\n".join(speed) in md


@pytest.mark.parametrize("c,w", [(24, 5), (40, 10), (12, 3), (6, 9)])
def test_band_blocks_hold_every_window_and_fold_is_their_adjoint(c, w):
    """Skip-gram's band: block ``n``'s halo holds rows ``nB - W .. nB + B + W`` (zero beyond the
    chunk), and ``fold`` sums each halo row back onto its position (``<halo(a), h> = <a, fold(h)>``)."""
    from embeddings_jax.models.word2vec.updates import Windows, block_size

    w = min(w, c - 1)
    b = block_size(c, w)
    assert c % b == 0 and b >= w
    win = Windows(jnp.zeros(c, jnp.int32), jnp.zeros((c, 1)), jnp.zeros(c), w, b=b)
    a = jnp.arange(1.0, c + 1)
    halo = np.asarray(win.halo(a))
    for n in range(c // b):
        for k in range(b + 2 * w):
            p = n * b - w + k
            assert halo[n, k] == (p + 1 if 0 <= p < c else 0)
    h = jax.random.normal(jax.random.key(0), halo.shape)
    np.testing.assert_allclose(jnp.sum(win.halo(a) * h), jnp.sum(a * win.fold(h)), rtol=1e-5)
