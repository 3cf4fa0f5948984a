"""k-means in JAX: k-means++ or random seeding, Lloyd iterations with FAISS-style empty-cluster splits, one jitted program.

Used for IVF coarse cells (one k-means) and product-quantizer codebooks (``vmap`` over subspaces).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from embeddings_jax.ops import similarity


def assign(x: jax.Array, centers: jax.Array, chunk: int = 8192):
    """Nearest center of each row: ``(labels [N] int32, squared distances [N])``, ties to the lower index.

    Rows are processed in chunks so memory is ``O(chunk x k)``.
    """
    x, centers = jnp.asarray(x), jnp.asarray(centers)
    c_sq = similarity.squared_norms(centers)

    def one(xc):
        d = similarity.squared_norms(xc)[:, None] - 2.0 * similarity.dot(xc, centers) + c_sq[None, :]
        best = jnp.min(d, axis=1)
        # first index attaining the minimum, with plain (fast) reductions instead of argmin
        labels = jnp.min(jnp.where(d == best[:, None], jnp.arange(d.shape[1], dtype=jnp.int32), d.shape[1]), axis=1)
        return labels, jnp.maximum(best, 0.0)

    n = x.shape[0]
    if n <= chunk:
        return one(x)
    pad = -n % chunk
    xp = jnp.pad(x, ((0, pad), (0, 0))).reshape(-1, chunk, x.shape[1])
    labels, d = jax.lax.map(one, xp)
    return labels.reshape(-1)[:n], d.reshape(-1)[:n]


def kmeans_plusplus(key: jax.Array, x: jax.Array, k: int) -> jax.Array:
    """k-means++ seeding (Arthur & Vassilvitskii 2007): ``[k, D]`` centers drawn from the rows of ``x``,
    each new one with probability proportional to its squared distance to the nearest chosen center."""
    x = jnp.asarray(x)
    n = x.shape[0]
    key, first = jax.random.split(key)
    c0 = x[jax.random.randint(first, (), 0, n)]
    centers = jnp.zeros((k, x.shape[1]), x.dtype).at[0].set(c0)
    x_sq = similarity.squared_norms(x)

    def dist_to(c):
        return jnp.maximum(x_sq - 2.0 * jnp.dot(x, c, precision=similarity.full_precision()) + jnp.sum(c * c), 0.0)

    def body(i, state):
        centers, d2, key = state
        key, sub = jax.random.split(key)
        logits = jnp.where(d2 > 0, jnp.log(jnp.maximum(d2, 1e-30)), -jnp.inf)
        # all points coincide with chosen centers: fall back to uniform
        logits = jnp.where(jnp.any(d2 > 0), logits, jnp.zeros_like(logits))
        c = x[jax.random.categorical(sub, logits)]
        return centers.at[i].set(c), jnp.minimum(d2, dist_to(c)), key

    centers, _, _ = jax.lax.fori_loop(1, k, body, (centers, dist_to(c0), key))
    return centers


def random_init(key: jax.Array, x: jax.Array, k: int) -> jax.Array:
    """``k`` distinct rows of ``x`` drawn uniformly (FAISS's seeding): ``[k, D]``."""
    return x[jax.random.choice(key, x.shape[0], (k,), replace=False)]


INITS = {"kmeans++": kmeans_plusplus, "random": random_init}

_SPLIT_EPS = 1.0 / 1024.0


def split_empty(centers: jax.Array, counts: jax.Array) -> jax.Array:
    """Re-seeds empty clusters as FAISS does: the ``i``-th empty cluster takes the ``i``-th largest cluster
    (if it holds at least two points) and the two centers are pushed apart by a relative ``1/1024``,
    in opposite directions on alternate dimensions, so the next assignment splits that cluster."""
    k, dim = centers.shape
    empty = counts == 0
    donors = jnp.argsort(-counts, stable=True)
    donor = donors[jnp.clip(jnp.cumsum(empty) - 1, 0, k - 1)]  # [k]: donor of each empty cluster
    use = empty & (counts[donor] > 1)
    sign = jnp.where(jnp.arange(dim) % 2 == 0, 1.0, -1.0) * _SPLIT_EPS
    moved = jnp.where(use[:, None], centers[donor] * (1.0 + sign), centers)
    # donors are distinct non-empty clusters: the scatter writes each donor row once
    return moved.at[jnp.where(use, donor, k)].set(centers[donor] * (1.0 - sign), mode="drop")


def lloyd(x: jax.Array, centers: jax.Array, iters: int):
    """``iters`` Lloyd steps; an empty cluster is re-seeded by splitting a large one (``split_empty``).
    Returns ``(centers, inertia)``."""
    k = centers.shape[0]

    def step(_, centers):
        labels, _ = assign(x, centers)
        sums = jax.ops.segment_sum(x, labels, num_segments=k)
        counts = jax.ops.segment_sum(jnp.ones_like(labels, jnp.float32), labels, num_segments=k)
        centers = jnp.where(counts[:, None] > 0, sums / jnp.maximum(counts, 1.0)[:, None], centers)
        return split_empty(centers, counts)

    centers = jax.lax.fori_loop(0, iters, step, centers)
    return centers, jnp.sum(assign(x, centers)[1])


@functools.partial(jax.jit, static_argnames=("k", "iters", "init"))
def _kmeans(key, x, k, iters, init):
    return lloyd(x, INITS[init](key, x, k), iters)


@functools.partial(jax.jit, static_argnames=("k", "iters", "init"))
def _kmeans_batched(key, xs, k, iters, init):
    keys = jax.random.split(key, xs.shape[0])
    return jax.vmap(lambda kk, xx: lloyd(xx, INITS[init](kk, xx, k), iters))(keys, xs)


def _check_init(init: str) -> None:
    if init not in INITS:
        raise ValueError(f"k-means init must be one of {sorted(INITS)}, got {init!r}")


def _sample(x: np.ndarray, k: int, max_points_per_center: int, seed: int) -> np.ndarray:
    limit = k * max_points_per_center
    if x.shape[-2] <= limit:
        return x
    rows = np.sort(np.random.default_rng(seed).choice(x.shape[-2], limit, replace=False))
    return x[..., rows, :]


def kmeans(x, k: int, *, iters: int = 20, seed: int = 0, max_points_per_center: int = 256, init: str = "kmeans++"):
    """Trains ``k`` centers on ``x [N, D]`` (numpy or JAX). Like FAISS, at most ``k * max_points_per_center``
    rows (a seeded random subset) are used. ``init``: ``"kmeans++"`` or ``"random"`` (distinct rows).
    Returns ``(centers [k, D] f32 numpy, inertia float)``."""
    _check_init(init)
    x = np.asarray(x, np.float32)
    if x.ndim != 2:
        raise ValueError(f"k-means needs a [N, D] matrix, got shape {x.shape}")
    if not 0 < k <= x.shape[0]:
        raise ValueError(f"k-means needs 0 < k <= number of training vectors, got k={k} for {x.shape[0]} vectors")
    x = _sample(x, k, max_points_per_center, seed)
    centers, inertia = _kmeans(jax.random.key(seed), jnp.asarray(x), k, iters, init)
    return np.asarray(centers), float(inertia)


def kmeans_subspaces(x, k: int, *, iters: int = 20, seed: int = 0, max_points_per_center: int = 256,
                     init: str = "kmeans++"):
    """Independent k-means in each subspace of ``x [M, N, d]`` (vmapped): ``centers [M, k, d]`` numpy."""
    _check_init(init)
    x = np.asarray(x, np.float32)
    if not 0 < k <= x.shape[1]:
        raise ValueError(f"k-means needs 0 < k <= number of training vectors, got k={k} for {x.shape[1]} vectors")
    x = _sample(x, k, max_points_per_center, seed)
    centers, _ = _kmeans_batched(jax.random.key(seed), jnp.asarray(x), k, iters, init)
    return np.asarray(centers)
