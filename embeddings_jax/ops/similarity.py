"""Pairwise similarities between a batch of queries and a batch of database vectors.

All functions take ``q: [Q, D]`` and ``x: [N, D]`` in any float dtype (f32, bf16) or as int8
codes with scales (``x_scale``/``x_offset``: the vectors are ``x * x_scale + x_offset``, with
per-dimension ``[D]`` or per-vector ``[N, 1]`` scales). Products accumulate in float32 and return
``[Q, N]`` float32.

``cosine`` always normalises both sides (it never assumes unit-norm input); ``euclidean`` is the
square root of the summed squared differences.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

METRICS = ("ip", "l2", "cosine")
_EPS = 1e-12


def l2_normalize(x, axis: int = -1, eps: float = 1e-12):
    """Rows scaled to unit L2 norm; zero rows stay zero.

    A numpy array gives a numpy array (host code: indexes, vector files): its norm is floored at
    ``eps``. Anything else is computed with ``jax.numpy`` and may be traced: there the squared norm is
    floored at ``eps``, which bounds the gradient through a near-zero row (the losses' and towers'
    long-standing behaviour).
    """
    if isinstance(x, np.ndarray):
        return x / np.maximum(np.linalg.norm(x, axis=axis, keepdims=True), eps)
    x = jnp.asarray(x)
    return x * jax.lax.rsqrt(jnp.maximum(jnp.sum(x * x, axis=axis, keepdims=True), eps))


def full_precision():
    """Matmul precision giving true f32 products: HIGHEST on accelerators (whose default may round
    inputs to bf16/tf32); the default on CPU, which is already f32 and faster than HIGHEST there."""
    return None if jax.default_backend() == "cpu" else jax.lax.Precision.HIGHEST


def _matmul(a: jax.Array, b: jax.Array) -> jax.Array:
    """``a [Q, D] @ b[N, D].T`` accumulated in f32 at full precision."""
    dtype = jnp.promote_types(a.dtype, b.dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        dtype = jnp.float32
    return jax.lax.dot_general(
        a.astype(dtype), b.astype(dtype), (((1,), (1,)), ((), ())),
        precision=full_precision(), preferred_element_type=jnp.float32,
    )


def dequantize(x: jax.Array, x_scale: jax.Array | None = None, x_offset: jax.Array | None = None) -> jax.Array:
    """``x * x_scale + x_offset`` in f32 (identity cast when no scale is given). Shapes as the module docs."""
    out = x.astype(jnp.float32)
    if x_scale is not None:
        out = out * x_scale
    if x_offset is not None:
        out = out + x_offset
    return out


def dot(q: jax.Array, x: jax.Array, x_scale=None, x_offset=None) -> jax.Array:
    """Inner products ``[Q, N]``; int8 ``x`` is scored without materialising the dequantized matrix."""
    if x_scale is None and x_offset is None:
        return _matmul(q, x)
    q = q.astype(jnp.float32)
    scale = jnp.ones((), jnp.float32) if x_scale is None else jnp.asarray(x_scale, jnp.float32)
    if scale.ndim <= 1:  # per-dimension (or global) scale folds into the query
        out = _matmul(q * scale, x)
    else:  # per-vector scale [N, 1] multiplies the columns
        out = _matmul(q, x) * scale[:, 0][None, :]
    if x_offset is not None:
        offset = jnp.asarray(x_offset, jnp.float32)
        if offset.ndim <= 1:
            out = out + (q @ jnp.broadcast_to(offset, q.shape[1:]))[:, None]
        else:  # per-vector offset [N, 1]: sum_d q_d * o_n
            out = out + jnp.sum(q, axis=1, keepdims=True) * offset[:, 0][None, :]
    return out


def squared_norms(x: jax.Array, x_scale=None, x_offset=None) -> jax.Array:
    """``||x_n||^2`` as f32 ``[N]``."""
    xf = dequantize(x, x_scale, x_offset)
    return jnp.sum(xf * xf, axis=-1)


def cosine(q: jax.Array, x: jax.Array, x_scale=None, x_offset=None) -> jax.Array:
    """Cosine similarity ``[Q, N]``; a zero vector has similarity 0 with everything."""
    qn = jnp.sqrt(squared_norms(q))
    xn = jnp.sqrt(squared_norms(x, x_scale, x_offset))
    return dot(q, x, x_scale, x_offset) / jnp.maximum(qn[:, None] * xn[None, :], _EPS)


def squared_euclidean(q: jax.Array, x: jax.Array, x_scale=None, x_offset=None) -> jax.Array:
    """``sum_d (q_d - x_d)^2`` as ``[Q, N]`` (clamped at 0 against rounding)."""
    d2 = squared_norms(q)[:, None] - 2.0 * dot(q, x, x_scale, x_offset) + squared_norms(x, x_scale, x_offset)[None, :]
    return jnp.maximum(d2, 0.0)


def euclidean(q: jax.Array, x: jax.Array, x_scale=None, x_offset=None) -> jax.Array:
    """Euclidean distance ``sqrt(sum_d (q_d - x_d)^2)`` as ``[Q, N]``."""
    return jnp.sqrt(squared_euclidean(q, x, x_scale, x_offset))


def scores(q: jax.Array, x: jax.Array, metric: str, x_scale=None, x_offset=None) -> jax.Array:
    """Higher-is-better scores for ``metric``: ``ip`` dot, ``cosine``, ``l2`` = minus squared distance."""
    if metric == "ip":
        return dot(q, x, x_scale, x_offset)
    if metric == "cosine":
        return cosine(q, x, x_scale, x_offset)
    if metric == "l2":
        return -squared_euclidean(q, x, x_scale, x_offset)
    raise ValueError(f"unknown metric {metric!r}; choose one of {METRICS}")


def hamming(q_bits: jax.Array, x_bits: jax.Array) -> jax.Array:
    """Hamming distances ``[Q, N]`` (int32) between packed uint8 bit codes ``[Q, B]`` and ``[N, B]``."""
    xor = jnp.bitwise_xor(q_bits[:, None, :], x_bits[None, :, :])
    return jnp.sum(jax.lax.population_count(xor).astype(jnp.int32), axis=-1)
