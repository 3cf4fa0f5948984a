"""Greedy and beam search, independent of the model.

A model plugs in through one function::

    tokens_to_logits(tokens: int32 [N], cache: pytree with leading dim N) -> (logits [N, V], cache)

which consumes the previous token of every hypothesis and returns next-token logits and the
updated cache (a GRU hidden state, encoder outputs: any pytree whose leaves have the hypothesis
dimension first). Searches take ``init_cache`` with leading dim ``B`` (one row per sentence).

Conventions shared by every search here (so they can be compared exactly):
  * outputs hold the generated tokens only (no BOS), length ``max_len``, padded with ``pad_id``
    after the first ``eos_id``;
  * a hypothesis is complete when it emits ``eos_id`` or reaches ``max_len`` tokens
    (a truncated hypothesis competes like any other);
  * its score is ``sum log p / length_penalty(len, alpha)``, with ``len`` counting the EOS
    and the GNMT penalty ``((5 + len) / 6) ** alpha`` (``alpha=0``: plain log-probability).

``beam_search`` keeps the ``beam_size`` best incomplete prefixes at every step and the
``beam_size`` best complete hypotheses seen so far; it stops as soon as no live prefix can beat
the worst kept complete one (or at ``max_len``). With ``beam_size`` at least the number of
possible prefixes it is exhaustive, which the tests check against ``exhaustive_search``.
``python_beam_search`` is the same algorithm as a plain per-sentence Python loop (the reference
and the speed baseline). ``greedy_search`` follows the arg-max and stops at the first EOS; beam
search with one beam follows the same path but also keeps the best EOS seen on the way, so it
scores at least as well as greedy.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

PyTree = Any
TokensToLogits = Callable[[jax.Array, PyTree], tuple[jax.Array, PyTree]]

NEG_INF = -1.0e9  # "effectively impossible" score; far below any real log-probability


def length_penalty(length, alpha: float):
    """GNMT length penalty ``((5 + length) / 6) ** alpha`` (Wu et al. 2016)."""
    return ((5.0 + length) / 6.0) ** alpha


def _check(beam_size: int | None, alpha: float, max_len: int) -> None:
    if beam_size is not None and (not isinstance(beam_size, int) or beam_size < 1):
        raise ValueError(f"beam_size must be a positive int, got {beam_size!r}")
    if not np.isfinite(alpha) or alpha < 0:
        raise ValueError(f"alpha must be a finite number >= 0 (a length penalty, not a bonus), got {alpha}")
    if not isinstance(max_len, int) or max_len < 1:
        raise ValueError(f"max_len must be a positive int, got {max_len!r}")


def _check_token_ids(init_cache: PyTree, tokens_to_logits: TokensToLogits, **ids: int) -> None:
    """Every special id inside the model's vocabulary, read from the logits' shape (traced only)."""
    b = _batch_size(init_cache)
    logits, _ = jax.eval_shape(tokens_to_logits, jax.ShapeDtypeStruct((b,), jnp.int32), init_cache)
    vocab = logits.shape[-1]
    for name, value in ids.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < vocab:
            raise ValueError(f"{name}={value!r} is not a token id of the model's {vocab}-token vocabulary")


def _raise_on_nan(nan_seen: jax.Array) -> None:
    """Called eagerly, a search whose model gave NaN (or +inf) logits is an error; under ``jit`` the
    flag is a tracer, the scores come back NaN (``_nan_if``) and the caller checks them
    (``seq2seq.translate`` does)."""
    try:
        bad = bool(nan_seen)
    except jax.errors.TracerBoolConversionError:
        return
    if bad:
        raise ValueError("tokens_to_logits returned NaN or +inf logits (diverged or NaN parameters?); "
                         "the decoded sequences would be meaningless")


def _nan_if(nan_seen: jax.Array, scores: jax.Array) -> jax.Array:
    """NaN scores for a search that saw NaN logits (beam search would otherwise report -1e9)."""
    return jnp.where(nan_seen, jnp.nan, scores)


def _batch_size(cache: PyTree) -> int:
    leaves = jax.tree_util.tree_leaves(cache)
    if not leaves:
        raise ValueError("init_cache must hold at least one array with a leading batch dimension")
    sizes = {x.shape[0] for x in leaves}
    if len(sizes) != 1:
        raise ValueError(f"init_cache leaves disagree on the batch dimension: {sorted(sizes)}")
    return sizes.pop()


# ---------------------------------------------------------------------------------------------
# Greedy search.


def greedy_search(init_cache: PyTree, tokens_to_logits: TokensToLogits, *, eos_id: int,
                  max_len: int, bos_id: int = 1, pad_id: int = 0) -> tuple[jax.Array, jax.Array]:
    """Arg-max decoding in one ``lax.while_loop``; stops when every sentence has emitted EOS.

    Returns:
      tokens int32 [B, max_len] and their summed log-probabilities float32 [B].
    """
    _check(None, 0.0, max_len)
    _check_token_ids(init_cache, tokens_to_logits, eos_id=eos_id, bos_id=bos_id, pad_id=pad_id)
    b = _batch_size(init_cache)

    def cond(s):
        t, _, _, done, _, _, _ = s
        return (t < max_len) & ~jnp.all(done)

    def body(s):
        t, last, seqs, done, logp, cache, nan_seen = s
        logits, cache = tokens_to_logits(last, cache)
        lp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
        nan_seen = nan_seen | jnp.any(jnp.isnan(lp))
        tok = jnp.argmax(lp, axis=-1).astype(jnp.int32)
        logp = logp + jnp.where(done, 0.0, jnp.take_along_axis(lp, tok[:, None], 1)[:, 0])
        tok = jnp.where(done, pad_id, tok)
        seqs = seqs.at[:, t].set(tok)
        return t + 1, tok, seqs, done | (tok == eos_id), logp, cache, nan_seen

    init = (
        jnp.int32(0),
        jnp.full((b,), bos_id, jnp.int32),
        jnp.full((b, max_len), pad_id, jnp.int32),
        jnp.zeros((b,), bool),
        jnp.zeros((b,), jnp.float32),
        init_cache,
        jnp.zeros((), bool),
    )
    _, _, seqs, _, logp, _, nan_seen = jax.lax.while_loop(cond, body, init)
    _raise_on_nan(nan_seen)
    return seqs, _nan_if(nan_seen, logp)


# ---------------------------------------------------------------------------------------------
# Beam search.


@struct.dataclass
class BeamState:
    """Loop state; B sentences, K beams, L = max_len."""

    step: jax.Array  # int32 scalar: number of tokens generated so far
    live_tokens: jax.Array  # int32 [B, K]: last token of each live prefix
    live_seqs: jax.Array  # int32 [B, K, L]
    live_logp: jax.Array  # float32 [B, K]: summed log-probabilities (NEG_INF: empty slot)
    finished_seqs: jax.Array  # int32 [B, K, L]
    finished_scores: jax.Array  # float32 [B, K]: length-penalised (NEG_INF: empty slot)
    cache: PyTree  # leaves [B * K, ...]
    nan_seen: jax.Array  # bool scalar: some step's log-probabilities held NaN


def _flat(x):
    return x.reshape((x.shape[0] * x.shape[1],) + x.shape[2:])


def _unflat(x, b):
    return x.reshape((b, x.shape[0] // b) + x.shape[1:])


def gather_beams(tree: PyTree, beam_idx: jax.Array, batch_size: int) -> PyTree:
    """Reorders beams of every leaf: leaves [B * K_in, ...], beam_idx [B, K_out] -> [B * K_out, ...]."""

    def g(x):
        xb = _unflat(x, batch_size)
        idx = beam_idx.reshape(beam_idx.shape + (1,) * (xb.ndim - 2))
        return _flat(jnp.take_along_axis(xb, idx, axis=1))

    return jax.tree_util.tree_map(g, tree)


def beam_search(init_cache: PyTree, tokens_to_logits: TokensToLogits, beam_size: int,
                alpha: float, eos_id: int, max_len: int, *, bos_id: int = 1,
                pad_id: int = 0) -> tuple[jax.Array, jax.Array]:
    """Batched beam search in one ``lax.while_loop`` with fixed shapes (jit it around the model).

    Args:
      init_cache: pytree, leaves [B, ...]; tiled to [B * beam_size, ...] here.
      tokens_to_logits: see the module docstring.
      beam_size: K, beams kept per sentence.
      alpha: length-penalty exponent (>= 0).
      eos_id, max_len, bos_id, pad_id: see the module docstring.

    Returns:
      sequences int32 [B, K, max_len] best first, and their scores float32 [B, K]
      (NEG_INF where fewer than K complete hypotheses exist).
    """
    _check(beam_size, alpha, max_len)
    _check_token_ids(init_cache, tokens_to_logits, eos_id=eos_id, bos_id=bos_id, pad_id=pad_id)
    b, k = _batch_size(init_cache), beam_size
    cache = jax.tree_util.tree_map(lambda x: jnp.repeat(x, k, axis=0), init_cache)
    # Only beam 0 is alive at the start, so the K copies do not produce K identical beams.
    live_logp = jnp.tile(jnp.array([0.0] + [NEG_INF] * (k - 1), jnp.float32), (b, 1))
    max_penalty = length_penalty(float(max_len), alpha)

    def cond(s: BeamState):
        # No live prefix can beat the worst kept complete hypothesis: log-probabilities only
        # fall as a prefix grows, and the penalty is at most length_penalty(max_len).
        best_live = jnp.max(s.live_logp, axis=1) / max_penalty
        worst_done = jnp.min(s.finished_scores, axis=1)
        return (s.step < max_len) & ~jnp.all(worst_done > best_live)

    def body(s: BeamState):
        logits, cache = tokens_to_logits(_flat(s.live_tokens), s.cache)
        lp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
        nan_seen = s.nan_seen | jnp.any(jnp.isnan(lp))
        v = lp.shape[-1]
        cand = (s.live_logp[:, :, None] + _unflat(lp, b)).reshape(b, k * v)  # [B, K*V]
        tok = jnp.arange(k * v, dtype=jnp.int32) % v
        final = (tok == eos_id) | (s.step == max_len - 1)  # [K*V]
        valid = cand > NEG_INF / 2

        def extend(idx):  # idx [B, K] into the K*V candidates -> new seqs, beams, tokens
            beam, new_tok = idx // v, idx % v
            seqs = jnp.take_along_axis(s.live_seqs, beam[:, :, None], axis=1)
            seqs = jax.lax.dynamic_update_index_in_dim(seqs, new_tok[:, :, None], s.step, 2)
            return seqs, beam, new_tok

        # Live: the K best incomplete prefixes.
        live_logp, live_idx = jax.lax.top_k(jnp.where(final, NEG_INF, cand), k)
        live_seqs, live_beam, live_tokens = extend(live_idx)
        cache = gather_beams(cache, live_beam, b)

        # Finished: the K best complete hypotheses, old and new.
        new_scores = jnp.where(final & valid, cand / length_penalty(s.step + 1.0, alpha), NEG_INF)
        new_scores, new_idx = jax.lax.top_k(new_scores, k)
        new_seqs, _, _ = extend(new_idx)
        scores = jnp.concatenate([s.finished_scores, new_scores], axis=1)
        seqs = jnp.concatenate([s.finished_seqs, new_seqs], axis=1)
        finished_scores, keep = jax.lax.top_k(scores, k)
        finished_seqs = jnp.take_along_axis(seqs, keep[:, :, None], axis=1)

        return BeamState(
            step=s.step + 1,
            live_tokens=live_tokens,
            live_seqs=live_seqs,
            live_logp=live_logp,
            finished_seqs=finished_seqs,
            finished_scores=finished_scores,
            cache=cache,
            nan_seen=nan_seen,
        )

    init = BeamState(
        step=jnp.int32(0),
        live_tokens=jnp.full((b, k), bos_id, jnp.int32),
        live_seqs=jnp.full((b, k, max_len), pad_id, jnp.int32),
        live_logp=live_logp,
        finished_seqs=jnp.full((b, k, max_len), pad_id, jnp.int32),
        finished_scores=jnp.full((b, k), NEG_INF, jnp.float32),
        cache=cache,
        nan_seen=jnp.zeros((), bool),
    )
    out = jax.lax.while_loop(cond, body, init)
    _raise_on_nan(out.nan_seen)
    return out.finished_seqs, _nan_if(out.nan_seen, out.finished_scores)


# ---------------------------------------------------------------------------------------------
# References: a plain Python-loop beam search and an exhaustive search (test oracle).


def _host_step(tokens_to_logits, tokens: np.ndarray, cache: PyTree):
    logits, cache = tokens_to_logits(np.asarray(tokens, np.int32), cache)
    x = np.asarray(logits, np.float32)
    x = x - x.max(axis=-1, keepdims=True)
    lp = x - np.log(np.exp(x).sum(axis=-1, keepdims=True))
    _raise_on_nan(np.isnan(lp).any())
    return lp, jax.tree_util.tree_map(np.asarray, cache)


def _take(cache: PyTree, rows) -> PyTree:
    rows = np.asarray(rows, np.int64)
    return jax.tree_util.tree_map(lambda x: np.take(np.asarray(x), rows, axis=0), cache)


def _ranked_arrays(ranked: list[list[tuple[float, list[int]]]], k: int, max_len: int, pad_id: int):
    """Per sentence, up to ``k`` (score, tokens) best first -> sequences [B, k, L], scores [B, k]."""
    seqs = np.full((len(ranked), k, max_len), pad_id, np.int32)
    scores = np.full((len(ranked), k), NEG_INF, np.float32)
    for i, hyps in enumerate(ranked):
        for r, (score, seq) in enumerate(hyps[:k]):
            seqs[i, r, : len(seq)] = seq
            scores[i, r] = score
    return seqs, scores


def python_beam_search(init_cache: PyTree, tokens_to_logits: TokensToLogits, beam_size: int,
                       alpha: float, eos_id: int, max_len: int, *, bos_id: int = 1,
                       pad_id: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The same search as ``beam_search``, one sentence at a time with Python lists and sorts.

    Only the model step runs in JAX (pass a jitted ``tokens_to_logits`` for a fair timing).
    Returns numpy arrays with the shapes and conventions of ``beam_search``.
    """
    _check(beam_size, alpha, max_len)
    _check_token_ids(init_cache, tokens_to_logits, eos_id=eos_id, bos_id=bos_id, pad_id=pad_id)
    ranked = []
    max_penalty = length_penalty(float(max_len), alpha)
    for i in range(_batch_size(init_cache)):
        cache = _take(init_cache, [i])
        live = [([], np.float32(0.0))]  # (tokens, summed log-probability)
        done: list[tuple[float, list[int]]] = []
        for step in range(max_len):
            if (
                len(done) == beam_size
                and min(d[0] for d in done) > max(l[1] for l in live) / max_penalty
            ):
                break
            last = [seq[-1] if seq else bos_id for seq, _ in live]
            lp, cache = _host_step(tokens_to_logits, np.array(last), cache)
            cands = []
            for j, (seq, logp) in enumerate(live):
                for tok in range(lp.shape[1]):
                    cands.append((np.float32(logp + lp[j, tok]), j, tok))
            cands.sort(key=lambda c: -c[0])  # stable: ties keep (beam, token) order
            for logp, j, tok in cands:
                if tok == eos_id or step == max_len - 1:
                    score = float(np.float32(logp / np.float32(length_penalty(step + 1.0, alpha))))
                    done.append((score, live[j][0] + [tok]))
            done = sorted(done, key=lambda d: -d[0])[:beam_size]
            keep = [c for c in cands if not (c[2] == eos_id or step == max_len - 1)][:beam_size]
            if not keep:
                break
            cache = _take(cache, [j for _, j, _ in keep])
            live = [(live[j][0] + [tok], logp) for logp, j, tok in keep]
        ranked.append(done)
    return _ranked_arrays(ranked, beam_size, max_len, pad_id)


def exhaustive_search(init_cache: PyTree, tokens_to_logits: TokensToLogits, *, alpha: float,
                      eos_id: int, max_len: int, top_k: int = 1, bos_id: int = 1, pad_id: int = 0,
                      max_hypotheses: int = 200_000) -> tuple[np.ndarray, np.ndarray]:
    """Scores every complete hypothesis and returns the ``top_k`` best (tiny vocabularies only).

    Returns numpy sequences [B, top_k, max_len] and scores [B, top_k], best first.
    Raises ValueError when more than ``max_hypotheses`` prefixes would be expanded.
    """
    _check(top_k, alpha, max_len)
    _check_token_ids(init_cache, tokens_to_logits, eos_id=eos_id, bos_id=bos_id, pad_id=pad_id)
    ranked = []
    for i in range(_batch_size(init_cache)):
        prefixes, logps, cache = [[]], np.zeros(1, np.float32), _take(init_cache, [i])
        complete = []
        for step in range(max_len):
            if len(prefixes) > max_hypotheses:
                raise ValueError(
                    f"exhaustive search would expand {len(prefixes)} prefixes "
                    f"(> max_hypotheses={max_hypotheses}); use a smaller vocabulary or max_len"
                )
            last = np.array([p[-1] if p else bos_id for p in prefixes])
            lp, cache = _host_step(tokens_to_logits, last, cache)
            cand = logps[:, None] + lp
            penalty = np.float32(length_penalty(step + 1.0, alpha))
            rows, next_prefixes, next_logps = [], [], []
            for j, tok in itertools.product(range(len(prefixes)), range(lp.shape[1])):
                if tok == eos_id or step == max_len - 1:
                    complete.append(
                        (float(np.float32(cand[j, tok] / penalty)), prefixes[j] + [tok])
                    )
                else:
                    rows.append(j)
                    next_prefixes.append(prefixes[j] + [tok])
                    next_logps.append(cand[j, tok])
            if not next_prefixes:
                break
            cache = _take(cache, rows)
            prefixes, logps = next_prefixes, np.array(next_logps, np.float32)
        complete.sort(key=lambda c: -c[0])
        ranked.append(complete)
    return _ranked_arrays(ranked, top_k, max_len, pad_id)
