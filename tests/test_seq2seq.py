"""Seq2seq model: teacher forcing == step decoding, masking, loss, sharded step, trained-model search."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from embeddings_jax import decoding
from embeddings_jax.data import translation as P
from embeddings_jax.models import seq2seq as S
from embeddings_jax.train import create_train_state, make_mesh, make_train_step, shard_batch

V = 14


def tiny(attention=True, bidirectional=True, num_layers=2, dropout=0.0, readout=False):
    return S.Seq2Seq(
        V,
        V + 3,
        embed_dim=8,
        hidden_dim=16,
        num_layers=num_layers,
        bidirectional=bidirectional,
        attention=attention,
        attention_dim=8,
        dropout=dropout,
        readout_dim=8 if readout else 0,
        tie_embeddings=readout,
    )


def toy_batch(seed=0, n=8, s=7, t=6):
    rng = np.random.default_rng(seed)
    src = [list(rng.integers(4, V, rng.integers(1, s))) + [P.EOS] for _ in range(n)]
    tgt = [list(rng.integers(4, V, rng.integers(1, t))) + [P.EOS] for _ in range(n)]
    return P.make_batch(src, tgt, s, t)


@pytest.mark.parametrize(
    "attention,bidirectional,layers,readout",
    [(True, True, 2, False), (False, False, 1, False), (True, True, 1, True), (False, True, 1, True)],
)
def test_teacher_forcing_equals_step_decoding(attention, bidirectional, layers, readout):
    m, b = tiny(attention, bidirectional, layers, readout=readout), toy_batch()
    params = m.init(jax.random.PRNGKey(0), b["src"], b["src_mask"], b["tgt_in"])["params"]
    if readout:  # tied: the output matrix is the target embedding table, no separate Dense
        assert "out" not in params and params["out_bias"].shape == (V + 3,)
        assert params["readout"]["kernel"].shape[-1] == 8
    logits, weights = m.apply({"params": params}, b["src"], b["src_mask"], b["tgt_in"])
    cache = m.apply({"params": params}, b["src"], b["src_mask"], method=S.Seq2Seq.encode)
    step = jax.jit(S.step_fn(m, params))
    steps = []
    for t in range(b["tgt_in"].shape[1]):
        out, cache = step(b["tgt_in"][:, t], cache)
        steps.append(out)
    np.testing.assert_allclose(np.stack(steps, 1), logits, atol=1e-5)
    if attention:
        w = np.asarray(weights)
        np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-5)
        assert np.all(
            w[~np.broadcast_to(b["src_mask"][:, None, :], w.shape)] < 1e-6
        )  # no weight on padding
    else:
        assert weights.shape[-1] == 0


@pytest.mark.parametrize("attention", [True, False])
def test_source_padding_does_not_change_outputs(attention):
    m, b = tiny(attention), toy_batch(1)
    params = m.init(jax.random.PRNGKey(1), b["src"], b["src_mask"], b["tgt_in"])["params"]
    logits, _ = m.apply({"params": params}, b["src"], b["src_mask"], b["tgt_in"])
    src = np.pad(b["src"], ((0, 0), (0, 5)))
    longer, _ = m.apply({"params": params}, src, src != P.PAD, b["tgt_in"])
    np.testing.assert_allclose(longer, logits, atol=1e-5)


def test_masked_cross_entropy_matches_reference():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(3, 4, 6)).astype(np.float32)
    targets = rng.integers(0, 6, (3, 4))
    mask = np.array([[1, 1, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0]], bool)
    lp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = -np.mean([lp[i, j, targets[i, j]] for i in range(3) for j in range(4) if mask[i, j]])
    assert float(S.masked_cross_entropy(logits, targets, mask)) == pytest.approx(expected, rel=1e-5)
    assert float(S.masked_cross_entropy(logits, targets, np.zeros_like(mask))) == 0.0
    eps = 0.1  # label smoothing: (1 - eps) * NLL + eps * mean over the vocabulary of -log p
    smooth = -np.mean([(1 - eps) * lp[i, j, targets[i, j]] + eps * lp[i, j].mean()
                       for i in range(3) for j in range(4) if mask[i, j]])  # fmt: skip
    got = float(S.masked_cross_entropy(logits, targets, mask, label_smoothing=eps))
    assert got == pytest.approx(smooth, rel=1e-5)


def test_tied_embeddings_need_matching_readout():
    m = S.Seq2Seq(V, V, embed_dim=8, hidden_dim=16, readout_dim=4, tie_embeddings=True)
    b = toy_batch()
    with pytest.raises(ValueError, match="tie_embeddings needs readout_dim == embed_dim"):
        m.init(jax.random.PRNGKey(0), b["src"], b["src_mask"], b["tgt_in"])


def _step_on(num_devices, dropout):
    m, b = (
        tiny(attention=True, bidirectional=False, num_layers=1, dropout=dropout),
        toy_batch(3, n=16),
    )
    mesh = make_mesh(num_devices)
    tx = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-2))
    state = create_train_state(
        lambda k: m.init(k, b["src"], b["src_mask"], b["tgt_in"])["params"], tx, 0, mesh
    )
    step = make_train_step(S.make_loss_fn(m), mesh, state)
    state, metrics = step(state, shard_batch(b, mesh))
    return jax.device_get(state.params), jax.device_get(metrics)


def test_sharded_train_step_equals_single_device():
    p8, m8 = _step_on(8, 0.1)
    p1, m1 = _step_on(1, 0.1)
    assert float(m8["loss"]) == pytest.approx(float(m1["loss"]), rel=1e-5)
    for a, b in zip(jax.tree_util.tree_leaves(p8), jax.tree_util.tree_leaves(p1)):
        np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.fixture(scope="module")
def trained_reverser():
    """A small attention model trained to reverse token sequences (a real, learnable task)."""
    rng = np.random.default_rng(0)
    src = [list(rng.integers(4, V, rng.integers(2, 7))) for _ in range(512)]
    pairs_s = [s + [P.EOS] for s in src]
    pairs_t = [s[::-1] + [P.EOS] for s in src]
    m = S.Seq2Seq(
        V,
        V,
        embed_dim=16,
        hidden_dim=32,
        num_layers=1,
        attention=True,
        attention_dim=16,
        dropout=0.0,
    )
    mesh = make_mesh(1)
    tx = optax.adam(1e-2)
    b0 = P.make_batch(pairs_s[:2], pairs_t[:2], 8, 8)
    state = create_train_state(
        lambda k: m.init(k, b0["src"], b0["src_mask"], b0["tgt_in"])["params"], tx, 0, mesh
    )
    step = make_train_step(S.make_loss_fn(m), mesh, state)
    plan = P.bucket_plan(pairs_s, pairs_t, 64, (8,), seed=0) * 20
    for length, idx in plan[:150]:
        batch = P.make_batch(
            [pairs_s[i] for i in idx], [pairs_t[i] for i in idx], length, length, 64
        )
        state, metrics = step(state, shard_batch(batch, mesh))
    return m, jax.device_get(state.params), float(metrics["loss"])


def test_trained_model_learns_and_beam_equals_python_loop(trained_reverser):
    m, params, loss = trained_reverser
    assert loss < 0.5
    src_ids = [[5, 6, 7, P.EOS], [9, 4, 12, 13, 8, P.EOS], [P.EOS], [11, P.UNK, 11, P.EOS]]
    src, mask = P.pad(src_ids, 8)
    greedy, _ = S.translate_ids(m, params, src, mask, beam_size=0, max_len=8)
    np.testing.assert_array_equal(np.asarray(greedy)[0, :4], [7, 6, 5, P.EOS])
    cache = m.apply({"params": params}, src, mask, method=S.Seq2Seq.encode)
    f = S.step_fn(m, params)
    ours = jax.jit(lambda c: decoding.beam_search(c, f, 4, 0.6, P.EOS, 8))(cache)
    ref = decoding.python_beam_search(cache, jax.jit(f), 4, 0.6, P.EOS, 8)
    np.testing.assert_array_equal(ours[0], ref[0])
    np.testing.assert_allclose(ours[1], ref[1], rtol=1e-4)
    best, _ = S.translate_ids(m, params, src, mask, beam_size=4, alpha=0.6, max_len=8)
    np.testing.assert_array_equal(best, ours[0][:, 0])


def test_translate_text_handles_bad_input(trained_reverser):
    m, params, _ = trained_reverser
    vocab = P.Vocab([f"w{i}" for i in range(V)])  # ids 4.. -> w4..
    tok = P.WordTokenizer(vocab, lowercase=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = S.translate(
            m,
            params,
            ["w5 w6 w7", "", "w5 unknownword w6"],
            tok,
            tok,
            beam_size=4,
            max_src_len=8,
            max_len=8,
            batch_size=8,
        )
    assert out[0] == "w7 w6 w5"
    assert len(out) == 3 and all(isinstance(o, str) for o in out)
    with pytest.warns(UserWarning, match="truncated"):
        out = S.translate(m, params, ["w5 " * 20], tok, tok, max_src_len=8, max_len=8, batch_size=8)
    assert len(out) == 1
    with pytest.raises(ValueError, match="max_len is 8"):
        S.translate(m, params, ["w5 " * 20], tok, tok, max_src_len=8, on_long="error")
    assert S.translate(m, params, [], tok, tok) == []
    with pytest.raises(TypeError, match="list of sentences"):
        S.translate(m, params, "w5 w6", tok, tok)
    broken = jax.tree.map(lambda x: jnp.full_like(x, jnp.nan), params)
    for beam in (0, 2):  # jitted: greedy and beam search both hand back NaN scores
        with pytest.raises(ValueError, match="non-finite log-probabilities"):
            S.translate(m, broken, ["w5 w6"], tok, tok, beam_size=beam, max_src_len=8, max_len=8, batch_size=8)


def test_runlocal_experiment(tmp_path, shared_data):
    shared_data("multi30k")
    from experiments import seq2seq as E

    config = E.get_config("runlocal")
    with pytest.warns(UserWarning, match="truncated"):  # long validation sources, as documented
        result = E.run(config, str(tmp_path))
    assert set(result) >= {"multi30k_en_de_val_bleu_greedy", "multi30k_en_de_val_bleu_beam4"}
    assert result["multi30k_en_de_beam4_equals_python_loop_fraction"] == 1.0
    assert (tmp_path / "seq2seq_attention_multi30k_en_de.png").exists()
    model, params, src_tok, tgt_tok, _ = S.load_model(tmp_path)
    out = S.translate(
        model, params, ["A dog runs.", ""], src_tok, tgt_tok, max_src_len=16, max_len=16
    )
    assert len(out) == 2
    with pytest.raises(FileNotFoundError, match="params.msgpack"):
        S.load_model(tmp_path / "nothing")
    with pytest.raises(ValueError, match="unknown seq2seq config"):
        E.get_config("gpu")


def test_report_renders_the_committed_results_from_their_json():
    import json
    import pathlib

    from experiments.reports import seq2seq as report

    results = pathlib.Path(__file__).resolve().parents[1] / "experiments" / "results"
    runs = json.loads((results / "seq2seq.json").read_text())["runs"]
    md = (results / "seq2seq.md").read_text()
    assert report.markdown(runs) == report.markdown(json.loads(json.dumps(runs)))
    assert md.startswith(report.markdown(runs).rstrip() + "\n\nCommand: `")
