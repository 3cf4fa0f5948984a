"""Vector compression: 8-bit scalar quantization, product quantization, binary sign codes.

* SQ8: ``x ~= offset + codes * scale`` with ``codes`` uint8; scales trained per dimension on data
  (``train_sq8``) or computed per vector at encode time (``encode_sq8_per_vector``). 4x smaller than f32.
* PQ: the vector is split into ``M`` subvectors, each replaced by the id of its nearest of 256
  centroids (``M`` bytes per vector). Search uses asymmetric distances (ADC): the query stays exact
  and a per-query lookup table ``[M, 256]`` turns codes into scores with ``M`` lookups.
* Binary: one sign bit per dimension, packed into bytes; Hamming distance is a cheap first stage.
* ``quantize_embeddings``: sentence-transformers' int8 / uint8 / binary / ubinary embeddings
  (per-dimension ranges, packed sign bits), the codes the SQ8 and binary indexes search.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from embeddings_jax.ops import similarity
from embeddings_jax.ops.kmeans import assign, kmeans_subspaces

# --------------------------------------------------------------------------------------------- SQ8


def train_sq8(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension ``(scale [D], offset [D])`` mapping each dimension's trained [min, max] onto 0..255."""
    x = np.asarray(x, np.float32)
    lo, hi = x.min(axis=0), x.max(axis=0)
    scale = np.where(hi > lo, (hi - lo) / 255.0, 1.0).astype(np.float32)
    return scale, lo.astype(np.float32)


def encode_sq8(x: np.ndarray, scale: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """uint8 codes ``[N, D]`` (values outside the trained range are clipped)."""
    codes = np.rint((np.asarray(x, np.float32) - offset) / scale)
    return np.clip(codes, 0, 255).astype(np.uint8)


def encode_sq8_per_vector(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-vector min/max: ``(codes uint8 [N, D], scale [N, 1], offset [N, 1])``."""
    x = np.asarray(x, np.float32)
    lo, hi = x.min(axis=1, keepdims=True), x.max(axis=1, keepdims=True)
    scale = np.where(hi > lo, (hi - lo) / 255.0, 1.0).astype(np.float32)
    return encode_sq8(x, scale, lo), scale, lo.astype(np.float32)


def decode_sq8(codes, scale, offset):
    """``offset + codes * scale`` as f32 (numpy or JAX)."""
    return offset + codes.astype(np.float32) * scale


# ---------------------------------------------------------------------------------------------- PQ


def split(x, m: int):
    """``[N, D] -> [M, N, D / M]`` subvectors."""
    n, d = x.shape
    return x.reshape(n, m, d // m).transpose(1, 0, 2)


def train_pq(x: np.ndarray, m: int, *, ksub: int = 256, iters: int = 20, seed: int = 0,
             init: str = "random") -> np.ndarray:
    """Codebooks ``[M, ksub, D / M]`` from k-means in each subspace (in JAX).

    ``init="random"`` (FAISS's seeding) by default: k-means++ spends codewords on rare outlying
    sub-vectors, which lowers IVF-PQ recall slightly."""
    x = np.asarray(x, np.float32)
    if x.shape[1] % m:
        raise ValueError(f"PQ needs the dimension ({x.shape[1]}) to be a multiple of the number of subquantizers m={m}")
    if len(x) < ksub:
        raise ValueError(f"PQ training needs at least {ksub} vectors (one per centroid), got {len(x)}")
    return kmeans_subspaces(split(x, m), ksub, iters=iters, seed=seed, init=init)


@jax.jit
def _encode_pq(x, codebooks):
    labels = jax.vmap(lambda xs, c: assign(xs, c)[0])(split(x, codebooks.shape[0]), codebooks)
    return labels.T.astype(jnp.uint8)


def encode_pq(x, codebooks: np.ndarray, batch: int = 65536) -> np.ndarray:
    """uint8 codes ``[N, M]``: nearest centroid per subspace."""
    x = np.asarray(x, np.float32)
    cb = jnp.asarray(codebooks)
    return np.concatenate([np.asarray(_encode_pq(jnp.asarray(x[i:i + batch]), cb)) for i in range(0, len(x), batch)]) \
        if len(x) else np.zeros((0, codebooks.shape[0]), np.uint8)


def decode_pq(codes, codebooks):
    """Reconstructions ``[N, D]`` from codes ``[N, M]`` and codebooks ``[M, ksub, d]``."""
    m = codebooks.shape[0]
    parts = codebooks[np.arange(m)[None, :], np.asarray(codes).astype(np.int64)]  # [N, M, d]
    return parts.reshape(len(codes), -1)


def pq_lut(q: jax.Array, codebooks: jax.Array, metric: str = "ip") -> jax.Array:
    """ADC lookup tables ``[M, Q, ksub]``: ``<q_m, c_mj>`` for ip, ``-||q_m - c_mj||^2`` for l2
    (higher is better). Subquantizer-major, so the tables are one batched matmul over ``m``."""
    qs = split(q, codebooks.shape[0])  # [M, Q, d]
    dots = jnp.einsum("mqd,mjd->mqj", qs, codebooks, precision=similarity.full_precision())
    if metric == "ip":
        return dots
    q_sq = jnp.sum(qs * qs, axis=-1)[:, :, None]
    c_sq = jnp.sum(codebooks * codebooks, axis=-1)[:, None, :]
    return -(q_sq - 2.0 * dots + c_sq)


def adc_lookup(flat_lut: jax.Array, base: jax.Array, codes_t: jax.Array, stride: int,
               rows: jax.Array | None = None, scores=0.0) -> jax.Array:
    """Asymmetric distances: ``scores + sum_m flat_lut[base + m * stride + code_m]``.

    ``flat_lut`` is a flattened stack of tables; ``base`` (broadcasting against the codes) is where
    each result's table starts and ``stride`` the distance between subquantizers' tables.
    ``codes_t [M, ...]`` uint8 holds ``code_m = codes_t[m]`` (or ``codes_t[m, rows]``). Indices are
    unsigned and in bounds by construction, which spares XLA a negative-index wrap and a clamp per
    lookup.
    """
    base = jnp.asarray(base).astype(jnp.uint32)
    for m in range(codes_t.shape[0]):
        code = codes_t[m] if rows is None else codes_t[m, rows]
        idx = base + jnp.uint32(m * stride) + code.astype(jnp.uint32)
        scores = scores + flat_lut.at[idx].get(mode="promise_in_bounds")
    return scores


def adc_scores(lut: jax.Array, codes: jax.Array) -> jax.Array:
    """``scores[q, n] = sum_m lut[q, m, codes[n, m]]`` for query-major tables ``[Q, M, ksub]``
    (``pq_lut(...).swapaxes(0, 1)``) and codes ``[N, M]``: ``[Q, N]``. The plain form of ``adc_lookup``."""
    m, ksub = lut.shape[1:]
    flat = lut.reshape(lut.shape[0], m * ksub)
    idx = codes.astype(jnp.int32) + jnp.arange(m, dtype=jnp.int32) * ksub  # [N, M]
    return jnp.sum(jnp.take(flat, idx, axis=1), axis=-1)


# ------------------------------------------------------------------------------------------ binary


def binary_codes(x) -> np.ndarray:
    """Sign bits (1 where ``x > 0``) packed big-endian into uint8 ``[N, ceil(D / 8)]``."""
    return np.packbits(np.asarray(x) > 0, axis=-1)


# ---------------------------------------------------------------- sentence-transformers' embedding precisions
PRECISIONS = ("float32", "int8", "uint8", "binary", "ubinary")


def quantize_embeddings(embeddings, precision: str, ranges: np.ndarray | None = None,
                        calibration_embeddings: np.ndarray | None = None):
    """sentence-transformers' ``quantize_embeddings``, in numpy.

    ``int8`` / ``uint8``: 256 buckets per dimension between the minimum and maximum of ``ranges``
    ``[2, D]``, else of ``calibration_embeddings``, else of the embeddings themselves. ``binary`` /
    ``ubinary``: the bits ``x > 0`` packed eight to a byte (``np.packbits``), ``binary`` shifted by
    -128 into int8. A list of ``[T_i, D]`` matrices shares one set of ranges.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not supported; choose from {PRECISIONS}")
    if isinstance(embeddings, list):
        if not embeddings:
            return []
        if np.ndim(embeddings[0]) == 2:
            if precision.endswith("int8") and ranges is None:
                calib = np.concatenate(embeddings) if calibration_embeddings is None else calibration_embeddings
                if len(calib):
                    ranges = _quantization_ranges(np.asarray(calib), precision, calibration_embeddings)
            return [quantize_embeddings(m, precision, ranges, calibration_embeddings) for m in embeddings]
    x = np.asarray(embeddings)
    if x.dtype in (np.int8, np.uint8):
        raise ValueError("embeddings to quantize must be float, not int8 or uint8")
    if x.ndim == 2 and x.shape[0] == 0:
        width = (x.shape[1] + 7) // 8 if precision.endswith("binary") else x.shape[1]
        return np.zeros((0, width), np.float32 if precision == "float32"
                        else np.int8 if precision in ("int8", "binary") else np.uint8)
    if precision == "float32":
        return x.astype(np.float32)
    if precision.endswith("int8"):
        if ranges is None:
            ranges = _quantization_ranges(x, precision, calibration_embeddings)
        ranges = np.asarray(ranges).astype(np.float32, copy=False)
        starts = ranges[0, :]
        steps = (ranges[1, :] - starts) / 255
        steps = np.where(steps == 0, 1, steps)
        q = np.clip(np.floor((x - starts) / steps), 0, 255)
        return q.astype(np.uint8) if precision == "uint8" else (q - 128).astype(np.int8)
    bits = binary_codes(x)
    return (bits - 128).astype(np.int8) if precision == "binary" else bits


def _quantization_ranges(x: np.ndarray, precision: str, calibration: np.ndarray | None) -> np.ndarray:
    if calibration is None:
        if x.ndim == 1 or x.shape[0] == 1:
            raise ValueError(
                f"cannot compute {precision} quantization ranges from a single embedding; pass "
                "`ranges` or `calibration_embeddings` from a representative set of embeddings"
            )
        calibration = x
    calibration = np.asarray(calibration)
    return np.vstack((calibration.min(axis=0), calibration.max(axis=0)))
