"""Linear maps between two embedding spaces, and retrieval across them (bilingual lexicon induction).

Rows of ``x [N, D]`` (source) and ``z [M, D']`` (target) are word vectors of two languages; a
dictionary is a pair of index arrays ``src, trg [P]`` naming aligned rows. One function per method:

* :func:`least_squares_map`: ``W = argmin ||x[src] W - z[trg]||^2`` (Mikolov et al., 2013, the
  translation matrix);
* :func:`procrustes`: the same with ``W`` orthogonal, ``W = U V^T`` from ``svd(x[src]^T z[trg])``
  (Xing et al., 2015; Conneau et al., 2018);
* :func:`vecmap_maps`: VecMap's whitening, orthogonal mapping, re-weighting and de-whitening
  (Artetxe et al., 2018), a map for each side into a shared space;
* :func:`csls_scores`: cross-domain similarity local scaling, ``2 cos(x, z) - r_z(x) - r_x(z)``
  with ``r`` the mean cosine to the ``k`` nearest rows of the other side (Conneau et al., 2018);
* :func:`similarity_distribution`: each word's sorted similarities to the others, which are
  comparable across languages without a dictionary (VecMap's unsupervised initialisation).

Everything is jitted; ``[N, M]`` score matrices are built one block of rows at a time.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from embeddings_jax.ops.similarity import l2_normalize

BLOCK = 1024  # query rows scored together: a [BLOCK, M] float32 tile of scores at a time


def normalize_embeddings(x: jax.Array) -> jax.Array:
    """Unit length, mean-centred, unit length again (``[N, D] -> [N, D]``): the usual
    pre-processing before mapping (centring makes the two spaces' cosines comparable)."""
    x = l2_normalize(x)
    return l2_normalize(x - x.mean(axis=0))


@jax.jit
def least_squares_map(x: jax.Array, z: jax.Array) -> jax.Array:
    """``W [D, D']`` minimising ``||x W - z||^2`` over aligned rows ``x [P, D]``, ``z [P, D']``."""
    return jnp.linalg.lstsq(x, z)[0]


@jax.jit
def procrustes(x: jax.Array, z: jax.Array) -> jax.Array:
    """Orthogonal ``W [D, D]`` minimising ``||x W - z||`` over aligned rows ``x, z [P, D]``."""
    u, _, vt = jnp.linalg.svd(x.T @ z, full_matrices=False)
    return u @ vt


def _whitening(x: jax.Array) -> jax.Array:
    """``(x^T x)^(-1/2)``, ``[D, D]``."""
    _, s, vt = jnp.linalg.svd(x, full_matrices=False)
    return vt.T @ jnp.diag(1.0 / jnp.maximum(s, 1e-6)) @ vt


@functools.partial(jax.jit, static_argnames=("src_reweight", "trg_reweight"))
def vecmap_maps(x: jax.Array, z: jax.Array, src_reweight: float = 0.5, trg_reweight: float = 0.5):
    """VecMap's map of aligned rows ``x [P, D]``, ``z [P, D]``: ``(Wx [D, D], Wz [D, D])`` with
    ``x Wx`` and ``z Wz`` in one space. Whiten each side, rotate onto each other (``svd`` of the
    whitened cross-covariance), weight the dimensions by their singular values to the given
    powers, and undo the whitening in the rotated space (Artetxe et al., AAAI 2018)."""
    wx1, wz1 = _whitening(x), _whitening(z)
    u, s, vt = jnp.linalg.svd((x @ wx1).T @ (z @ wz1), full_matrices=False)
    wx2, wz2 = u, vt.T
    wx = wx1 @ wx2 @ jnp.diag(s**src_reweight) @ wx2.T @ jnp.linalg.inv(wx1) @ wx2
    wz = wz1 @ wz2 @ jnp.diag(s**trg_reweight) @ wz2.T @ jnp.linalg.inv(wz1) @ wz2
    return wx, wz


@functools.partial(jax.jit, static_argnames=("k",))
def mean_topk_similarity(q: jax.Array, x: jax.Array, k: int) -> jax.Array:
    """``[Q]`` mean of the ``k`` largest dot products of each row of ``q [Q, D]`` with ``x [N, D]``
    (CSLS's neighbourhood density ``r``)."""

    def block(qb):
        return jax.lax.top_k(qb @ x.T, k)[0].mean(axis=1)

    return _map_blocks(block, q)


@functools.partial(jax.jit, static_argnames=("topn",))
def csls_topn(q: jax.Array, z: jax.Array, r_q: jax.Array, r_z: jax.Array, topn: int):
    """The ``topn`` targets of each query by CSLS: ``(scores [Q, topn], ids [Q, topn])``.

    ``q [Q, D]`` mapped, unit queries; ``z [M, D]`` unit targets; ``r_q [Q]`` the mean similarity
    of each query to its ``k`` nearest targets and ``r_z [M]`` of each target to its ``k`` nearest
    (mapped) source words (:func:`mean_topk_similarity`).
    """

    def block(args):
        qb, rb = args
        return jax.lax.top_k(2.0 * (qb @ z.T) - rb[:, None] - r_z[None, :], topn)

    return _map_blocks(block, (q, r_q))


@functools.partial(jax.jit, static_argnames=("topn",))
def nearest_topn(q: jax.Array, z: jax.Array, topn: int):
    """The ``topn`` targets of each query by dot product (cosine for unit rows):
    ``(scores [Q, topn], ids [Q, topn])``."""
    return _map_blocks(lambda qb: jax.lax.top_k(qb @ z.T, topn), q)


def csls_scores(q: jax.Array, z: jax.Array, k: int = 10) -> jax.Array:
    """Dense CSLS scores ``[Q, M]`` of unit rows ``q [Q, D]`` against ``z [M, D]``, the neighbourhoods
    taken within these two sets (for small sets and tests; retrieval uses :func:`csls_topn`)."""
    return 2.0 * (q @ z.T) - mean_topk_similarity(q, z, k)[:, None] - mean_topk_similarity(z, q, k)[None, :]


@functools.partial(jax.jit, static_argnames=("n",))
def similarity_distribution(x: jax.Array, n: int) -> jax.Array:
    """``[n, n]`` rows: each of the first ``n`` words' similarities to the others, sorted, after
    a square root of the similarity matrix (``U S U^T`` for ``x[:n] = U S V^T``), normalised
    (:func:`normalize_embeddings`). Isometric spaces give equal rows for translations, so rows
    can be matched across languages without a dictionary."""
    u, s, _ = jnp.linalg.svd(x[:n], full_matrices=False)
    return normalize_embeddings(jnp.sort((u * s) @ u.T, axis=1))


@functools.partial(jax.jit, static_argnames=("k",))
def induce_dictionary(xw: jax.Array, zw: jax.Array, key: jax.Array, keep_prob, k: int = 10):
    """A dictionary in both directions from mapped unit rows ``xw [N, D]`` and ``zw [M, D]``: the
    CSLS-best target of every source row and source of every target row, ``(fwd [N], bwd [M])``,
    and the mean CSLS score of the forward choices (the self-learning objective).

    Each score is kept with probability ``keep_prob`` (VecMap's stochastic dictionary induction:
    early, noisy maps do not lock in their first guesses); ``keep_prob = 1`` is deterministic.
    """
    r_x, r_z = mean_topk_similarity(xw, zw, k), mean_topk_similarity(zw, xw, k)
    kx, kz = jax.random.split(key)

    def best(q, r_q, other, r_other, key):
        def block(args):
            qb, rb, i = args
            c = 2.0 * (qb @ other.T) - rb[:, None] - r_other[None, :]
            keep = jax.random.bernoulli(jax.random.fold_in(key, i[0]), keep_prob, c.shape)
            c = jnp.where(keep, c, -jnp.inf)
            return jnp.argmax(c, axis=1).astype(jnp.int32), jnp.max(c, axis=1)

        return _map_blocks(block, (q, r_q, jnp.arange(q.shape[0]) // BLOCK))

    fwd, score = best(xw, r_x, zw, r_z, kx)
    bwd, _ = best(zw, r_z, xw, r_x, kz)
    finite = jnp.isfinite(score)
    return fwd, bwd, jnp.sum(jnp.where(finite, score, 0.0)) / jnp.maximum(finite.sum(), 1)


def _map_blocks(fn, xs):
    """``fn`` over blocks of :data:`BLOCK` leading rows of ``xs`` (a pytree), concatenated."""
    n = jax.tree.leaves(xs)[0].shape[0]
    pad = -n % BLOCK
    padded = jax.tree.map(lambda a: jnp.pad(a, [(0, pad)] + [(0, 0)] * (a.ndim - 1)), xs)
    blocks = jax.tree.map(lambda a: a.reshape((-1, BLOCK) + a.shape[1:]), padded)
    out = jax.lax.map(fn, blocks)
    return jax.tree.map(lambda a: a.reshape((-1,) + a.shape[2:])[:n], out)
