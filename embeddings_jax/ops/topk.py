"""Exact blockwise top-k: scan a database in blocks inside one jitted program.

The database is a pytree whose leaves are blocked as ``[num_blocks, block, ...]`` (see
``block_database``). A ``score_fn(q_state, block) -> [Qb, block]`` gives higher-is-better scores;
a running ``[Qb, k]`` top-k is merged with each block's top-k, so memory is ``O(Qb * block)``,
never ``O(Qb * N)``. Sharded over a mesh, each device scans its slice of blocks and the per-shard
top-k lists are merged globally.

Ties are broken by position: among equal scores the lower database position comes first (XLA's
``top_k`` is stable and every merge lists lower positions first). Slots beyond the number of valid
vectors hold score ``-inf`` and position ``-1`` (FAISS's convention for "fewer than k found").
An optional blocked boolean ``mask`` (same ``[num_blocks, block]`` layout) excludes rows inside the
scan, so a filtered search still returns the best ``k`` allowed rows.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

ScoreFn = Callable[[Any, Any], jax.Array]


def topk(scores: jax.Array, k: int, approx: bool = False, recall_target: float = 0.95):
    """Top-k along the last axis: ``(values [..., k], indices [..., k] int32)``, ties lower index first.

    ``approx=True`` uses ``jax.lax.approx_max_k`` (fast on TPU; elsewhere XLA lowers it to an exact sort).
    """
    if approx:
        return jax.lax.approx_max_k(scores, k, recall_target=recall_target)
    return chunked_topk(scores, k)


def chunked_topk(scores: jax.Array, k: int, chunk: int = 16):
    """Exact top-k of ``scores [Q, B]`` (same result and tie order as ``lax.top_k``), cheaper for ``k << B``.

    Takes the max of each run of ``chunk`` scores, keeps the ``k`` best runs (any top-k element lies in
    one of them, ties included), then sorts only those ``k * chunk`` candidates.
    """
    qb, width = scores.shape
    if width % chunk or width < 4 * k * chunk:
        return jax.lax.top_k(scores, k)
    runs = scores.reshape(qb, width // chunk, chunk)
    _, best = jax.lax.top_k(jnp.max(runs, axis=2), k)
    best = jnp.sort(best, axis=1)  # keep candidates in position order so ties stay lower-position first
    cand = jnp.take_along_axis(runs, best[:, :, None], axis=1).reshape(qb, k * chunk)
    cand_pos = (best[:, :, None] * chunk + jnp.arange(chunk, dtype=best.dtype)).reshape(qb, k * chunk)
    vals, where = jax.lax.top_k(cand, k)
    return vals, jnp.take_along_axis(cand_pos, where, axis=1)


def merge_topk(vals_a, ids_a, vals_b, ids_b, k: int):
    """Merges two top lists ``[Q, ka]`` and ``[Q, kb]``; on ties entries of ``a`` win (pass lower ids as ``a``)."""
    vals = jnp.concatenate([vals_a, vals_b], axis=1)
    ids = jnp.concatenate([ids_a, ids_b], axis=1)
    top_vals, where = jax.lax.top_k(vals, k)
    return top_vals, jnp.take_along_axis(ids, where, axis=1)


def block_database(tree, block_size: int, num_shards: int = 1):
    """Pads the leading axis ``N`` of every leaf to a multiple of ``block_size * num_shards`` and
    reshapes to ``[num_blocks, block_size, ...]`` (numpy in, numpy out)."""
    leaves = jax.tree.leaves(tree)
    n = leaves[0].shape[0]
    num_blocks = max(1, -(-n // block_size))
    num_blocks = -(-num_blocks // num_shards) * num_shards
    total = num_blocks * block_size

    def pad(a):
        a = np.asarray(a)
        out = np.zeros((total, *a.shape[1:]), a.dtype)
        out[:n] = a
        return out.reshape(num_blocks, block_size, *a.shape[1:])

    return jax.tree.map(pad, tree)


def blockwise_topk(score_fn: ScoreFn, q_state, blocks, n_valid, k: int, base=0, approx: bool = False, mask=None):
    """Running top-k over database blocks.

    Args:
      score_fn: ``(q_state, block) -> [Qb, B]`` f32 scores, higher is better.
      q_state: pytree of per-query arrays, all with leading axis ``Qb``.
      blocks: pytree with leaves ``[num_blocks, B, ...]``.
      n_valid: number of real vectors (positions ``>= n_valid`` are padding).
      k: results per query; ``base`` is the position of ``blocks``' first row.
      mask: optional bool ``[num_blocks, B]``; rows where it is False are never returned.
    Returns:
      ``(scores [Qb, k] f32, positions [Qb, k] int32)``, ``-inf``/``-1`` where fewer than ``k`` exist.
    """
    first = jax.tree.leaves(blocks)[0]
    num_blocks, block = first.shape[:2]
    qb = jax.tree.leaves(q_state)[0].shape[0]
    kb = min(k, block)
    offsets = jnp.arange(block, dtype=jnp.int32)

    def body(carry, xs):
        vals, ids = carry
        j, blk, allowed = xs
        pos = base + j * block + offsets
        valid = pos < n_valid if allowed is None else (pos < n_valid) & allowed
        s = jnp.where(valid[None, :], score_fn(q_state, blk), -jnp.inf)
        bv, bi = topk(s, kb, approx=approx)
        bid = jnp.where(jnp.take(valid, bi), jnp.take(pos, bi), -1)
        return merge_topk(vals, ids, bv, bid, k), None

    init = (jnp.full((qb, k), -jnp.inf, jnp.float32), jnp.full((qb, k), -1, jnp.int32))
    (vals, ids), _ = jax.lax.scan(body, init, (jnp.arange(num_blocks, dtype=jnp.int32), blocks, mask))
    return vals, ids


@functools.cache
def _compiled(score_fn: ScoreFn, k: int, mesh: Mesh | None, axis: str, approx: bool):
    if mesh is None:
        return jax.jit(lambda q, blocks, n, mask: blockwise_topk(score_fn, q, blocks, n, k, approx=approx, mask=mask))

    shards = mesh.shape[axis]

    def local(q, blocks, n, mask):
        per_shard = jax.tree.leaves(blocks)[0].shape[0] * jax.tree.leaves(blocks)[0].shape[1]
        base = jax.lax.axis_index(axis) * per_shard
        vals, ids = blockwise_topk(score_fn, q, blocks, n, k, base=base, approx=approx, mask=mask)
        return vals[None], ids[None]

    def run(q, blocks, n, mask):
        vals, ids = jax.shard_map(
            local, mesh=mesh, in_specs=(P(), P(axis), P(), P(axis)), out_specs=P(axis), check_vma=False,
        )(q, blocks, n, mask)
        qb = vals.shape[1]  # [S, Qb, k] -> [Qb, S * k] in shard (= position) order
        vals = vals.transpose(1, 0, 2).reshape(qb, shards * k)
        ids = ids.transpose(1, 0, 2).reshape(qb, shards * k)
        top, where = jax.lax.top_k(vals, k)
        return top, jnp.take_along_axis(ids, where, axis=1)

    return jax.jit(run)


def put_blocks(blocks, mesh: Mesh | None = None, axis: str = "data"):
    """Moves blocked database leaves to device(s): sharded on the block axis over ``mesh[axis]``."""
    if mesh is None:
        return jax.tree.map(jnp.asarray, blocks)
    sharding = NamedSharding(mesh, P(axis))
    return jax.tree.map(lambda a: jax.device_put(a, sharding), blocks)


def search_blocks(
    score_fn: ScoreFn, q_state, blocks, n_valid: int, k: int, *,
    query_batch: int = 1024, mesh: Mesh | None = None, axis: str = "data", approx: bool = False, mask=None,
):
    """Host driver: batches queries (the last batch is padded so one program serves all) and runs
    the blockwise top-k, sharded over ``mesh[axis]`` when a mesh is given. ``mask``: optional blocked
    bool rows to keep, placed like ``blocks`` (``put_blocks``).

    Returns numpy ``(scores [Q, k] f32, positions [Q, k] int32)``.
    """
    fn = _compiled(score_fn, int(k), mesh, axis, bool(approx))
    q_leaves, treedef = jax.tree.flatten(q_state)
    nq = q_leaves[0].shape[0]
    qb = min(query_batch, 1 << max(0, nq - 1).bit_length())  # powers of two: few distinct programs
    n = jnp.int32(n_valid)
    out_v, out_i = [], []
    for start in range(0, nq, qb):
        chunk = [np.asarray(a[start:start + qb]) for a in q_leaves]
        size = chunk[0].shape[0]
        if size < qb:
            chunk = [np.concatenate([a, np.zeros((qb - size, *a.shape[1:]), a.dtype)]) for a in chunk]
        v, i = fn(jax.tree.unflatten(treedef, chunk), blocks, n, mask)
        out_v.append(v[:size])
        out_i.append(i[:size])
    vals = np.concatenate([np.asarray(v) for v in out_v])
    ids = np.concatenate([np.asarray(i) for i in out_i])
    return vals, ids
