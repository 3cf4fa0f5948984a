"""Contrastive losses over a batch of paired embeddings (row i of one side matches row i of the other).

Three losses, each in three forms selected by keyword:

* ``in_batch_softmax_loss`` -- sampled softmax over in-batch candidates with optional log-Q correction
  (Yi et al. 2019); with ``temperature=1`` it is the n-pair loss (Sohn 2016).
* ``clip_loss`` -- symmetric InfoNCE (Radford et al. 2021); ``scale`` is the inverse temperature and may be
  a learnable array. A bias would cancel in the softmax, so CLIP takes none.
* ``siglip_loss`` -- pairwise sigmoid loss (Zhai et al. 2023) with learnable ``scale`` and ``bias``.

Forms:

* reference (default): materializes the ``[B, B]`` logits; the plain definition, used for parity.
* ``block_size=k``: row tiles of ``k`` queries against all candidates, with a ``jax.custom_vjp`` whose backward
  pass recomputes each tile, so memory is O(B * k) instead of O(B^2). The last tile may be shorter.
* ``mesh=...``: a ``jax.shard_map`` over the mesh's batch axis. Each device all-gathers the other side's
  embeddings, computes the loss of its own rows with labels offset by its position, and the sums are reduced;
  the value and gradients equal the global loss (no scaling by the device count). Combines with ``block_size``.

Calling the reference or blockwise form under ``jax.jit`` with batch-sharded inputs is the global-view
multi-device loss: XLA partitions it.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from embeddings_jax.ops import similarity

Array = jax.Array

__all__ = [
    "clip_loss",
    "in_batch_softmax_loss",
    "l2_normalize",
    "siglip_loss",
]


# ----------------------------------------------------------------------------------------------------------
# Input validation (at the API boundary; value checks only on concrete arrays, never inside jit)
# ----------------------------------------------------------------------------------------------------------


def _concrete(x) -> bool:
    """True for values this process can read (not traced, not spread over other processes)."""
    return not isinstance(x, jax.core.Tracer) and getattr(x, "is_fully_addressable", True)


def _check_pair(a, b, names: tuple[str, str]) -> None:
    na, nb = names
    for x, n in ((a, na), (b, nb)):
        if jnp.ndim(x) != 2:
            raise ValueError(f"{n} must be a [batch, dim] matrix, got shape {jnp.shape(x)}")
        if not jnp.issubdtype(jnp.result_type(x), jnp.floating):
            raise ValueError(f"{n} must be floating point, got dtype {jnp.result_type(x)}")
    if a.shape[0] != b.shape[0]:
        raise ValueError(
            f"mismatched batch sizes: {na} has {a.shape[0]} rows, {nb} has {b.shape[0]}; "
            "row i of each side must be a positive pair"
        )
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"mismatched embedding sizes: {na} has dim {a.shape[1]}, {nb} has dim {b.shape[1]}")
    if a.shape[0] == 0:
        raise ValueError("empty batch: contrastive losses need at least one pair")
    for x, n in ((a, na), (b, nb)):
        if _concrete(x):
            zero = np.flatnonzero(~np.any(np.asarray(x) != 0, axis=1))
            if zero.size:
                raise ValueError(
                    f"{n} has {zero.size} all-zero row(s) (first: row {zero[0]}); a zero embedding has no "
                    "direction, so the contrastive loss is meaningless (collapsed tower or padding?)"
                )


def _check_block(block_size) -> None:
    if block_size is not None and (not isinstance(block_size, (int, np.integer)) or block_size < 1):
        raise ValueError(f"block_size must be a positive int or None, got {block_size!r}")


def _check_mesh(mesh: Mesh, axis_name: str, batch: int) -> int:
    if axis_name not in mesh.axis_names:
        raise ValueError(f"mesh has axes {mesh.axis_names}, not the batch axis {axis_name!r}")
    n = mesh.shape[axis_name]
    if batch % n:
        raise ValueError(
            f"batch size {batch} is not divisible by the {n} devices on mesh axis {axis_name!r}; "
            f"pad or drop to a multiple of {n}"
        )
    return n


def l2_normalize(x: Array, axis: int = -1, eps: float = 1e-12) -> Array:
    """``similarity.l2_normalize`` that raises ValueError on an all-zero row when ``x`` is concrete
    (a contrastive loss on a zero embedding is a bug upstream, not a value to train on)."""
    if _concrete(x):
        zero = np.flatnonzero(np.all(np.asarray(x) == 0, axis=axis).reshape(-1))
        if zero.size:
            raise ValueError(f"cannot L2-normalize {zero.size} all-zero vector(s) (first at flat index {zero[0]})")
    return similarity.l2_normalize(jnp.asarray(x), axis=axis, eps=eps)


def _f32(x) -> Array:
    x = jnp.asarray(x)
    return x.astype(jnp.promote_types(x.dtype, jnp.float32))


# ----------------------------------------------------------------------------------------------------------
# Blockwise kernels: row tiles [k, n] of the logits, recomputed in the backward pass
# ----------------------------------------------------------------------------------------------------------


def _varying(*xs):
    """Casts arrays to vary over the union of their mesh axes (inside shard_map custom_vjp and scan carries
    need one type); the identity outside shard_map."""
    xs = [jnp.asarray(x) for x in xs]
    vma = set().union(*(jax.typeof(x).manual_axis_type.varying for x in xs))
    if not vma:
        return xs
    return [jax.lax.pcast(x, tuple(sorted(vma - jax.typeof(x).manual_axis_type.varying)), to="varying")
            if vma - jax.typeof(x).manual_axis_type.varying else x for x in xs]


def _full(shape, value, dtype, *like) -> Array:
    """``jnp.full`` that varies over the same mesh axes as ``like``."""
    return _varying(jnp.full(shape, value, dtype), *like)[0]


def _tiles(m: int, block: int):
    """(tile size, number of full tiles, size of the short last tile or 0)."""
    block = min(block, m)
    return block, m // block, m % block


def _over_tiles(q: Array, block: int, body, carry):
    """Runs ``body(carry, start, q_tile) -> (carry, out_tile)`` over row tiles of ``q``; concatenates outputs."""
    m = q.shape[0]
    block, full, rest = _tiles(m, block)
    q_full = q[: full * block].reshape(full, block, *q.shape[1:])

    def step(carry, xs):
        i, q_t = xs
        return body(carry, i * block, q_t)

    carry, outs = jax.lax.scan(step, carry, (jnp.arange(full), q_full))
    outs = jax.tree.map(lambda o: o.reshape(full * block, *o.shape[2:]), outs)
    if rest:
        carry, last = body(carry, full * block, q[full * block :])
        outs = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), outs, last)
    return carry, outs


@functools.partial(jax.custom_vjp, nondiff_argnums=(4, 5))
def _tiled_lse(q, c, scale, col_bias, block: int, cols: bool):
    """Row (and optionally column) log-sum-exp of ``scale * q @ c.T + col_bias``; never holds more than a tile.

    q: [m, D], c: [n, D], scale: [], col_bias: [n]. Returns (row_lse [m], col_lse [n]); col_lse is zeros
    unless ``cols``.
    """
    return _tiled_lse_fwd(q, c, scale, col_bias, block, cols)[0]


def _tiled_lse_fwd(q, c, scale, col_bias, block, cols):
    n = c.shape[0]

    def body(carry, start, q_t):
        t = scale * (q_t @ c.T) + col_bias
        row = jax.nn.logsumexp(t, axis=1)
        if cols:  # online log-sum-exp down the columns
            mx, s = carry
            new = jnp.maximum(mx, jnp.max(t, axis=0))
            s = s * jnp.exp(mx - new) + jnp.sum(jnp.exp(t - new), axis=0)
            carry = (new, s)
        return carry, row

    args = (q, c, scale, col_bias)
    init = (_full((n,), -jnp.inf, q.dtype, *args), _full((n,), 0.0, q.dtype, *args))
    (mx, s), row = _over_tiles(q, block, body, init)
    col = mx + jnp.log(s) if cols else jnp.zeros((n,), q.dtype)
    return (row, col), (q, c, scale, col_bias, row, col)


def _tiled_lse_bwd(block, cols, res, g):
    q, c, scale, col_bias, row, col = res
    g_row, g_col = g
    n = c.shape[0]

    def body(carry, start, q_t):
        dc, dscale, dbias = carry
        k = q_t.shape[0]
        raw = q_t @ c.T
        t = scale * raw + col_bias
        r = jax.lax.dynamic_slice_in_dim(row, start, k)
        gr = jax.lax.dynamic_slice_in_dim(g_row, start, k)
        p = jnp.exp(t - r[:, None]) * gr[:, None]  # d row_lse / d logits, times cotangent
        if cols:
            p = p + jnp.exp(t - col[None, :]) * g_col[None, :]
        dq_t = scale * (p @ c)
        carry = (dc + scale * (p.T @ q_t), dscale + jnp.sum(p * raw), dbias + jnp.sum(p, axis=0))
        return carry, dq_t

    args = (q, c, scale, col_bias, row, col, g_row, g_col)
    init = (_full(c.shape, 0.0, c.dtype, *args), _full((), 0.0, q.dtype, *args), _full((n,), 0.0, q.dtype, *args))
    (dc, dscale, dbias), dq = _over_tiles(q, block, body, init)
    return dq, dc, dscale, dbias


_tiled_lse.defvjp(_tiled_lse_fwd, _tiled_lse_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(5,))
def _tiled_sigmoid(x, y, scale, bias, offset, block: int):
    """Sum over all pairs of ``softplus(-z * (scale * x @ y.T + bias))``, z = +1 at (i, i + offset), else -1.

    x: [m, D], y: [n, D], scale, bias: [], offset: int32 [] (row i of x is positive with row i + offset of y).
    """
    return _tiled_sigmoid_fwd(x, y, scale, bias, offset, block)[0]


def _signs(start, k, n, offset):
    pos = (start + offset + jnp.arange(k))[:, None] == jnp.arange(n)[None, :]
    return jnp.where(pos, 1.0, -1.0)


def _tiled_sigmoid_fwd(x, y, scale, bias, offset, block):
    n = y.shape[0]

    def body(total, start, x_t):
        z = _signs(start, x_t.shape[0], n, offset).astype(x.dtype)
        t = scale * (x_t @ y.T) + bias
        return total + jnp.sum(jax.nn.softplus(-z * t)), None

    total, _ = _over_tiles(x, block, body, _full((), 0.0, x.dtype, x, y, scale, bias, offset))
    return total, (x, y, scale, bias, offset)


def _tiled_sigmoid_bwd(block, res, g):
    x, y, scale, bias, offset = res
    n = y.shape[0]

    def body(carry, start, x_t):
        dy, dscale, dbias = carry
        z = _signs(start, x_t.shape[0], n, offset).astype(x.dtype)
        raw = x_t @ y.T
        p = -g * z * jax.nn.sigmoid(-z * (scale * raw + bias))  # d loss / d logits
        carry = (dy + scale * (p.T @ x_t), dscale + jnp.sum(p * raw), dbias + jnp.sum(p))
        return carry, scale * (p @ y)

    args = (x, y, scale, bias, offset, g)
    init = (_full(y.shape, 0.0, y.dtype, *args), _full((), 0.0, x.dtype, *args), _full((), 0.0, x.dtype, *args))
    (dy, dscale, dbias), dx = _over_tiles(x, block, body, init)
    return dx, dy, dscale, dbias, None


_tiled_sigmoid.defvjp(_tiled_sigmoid_fwd, _tiled_sigmoid_bwd)


# ----------------------------------------------------------------------------------------------------------
# Local sums (shared by the single-device and the shard_map forms)
# ----------------------------------------------------------------------------------------------------------


def _row_lse(q, c, scale, col_bias, block):
    """[m] log-sum-exp over candidates of ``scale * q @ c.T + col_bias``."""
    if block is None:
        return jax.nn.logsumexp(scale * (q @ c.T) + col_bias, axis=1)
    return _tiled_lse(*_varying(q, c, scale, col_bias), block, False)[0]


def _softmax_sum(q, c, c_all, scale, log_q_all, log_q, block):
    """Sum over local rows of -log softmax at the positive; positives are the local rows of ``c``."""
    bias = jnp.zeros(c_all.shape[:1], q.dtype) if log_q_all is None else -log_q_all
    pos = scale * jnp.sum(q * c, axis=1) - (0.0 if log_q is None else log_q)
    return jnp.sum(_row_lse(q, c_all, scale, bias, block) - pos)


def _sigmoid_sum(x, y_all, scale, bias, offset, block):
    if block is None:
        z = _signs(0, x.shape[0], y_all.shape[0], offset).astype(x.dtype)
        return jnp.sum(jax.nn.softplus(-z * (scale * (x @ y_all.T) + bias)))
    return _tiled_sigmoid(*_varying(x, y_all, scale, bias, jnp.asarray(offset, jnp.int32)), block)


def _shard_map(fn, mesh: Mesh, axis_name: str, n_batch_args: int, n_replicated: int):
    """shard_map over the batch axis; replicated scalars (scale, bias) are cast to device-varying so the
    kernels see one type, and their gradients are summed over devices by the cast's transpose."""
    specs = (P(axis_name),) * n_batch_args + (P(),) * n_replicated

    def varying(*args):
        rep = [jax.lax.pcast(a, (axis_name,), to="varying") for a in args[n_batch_args:]]
        return fn(*args[:n_batch_args], *rep)

    return jax.shard_map(varying, mesh=mesh, in_specs=specs, out_specs=P())


# ----------------------------------------------------------------------------------------------------------
# Public losses
# ----------------------------------------------------------------------------------------------------------


def in_batch_softmax_loss(
    queries: Array,
    candidates: Array,
    *,
    temperature: float | Array = 1.0,
    log_q: Array | None = None,
    block_size: int | None = None,
    mesh: Mesh | None = None,
    axis_name: str = "data",
) -> Array:
    """Sampled softmax over in-batch candidates; the positive of query i is candidate i.

    loss = mean_i [ logsumexp_j (q_i.c_j / T - log_q_j) - (q_i.c_i / T - log_q_i) ]

    queries, candidates: [B, D]; log_q: [B] log sampling probability of each candidate (log-Q correction),
    or None. Returns a scalar. ``block_size`` and ``mesh`` select the blockwise and shard_map forms.
    """
    _check_pair(queries, candidates, ("queries", "candidates"))
    _check_block(block_size)
    b = queries.shape[0]
    if _concrete(temperature) and np.any(np.asarray(temperature) <= 0):
        raise ValueError(f"temperature must be positive, got {temperature}")
    if log_q is not None and jnp.shape(log_q) != (b,):
        raise ValueError(f"log_q must have shape ({b},) (one log-probability per candidate), got {jnp.shape(log_q)}")
    q, c = _f32(queries), _f32(candidates)
    scale = 1.0 / _f32(temperature)
    lq = None if log_q is None else _f32(log_q)
    if mesh is None:
        return _softmax_sum(q, c, c, scale, lq, lq, block_size) / b
    _check_mesh(mesh, axis_name, b)

    def local(q, c, lq, scale):
        c_all = jax.lax.all_gather(c, axis_name, tiled=True)
        lq_all = None if lq is None else jax.lax.all_gather(lq, axis_name, tiled=True)
        return jax.lax.psum(_softmax_sum(q, c, c_all, scale, lq_all, lq, block_size), axis_name) / b

    if lq is None:
        return _shard_map(lambda q, c, s: local(q, c, None, s), mesh, axis_name, 2, 1)(q, c, scale)
    return _shard_map(local, mesh, axis_name, 3, 1)(q, c, lq, scale)


def clip_loss(
    image: Array,
    text: Array,
    *,
    scale: float | Array,
    block_size: int | None = None,
    mesh: Mesh | None = None,
    axis_name: str = "data",
) -> Array:
    """Symmetric InfoNCE: mean of image->text and text->image cross-entropy with labels on the diagonal.

    image, text: [B, D] (normally L2-normalized); scale: inverse temperature (e.g. ``exp(log_scale)`` of a
    learnable parameter). Returns a scalar.
    """
    _check_pair(image, text, ("image", "text"))
    _check_block(block_size)
    b = image.shape[0]
    x, y, s = _f32(image), _f32(text), _f32(scale)
    if mesh is None:
        pos = s * jnp.sum(x * y, axis=1)
        if block_size is None:
            logits = s * (x @ y.T)
            row, col = jax.nn.logsumexp(logits, axis=1), jax.nn.logsumexp(logits, axis=0)
        else:
            row, col = _tiled_lse(x, y, s, jnp.zeros((b,), x.dtype), block_size, True)
        return (jnp.sum(row) + jnp.sum(col) - 2 * jnp.sum(pos)) / (2 * b)
    _check_mesh(mesh, axis_name, b)

    def local(x, y, s):
        x_all = jax.lax.all_gather(x, axis_name, tiled=True)
        y_all = jax.lax.all_gather(y, axis_name, tiled=True)
        i2t = _softmax_sum(x, y, y_all, s, None, None, block_size)
        t2i = _softmax_sum(y, x, x_all, s, None, None, block_size)
        return jax.lax.psum(i2t + t2i, axis_name) / (2 * b)

    return _shard_map(local, mesh, axis_name, 2, 1)(x, y, s)


def siglip_loss(
    image: Array,
    text: Array,
    *,
    scale: float | Array,
    bias: float | Array = 0.0,
    block_size: int | None = None,
    mesh: Mesh | None = None,
    axis_name: str = "data",
) -> Array:
    """Sigmoid loss: every (image, text) pair is a binary problem, positive on the diagonal.

    loss = (1/B) sum_ij softplus(-z_ij (scale * x_i.y_j + bias)), z_ij = 1 if i == j else -1.
    SigLIP initializes scale = 10 and bias = -10. Returns a scalar.
    """
    _check_pair(image, text, ("image", "text"))
    _check_block(block_size)
    b = image.shape[0]
    x, y, s, bi = _f32(image), _f32(text), _f32(scale), _f32(bias)
    if mesh is None:
        return _sigmoid_sum(x, y, s, bi, 0, block_size) / b
    _check_mesh(mesh, axis_name, b)

    def local(x, y, s, bi):
        y_all = jax.lax.all_gather(y, axis_name, tiled=True)
        offset = jax.lax.axis_index(axis_name) * x.shape[0]
        return jax.lax.psum(_sigmoid_sum(x, y_all, s, bi, offset, block_size), axis_name) / b

    return _shard_map(local, mesh, axis_name, 2, 2)(x, y, s, bi)
