"""Sampling distributions of word2vec: frequent-word subsampling and unigram^a negatives.

Keep probabilities follow gensim's ``sample`` semantics exactly; negatives are drawn on device in
O(1) per sample with Walker's alias method (two ``[V]`` tables instead of a 10^8-entry unigram
table).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def keep_probabilities(counts: np.ndarray, sample: float) -> np.ndarray:
    """Probability of keeping each occurrence of a word during training, ``[V] float64``.

    gensim/word2vec formula: with ``t = sample * total`` (or ``t = sample`` when ``sample >= 1``,
    an absolute count), ``p(w) = min(1, (sqrt(c_w / t) + 1) * t / c_w)``; ``sample = 0`` keeps all.
    """
    counts = np.asarray(counts, dtype=np.float64)
    if sample < 0:
        raise ValueError(f"sample must be >= 0, got {sample}")
    if sample == 0 or counts.size == 0:
        return np.ones_like(counts)
    threshold = sample * counts.sum() if sample < 1.0 else float(sample)
    with np.errstate(divide="ignore"):
        p = (np.sqrt(counts / threshold) + 1.0) * (threshold / counts)
    return np.minimum(p, 1.0)


def unigram_weights(counts: np.ndarray, exponent: float = 0.75) -> np.ndarray:
    """Negative-sampling distribution ``c_w^a / sum_v c_v^a``, ``[V] float64``."""
    w = np.asarray(counts, dtype=np.float64) ** exponent
    if w.size == 0 or not np.isfinite(w).all() or w.sum() <= 0:
        raise ValueError("negative-sampling weights need at least one positive count")
    return w / w.sum()


def build_alias_table(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walker/Vose alias table for a discrete distribution.

    Args:
      probs: ``[V]`` non-negative weights (normalised here).
    Returns:
      ``(accept [V] float32, alias [V] int32)``: draw ``i ~ U{0..V-1}``, ``u ~ U[0,1)`` and return
      ``i`` if ``u < accept[i]`` else ``alias[i]``.
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 1 or p.size == 0 or (p < 0).any() or p.sum() <= 0:
        raise ValueError("alias table needs a non-empty 1-D vector of non-negative weights")
    n = p.size
    scaled = p * (n / p.sum())
    accept = np.ones(n, dtype=np.float64)
    alias = np.arange(n, dtype=np.int64)
    small = [i for i in range(n) if scaled[i] < 1.0]
    large = [i for i in range(n) if scaled[i] >= 1.0]
    while small and large:
        s, g = small.pop(), large.pop()
        accept[s], alias[s] = scaled[s], g
        scaled[g] -= 1.0 - scaled[s]
        (small if scaled[g] < 1.0 else large).append(g)
    # Leftovers are 1 up to rounding error.
    return accept.astype(np.float32), alias.astype(np.int32)


def uniform_from_bits(bits: jax.Array) -> jax.Array:
    """``U[0, 1)`` float32 from uint32 random bits (top 24 bits; one draw serves many uses)."""
    return (bits >> 8).astype(jnp.float32) * (1.0 / (1 << 24))


def randint_from_bits(bits: jax.Array, n: int | jax.Array) -> jax.Array:
    """Integers in ``[0, n)`` from uint32 random bits (24-bit resolution, for ``n <= 2**24``)."""
    return jnp.minimum((uniform_from_bits(bits) * n).astype(jnp.int32), n - 1)


def alias_sample_from_bits(bits: jax.Array, accept: jax.Array, alias: jax.Array) -> jax.Array:
    """Alias-table samples from two uint32 words each: ``bits [..., 2] -> int32 [...]``."""
    accept, alias = jnp.asarray(accept), jnp.asarray(alias)
    i = randint_from_bits(bits[..., 0], accept.shape[0])
    return jnp.where(uniform_from_bits(bits[..., 1]) < accept[i], i, alias[i])


def alias_sample(key: jax.Array, accept: jax.Array, alias: jax.Array, shape) -> jax.Array:
    """Draws ``shape`` int32 samples from an alias table (jit-friendly, O(1) per sample)."""
    bits = jax.random.bits(key, tuple(shape) + (2,), jnp.uint32)
    return alias_sample_from_bits(bits, accept, alias)


def alias_probabilities(accept: np.ndarray, alias: np.ndarray) -> np.ndarray:
    """The distribution an alias table samples from (for checks): ``[V] float64``."""
    n = accept.size
    p = accept.astype(np.float64) / n
    np.add.at(p, alias, (1.0 - accept.astype(np.float64)) / n)
    return p
