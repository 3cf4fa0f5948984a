"""Decoding: beam search against an exhaustive oracle, a Python-loop reference and greedy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from embeddings_jax import decoding

PAD, BOS, EOS = 0, 1, 2


def markov_chain(log_probs):
    """tokens_to_logits of a first-order chain: log_probs [V, V], cache holds a step counter."""
    table = jnp.asarray(log_probs, jnp.float32)

    def tokens_to_logits(tokens, cache):
        return table[tokens], {"t": cache["t"] + 1}

    return tokens_to_logits


def known_chain():
    """A chain where greedy is wrong and the best sequences are known by hand.

    Tokens: 0 pad, 1 bos, 2 eos, 3 a, 4 b. From bos: a 0.6, b 0.4. From a: eos 0.5, a 0.25, b 0.25.
    From b: eos 0.9, a 0.05, b 0.05. Best complete sequences (alpha=0):
    "b eos" 0.36 > "a eos" 0.30 > "a a eos" = 0.6*0.25*0.5 = 0.075 > ...
    Greedy takes "a" first and returns "a eos".
    """
    eps = 1e-12
    p = np.full((5, 5), eps)
    p[BOS, [3, 4]] = [0.6, 0.4]
    p[3, [EOS, 3, 4]] = [0.5, 0.25, 0.25]
    p[4, [EOS, 3, 4]] = [0.9, 0.05, 0.05]
    p[[PAD, EOS], EOS] = 1.0
    return np.log(p / p.sum(1, keepdims=True))


def test_known_chain_best_sequences():
    f = markov_chain(known_chain())
    cache = {"t": jnp.zeros((1,), jnp.int32)}
    seqs, scores = jax.jit(
        lambda c: decoding.beam_search(c, f, beam_size=3, alpha=0.0, eos_id=EOS, max_len=5)
    )(cache)
    np.testing.assert_array_equal(seqs[0, 0], [4, EOS, PAD, PAD, PAD])
    np.testing.assert_array_equal(seqs[0, 1], [3, EOS, PAD, PAD, PAD])
    np.testing.assert_allclose(np.exp(scores[0, :2]), [0.36, 0.30], rtol=1e-5)
    greedy, logp = decoding.greedy_search(cache, f, eos_id=EOS, max_len=5)
    np.testing.assert_array_equal(greedy[0], [3, EOS, PAD, PAD, PAD])
    np.testing.assert_allclose(np.exp(logp), [0.30], rtol=1e-5)
    oracle, oracle_scores = decoding.exhaustive_search(
        cache, jax.jit(f), alpha=0.0, eos_id=EOS, max_len=5, top_k=3
    )
    np.testing.assert_array_equal(seqs, oracle)
    np.testing.assert_allclose(scores, oracle_scores, rtol=1e-6)


def second_order_chain(seed, batch, vocab):
    """Per-sentence random second-order chains; the cache carries the previous token and a float
    leaf, so a wrong beam gather changes the answer."""
    rng = np.random.default_rng(seed)
    table = jnp.asarray(rng.normal(0, 2.0, (batch, vocab, vocab, vocab)), jnp.float32)

    def tokens_to_logits(tokens, cache):
        logits = table[cache["sentence"], cache["prev"], tokens] + 0.0 * cache["x"][:, :1]
        new = {"sentence": cache["sentence"], "prev": tokens, "x": cache["x"] + tokens[:, None]}
        return logits, new

    init = {
        "sentence": jnp.arange(batch, dtype=jnp.int32),
        "prev": jnp.full((batch,), BOS, jnp.int32),
        "x": jnp.zeros((batch, 3), jnp.float32),
    }
    return tokens_to_logits, init


@pytest.mark.parametrize("seed,alpha", [(0, 0.0), (1, 0.6), (2, 1.0)])
def test_beam_search_equals_exhaustive_when_beam_covers_all_prefixes(seed, alpha):
    vocab, max_len, batch = 5, 4, 3
    f, init = second_order_chain(seed, batch, vocab)
    k = (vocab - 1) ** (max_len - 1)  # every non-EOS prefix fits in the beam
    run = jax.jit(lambda c: decoding.beam_search(c, f, k, alpha, EOS, max_len))
    seqs, scores = run(init)
    oracle, oracle_scores = decoding.exhaustive_search(
        init, jax.jit(f), alpha=alpha, eos_id=EOS, max_len=max_len, top_k=k
    )
    np.testing.assert_allclose(scores, oracle_scores, rtol=1e-5)
    np.testing.assert_array_equal(seqs[:, 0], oracle[:, 0])
    # Every rank holds the oracle's sequence, except swaps between float-level ties.
    differ = np.any(np.asarray(seqs) != oracle, axis=-1)
    np.testing.assert_allclose(np.asarray(scores)[differ], oracle_scores[differ], rtol=1e-6)
    assert differ.mean() < 0.05


@pytest.mark.parametrize("beam_size,alpha", [(1, 0.0), (2, 0.6), (4, 0.6), (8, 1.0)])
def test_beam_search_equals_python_loop(beam_size, alpha):
    vocab, max_len, batch = 7, 6, 4
    f, init = second_order_chain(10 + beam_size, batch, vocab)
    run = jax.jit(lambda c: decoding.beam_search(c, f, beam_size, alpha, EOS, max_len))
    seqs, scores = run(init)
    ref_seqs, ref_scores = decoding.python_beam_search(
        init, jax.jit(f), beam_size, alpha, EOS, max_len
    )
    np.testing.assert_array_equal(seqs, ref_seqs)
    np.testing.assert_allclose(scores, ref_scores, rtol=1e-5)


def test_greedy_is_a_beam_one_candidate():
    # Beam 1 follows the greedy path but also keeps the best EOS seen on the way, so its
    # result scores at least as well as greedy's (and differs from it on this chain).
    f, init = second_order_chain(3, batch=5, vocab=9)
    greedy, logp = jax.jit(lambda c: decoding.greedy_search(c, f, eos_id=EOS, max_len=7))(init)
    beam, scores = jax.jit(lambda c: decoding.beam_search(c, f, 1, 0.0, EOS, 7))(init)
    assert np.all(np.asarray(scores[:, 0]) >= np.asarray(logp) - 1e-5)
    same = np.all(np.asarray(greedy) == np.asarray(beam[:, 0]), axis=1)
    np.testing.assert_allclose(np.asarray(logp)[same], np.asarray(scores[:, 0])[same], rtol=1e-5)
    assert not same.all()
    # Greedy stops when the arg-max is EOS: its output is the arg-max path.
    g = np.asarray(greedy)
    step = jax.jit(f)
    for i in range(5):
        last = BOS
        c = jax.tree_util.tree_map(lambda x, i=i: x[i : i + 1], init)
        for t in range(7):
            logits, c = step(jnp.array([last]), c)
            assert g[i, t] == int(jnp.argmax(logits[0]))
            last = g[i, t]
            if last == EOS:
                assert np.all(g[i, t + 1 :] == PAD)
                break


def test_batched_equals_one_sentence_at_a_time():
    f, init = second_order_chain(4, batch=3, vocab=6)
    run = jax.jit(lambda c: decoding.beam_search(c, f, 3, 0.6, EOS, 5))
    seqs, scores = run(init)
    for i in range(3):
        one = jax.tree_util.tree_map(lambda x, i=i: x[i : i + 1], init)
        s1, sc1 = run(one)
        np.testing.assert_array_equal(seqs[i], s1[0])
        np.testing.assert_allclose(scores[i], sc1[0], rtol=1e-6)


def test_outputs_are_padded_after_eos_and_sorted():
    f, init = second_order_chain(5, batch=4, vocab=6)
    seqs, scores = jax.jit(lambda c: decoding.beam_search(c, f, 4, 0.6, EOS, 6))(init)
    seqs, scores = np.asarray(seqs), np.asarray(scores)
    assert np.all(np.diff(scores, axis=1) <= 0)
    for row in seqs.reshape(-1, 6):
        hits = np.flatnonzero(row == EOS)
        if hits.size:
            assert np.all(row[hits[0] + 1 :] == PAD)


def test_max_len_one_and_length_penalty_values():
    f, init = second_order_chain(6, batch=2, vocab=5)
    seqs, scores = decoding.beam_search(init, f, 2, 0.0, EOS, 1)
    oracle, oracle_scores = decoding.exhaustive_search(
        init, f, alpha=0.0, eos_id=EOS, max_len=1, top_k=2
    )
    np.testing.assert_array_equal(seqs, oracle)
    np.testing.assert_allclose(scores, oracle_scores, rtol=1e-6)
    assert decoding.length_penalty(1.0, 0.6) == pytest.approx(1.0)
    assert decoding.length_penalty(7.0, 1.0) == pytest.approx(2.0)


def test_bad_arguments():
    f, init = second_order_chain(7, batch=2, vocab=5)
    with pytest.raises(ValueError, match="beam_size"):
        decoding.beam_search(init, f, 0, 0.0, EOS, 4)
    with pytest.raises(ValueError, match="alpha"):
        decoding.beam_search(init, f, 2, -1.0, EOS, 4)
    with pytest.raises(ValueError, match="max_len"):
        decoding.greedy_search(init, f, eos_id=EOS, max_len=0)
    with pytest.raises(ValueError, match="disagree"):
        decoding.beam_search({"a": jnp.zeros(2), "b": jnp.zeros(3)}, f, 2, 0.0, EOS, 4)
    with pytest.raises(ValueError, match="max_hypotheses"):
        decoding.exhaustive_search(init, f, alpha=0.0, eos_id=EOS, max_len=8, max_hypotheses=100)
    with pytest.raises(ValueError, match="alpha must be a finite number"):
        decoding.beam_search(init, f, 2, float("nan"), EOS, 4)
    with pytest.raises(ValueError, match="eos_id=5 is not a token id of the model's 5-token vocabulary"):
        decoding.beam_search(init, f, 2, 0.0, 5, 4)
    with pytest.raises(ValueError, match="bos_id=-1"):
        decoding.greedy_search(init, f, eos_id=EOS, max_len=4, bos_id=-1)
    with pytest.raises(ValueError, match="pad_id=9"):
        decoding.python_beam_search(init, f, 2, 0.0, EOS, 4, pad_id=9)
    nan_logits = markov_chain(np.full((5, 5), np.nan))
    for search in (lambda: decoding.beam_search({"t": jnp.zeros(2)}, nan_logits, 2, 0.0, EOS, 4),
                   lambda: decoding.greedy_search({"t": jnp.zeros(2)}, nan_logits, eos_id=EOS, max_len=4),
                   lambda: decoding.python_beam_search({"t": jnp.zeros(2)}, nan_logits, 2, 0.0, EOS, 4)):
        with pytest.raises(ValueError, match="NaN or \\+inf logits"):
            search()
    masked = markov_chain(np.where(np.eye(5, dtype=bool), -np.inf, 0.0))  # -inf logits are masks, not errors
    decoding.beam_search({"t": jnp.zeros(2)}, masked, 2, 0.0, EOS, 4)


def test_gather_beams_any_pytree():
    tree = {"h": jnp.arange(12.0).reshape(6, 2), "i": (jnp.arange(6),)}
    idx = jnp.array([[2, 0], [1, 1]])  # B=2, K_in=3 -> K_out=2
    out = decoding.gather_beams(tree, idx, batch_size=2)
    np.testing.assert_array_equal(out["i"][0], [2, 0, 4, 4])
    np.testing.assert_array_equal(out["h"][:, 0], [4.0, 0.0, 8.0, 8.0])
