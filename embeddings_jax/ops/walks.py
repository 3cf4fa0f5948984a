"""Random walks on a CSR graph, thousands advanced together in one jitted program.

DeepWalk (Perozzi et al., 2014) walks are first order: the next node is drawn from the current
node's weighted out-edges by that node's alias table (O(1) a draw, O(E) memory for all tables).
node2vec (Grover & Leskovec, 2016) walks are second order: the weight of ``cur -> x`` is scaled by
``1/p`` when ``x`` is the previous node, 1 when ``x`` is an out-neighbour of the previous node and
``1/q`` otherwise. They are drawn by rejection, as in KnightKing and pecanpy's SparseOTF: propose
from the first-order table and accept with probability ``bias / max(1/p, 1, 1/q)``, testing
neighbourhood by bisection in the previous node's sorted edge slice; memory stays O(E).

A walk's length counts nodes (``walk_length=80`` is 80 nodes, as in the node2vec paper); a walk
that reaches a node without out-edges (a directed sink, an isolated node) is padded with ``-1``.
:func:`transition_probabilities` is the exact reference the sampler is tested against.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from embeddings_jax.ops.sampling import randint_from_bits, uniform_from_bits


class WalkTables(NamedTuple):
    """A graph as the walker reads it, on device.

    Attributes:
      indptr: ``[N + 1] int32`` CSR row offsets. indices: ``[E] int32`` out-neighbours, sorted
        within each row. accept, alias: ``[E] float32`` and ``[E] int32`` per-node alias tables over
        the edge slots (``alias`` holds global slot numbers; see :func:`edge_alias_tables`).
      max_degree: largest out-degree (a host int: it fixes the bisection's trip count).
    """

    indptr: jax.Array
    indices: jax.Array
    accept: jax.Array
    alias: jax.Array
    max_degree: int


def _count_in_row(ref_row, ref_val, q_row, q_val, strict: bool) -> np.ndarray:
    """For each query, how many refs of its row are ``< q_val`` (strict) or ``<= q_val``.

    Refs are sorted by row, and by value within a row; one lexsort merges them with the queries.
    """
    nr = ref_row.size
    rows = np.concatenate([ref_row, q_row])
    vals = np.concatenate([ref_val, q_val])
    is_ref = np.concatenate([np.ones(nr, np.int8), np.zeros(q_row.size, np.int8)])
    # On ties a strict count puts the query first, a non-strict one puts the refs first.
    order = np.lexsort((is_ref if strict else 1 - is_ref, vals, rows))
    refs_before = np.cumsum(is_ref[order]) - is_ref[order]
    out = np.empty(q_row.size, np.int64)
    queries = order >= nr
    out[order[queries] - nr] = refs_before[queries]
    return out - np.searchsorted(ref_row, q_row, side="left")


def _row_prefix(values: np.ndarray, rows: np.ndarray, n: int) -> np.ndarray:
    """Inclusive prefix sums of ``values`` restarted at each row (rows non-decreasing)."""
    total = np.cumsum(values)
    start = np.searchsorted(rows, np.arange(n), side="left")
    before = np.concatenate([[0.0], total])[start]
    return total - before[rows]


def edge_alias_tables(indptr: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One Walker alias table per node over its edge slots, all built at once (vectorised).

    Draw a slot ``i`` uniformly in node ``u``'s slice ``indptr[u]:indptr[u+1]`` and ``r ~ U[0,1)``;
    the sampled slot is ``i`` if ``r < accept[i]`` else ``alias[i]`` (a slot of the same node), with
    probability ``weights[slot] / sum(weights of u's slice)``.

    The sweep construction (Hübschle-Schneider & Sanders, 2019), in prefix sums: within a row,
    light slots (scaled weight ``s < 1``) are filled in order from heavy slots in order; a heavy
    slot becomes light when its excess is spent and is then filled by the next heavy one. With
    ``D`` the lights' running deficit and ``X`` the heavies' running excess, light ``k`` is filled
    by heavy ``#{j: X_j < D_{k-1}}`` and heavy ``j`` is filled by heavy ``j + 1`` with its own
    weight ``X_j + 1 - D_k`` kept, ``k`` the first light with ``D_k > X_j``.

    Args:
      indptr: ``[N + 1]`` CSR offsets. weights: ``[E]`` positive edge weights.
    Returns:
      ``(accept [E] float32, alias [E] int32)``.
    """
    indptr = np.asarray(indptr, np.int64)
    w = np.asarray(weights, np.float64)
    n, e = indptr.size - 1, w.size
    deg = np.diff(indptr)
    row = np.repeat(np.arange(n), deg)
    total = np.bincount(row, weights=w, minlength=n)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = w * (deg / total)[row]  # mean 1 within each row
    accept = np.ones(e, np.float64)
    alias = np.arange(e, dtype=np.int64)
    light, heavy = np.flatnonzero(s < 1.0), np.flatnonzero(s >= 1.0)
    lrow, hrow = row[light], row[heavy]
    d_incl = _row_prefix(1.0 - s[light], lrow, n)
    d_excl = d_incl - (1.0 - s[light])
    x_incl = _row_prefix(s[heavy] - 1.0, hrow, n)
    h_start = np.searchsorted(hrow, np.arange(n + 1), side="left")
    l_start = np.searchsorted(lrow, np.arange(n + 1), side="left")
    h_count, l_count = np.diff(h_start), np.diff(l_start)

    # Light slots: filled by the heavy slot current when their deficit starts.
    donor = _count_in_row(hrow, x_incl, lrow, d_excl, strict=True)
    has_heavy = h_count[lrow] > 0  # only by rounding can a row have lights and no heavy
    donor = np.minimum(donor, np.maximum(h_count[lrow] - 1, 0))
    filled = light[has_heavy]
    accept[filled] = s[filled]
    alias[filled] = heavy[h_start[lrow[has_heavy]] + donor[has_heavy]]

    # Heavy slots: the first light whose running deficit passes their running excess ends them.
    k = _count_in_row(lrow, d_incl, hrow, x_incl, strict=False)
    j_local = np.arange(heavy.size) - h_start[hrow]
    ends = (k < l_count[hrow]) & (j_local < h_count[hrow] - 1)
    hj = np.flatnonzero(ends)
    residual = x_incl[hj] + 1.0 - d_incl[l_start[hrow[hj]] + k[hj]]
    accept[heavy[hj]] = np.clip(residual, 0.0, 1.0)
    alias[heavy[hj]] = heavy[hj + 1]
    return accept.astype(np.float32), alias.astype(np.int32)


def walk_tables(indptr, indices, weights=None) -> WalkTables:
    """The walker's device tables of a CSR graph (rows sorted; ``weights=None``: unweighted).

    Raises:
      ValueError: non-positive or non-finite weights, or more than 2**31 - 1 edge slots.
    """
    indptr = np.asarray(indptr, np.int64)
    indices = np.asarray(indices)
    if indices.size == 0:
        raise ValueError("the graph has no edges; a walk needs at least one edge to move along")
    if indices.size >= 2**31 - 1:
        raise ValueError(f"the graph has {indices.size} edge slots; the walker indexes them with int32 "
                         "(at most 2**31 - 2)")
    w = None if weights is None else np.asarray(weights, np.float64)
    if w is not None and (w.shape != indices.shape or not np.isfinite(w).all() or (w <= 0).any()):
        raise ValueError("edge weights must be one finite positive number per edge slot; drop "
                         "zero-weight edges and replace NaN/inf weights")
    if w is None or (w == w.flat[0]).all():  # equal weights: every slot its own alias
        accept, alias = np.ones(indices.size, np.float32), np.arange(indices.size, dtype=np.int32)
    else:
        accept, alias = edge_alias_tables(indptr, w)
    max_degree = int(np.diff(indptr).max(initial=0))
    return WalkTables(jnp.asarray(indptr, jnp.int32), jnp.asarray(indices, jnp.int32),
                      jnp.asarray(accept), jnp.asarray(alias), max_degree)


def check_return_params(p: float, q: float) -> None:
    """node2vec's return ``p`` and in-out ``q`` must be finite and positive."""
    for name, v in (("p", p), ("q", q)):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise TypeError(f"{name} must be a positive number, got {v!r}")
        if not np.isfinite(v) or v <= 0:
            raise ValueError(f"{name} must be a finite number > 0 (node2vec weighs a step by 1/{name}), "
                             f"got {v!r}; use p = q = 1 for DeepWalk")


def random_walks(tables: WalkTables, starts, walk_length: int, p: float, q: float,
                 key: jax.Array, sharding: jax.sharding.Sharding | None = None) -> jax.Array:
    """``[B, walk_length] int32`` walks from ``starts [B]`` (column 0), ``-1`` after a dead end.

    ``p = q = 1`` gives first-order (DeepWalk, or weighted first-order) walks without rejection.
    Expected proposals per second-order step are ``max(1/p, 1, 1/q) / E[bias]``, so a very small
    ``p`` or ``q`` slows the walk. Deterministic for a ``key`` on a given backend.

    ``sharding``: where ``starts`` go, e.g. split over a mesh's data axis (tables replicated on the
    same devices): each device advances its walks, and the rejection loop's stop test is one
    all-reduce a round. The walks are the same as on one device (JAX's partitionable PRNG).
    """
    check_return_params(p, q)
    if isinstance(walk_length, bool) or not isinstance(walk_length, (int, np.integer)) or walk_length < 1:
        raise ValueError(f"walk_length counts nodes and must be an integer >= 1, got {walk_length!r}")
    starts_host = np.asarray(starts)
    n = int(tables.indptr.shape[0]) - 1
    if starts_host.ndim != 1 or not np.issubdtype(starts_host.dtype, np.integer):
        raise ValueError(f"starts must be a 1-D array of node ids, got shape {starts_host.shape} "
                         f"and dtype {starts_host.dtype}")
    if starts_host.size and (starts_host.min() < 0 or starts_host.max() >= n):
        raise ValueError(f"start nodes must lie in [0, {n}); got ids from {starts_host.min()} "
                         f"to {starts_host.max()}")
    second_order = not (p == 1 and q == 1)
    starts_dev = (jnp.asarray(starts_host, jnp.int32) if sharding is None
                  else jax.device_put(starts_host.astype(np.int32), sharding))
    return _walks(tables.indptr, tables.indices, tables.accept, tables.alias,
                  starts_dev, key, jnp.float32(p), jnp.float32(q),
                  walk_length=int(walk_length), second_order=second_order,
                  search_steps=max(1, int(tables.max_degree).bit_length()))


def _first_order(indptr, indices, accept, alias, cur, bits):
    """Next node of each walk from ``cur``'s alias table; ``-1`` where ``cur`` has no out-edge."""
    safe = jnp.maximum(cur, 0)
    lo, deg = indptr[safe], indptr[safe + 1] - indptr[safe]
    slot = lo + randint_from_bits(bits[..., 0], jnp.maximum(deg, 1))
    slot = jnp.minimum(slot, indices.shape[0] - 1)  # a dead end's slot is masked below
    slot = jnp.where(uniform_from_bits(bits[..., 1]) < accept[slot], slot, alias[slot])
    return jnp.where((cur >= 0) & (deg > 0), indices[slot], -1)


def _has_edge(indptr, indices, u, x, steps: int):
    """Whether ``u -> x`` is an edge: lower-bound bisection of ``x`` in ``u``'s sorted slice."""
    last = indices.shape[0] - 1
    lo, end = indptr[u], indptr[u + 1]

    def bisect(_, bounds):
        lo, hi = bounds
        mid = (lo + hi) // 2
        right = (lo < hi) & (indices[jnp.minimum(mid, last)] < x)
        left = (lo < hi) & ~right
        return jnp.where(right, mid + 1, lo), jnp.where(left, mid, hi)

    lo, _ = jax.lax.fori_loop(0, steps, bisect, (lo, end))
    return (lo < end) & (indices[jnp.minimum(lo, last)] == x)


@functools.partial(jax.jit, static_argnames=("walk_length", "second_order", "search_steps"))
def _walks(indptr, indices, accept, alias, starts, key, p, q, *, walk_length, second_order,
           search_steps):
    b = starts.shape[0]
    if walk_length == 1:
        return starts[:, None]
    bias_prev, bias_out = 1.0 / p, 1.0 / q
    max_bias = jnp.maximum(jnp.maximum(bias_prev, 1.0), bias_out)

    def propose_accept(prev, cur, key):
        """One second-order step by rejection: proposals until every live walk accepts one. The
        first step (``prev = -1``) accepts its first proposal: it is first order."""
        def cond(state):
            return ~jnp.all(state[1])

        def body(state):
            x, done, key = state
            key, sub = jax.random.split(key)
            bits = jax.random.bits(sub, (b, 3), jnp.uint32)
            y = _first_order(indptr, indices, accept, alias, cur, bits[:, :2])
            near = _has_edge(indptr, indices, jnp.maximum(prev, 0), y, search_steps)
            bias = jnp.where(y == prev, bias_prev, jnp.where(near, 1.0, bias_out))
            bias = jnp.where(prev < 0, max_bias, bias)
            ok = ~done & (uniform_from_bits(bits[:, 2]) * max_bias < bias)
            return jnp.where(ok, y, x), done | ok, key

        safe = jnp.maximum(cur, 0)
        dead = (cur < 0) | (indptr[safe + 1] == indptr[safe])
        return jax.lax.while_loop(cond, body, (jnp.full((b,), -1, jnp.int32), dead, key))[0]

    def step(carry, key):
        prev, cur = carry
        if second_order:
            nxt = propose_accept(prev, cur, key)
        else:
            nxt = _first_order(indptr, indices, accept, alias, cur,
                               jax.random.bits(key, (b, 2), jnp.uint32))
        return (cur, nxt), nxt

    # One random-bits site per program: XLA:CPU compiles each threefry instance anew.
    keys = jax.random.split(key, walk_length - 1)
    _, tail = jax.lax.scan(step, (jnp.full((b,), -1, jnp.int32), starts), keys)
    return jnp.concatenate([starts[:, None], tail.T], axis=1)


def transition_probabilities(indptr, indices, weights, prev: int, cur: int, p: float,
                             q: float) -> np.ndarray:
    """Exact node2vec probabilities ``[N] float64`` of the step after ``prev -> cur`` (reference).

    ``prev = -1`` gives the first-order step. ``pi(x) ~ w(cur, x) * a(prev, x)`` with ``a = 1/p``
    if ``x == prev``, 1 if ``prev -> x`` is an edge, ``1/q`` otherwise.
    """
    indptr, indices = np.asarray(indptr), np.asarray(indices)
    w = np.ones(indices.size) if weights is None else np.asarray(weights, np.float64)
    out = np.zeros(indptr.size - 1)
    nbrs, wts = indices[indptr[cur]:indptr[cur + 1]], w[indptr[cur]:indptr[cur + 1]]
    if prev < 0:
        bias = np.ones(nbrs.size)
    else:
        prev_nbrs = indices[indptr[prev]:indptr[prev + 1]]
        bias = np.where(nbrs == prev, 1.0 / p, np.where(np.isin(nbrs, prev_nbrs), 1.0, 1.0 / q))
    np.add.at(out, nbrs, wts * bias)
    return out / out.sum() if out.sum() > 0 else out
