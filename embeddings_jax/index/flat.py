"""Exact (brute-force) search: ``FlatIndex`` = FAISS's IndexFlatL2 / IndexFlatIP, plus explicit cosine."""

from __future__ import annotations

import numpy as np

from embeddings_jax.index.base import Index
from embeddings_jax.ops import similarity, topk


def ip_score(q_state, block):
    """Inner product of queries ``[Qb, D]`` with a block ``(x [B, D],)``."""
    (q,) = q_state
    return similarity.dot(q, block[0])


def l2_score(q_state, block):
    """``q.x - ||x||^2 / 2``: ranks like ``-||q - x||^2`` (the query norm is added back on the host)."""
    (q,) = q_state
    x, half_sqnorm = block
    return similarity.dot(q, x) - half_sqnorm[None, :]


def round_block(n: int, block_size: int, shards: int) -> int:
    """Block length: ``block_size``, or less for small databases (a multiple of 128 covering n / shards)."""
    per_shard = -(-n // shards)
    return int(min(block_size, max(128, -(-per_shard // 128) * 128)))


def pad_rows(a: np.ndarray, n: int) -> np.ndarray:
    """``a`` with zero rows appended to ``n`` rows."""
    return np.concatenate([a, np.zeros((n - len(a), *a.shape[1:]), a.dtype)]) if n > len(a) else a


class BlockScanIndex(Index):
    """Base of the indexes scanned blockwise over per-row arrays (Flat, SQ8, PQ, Binary).

    ``_tree(positions)`` gives the arrays ``[n, ...]`` a score function reads; ``_scan`` runs the
    blockwise top-k over all rows (blocks cached on the device), over a gathered copy of the allowed
    rows when an allow list is small (the scan then costs what those rows cost), or with a row mask.
    """

    subset_fraction = 0.25  # allow lists up to this share of the rows are gathered rather than masked

    def _tree(self, positions: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
        raise NotImplementedError

    def _shards(self) -> int:
        return 1 if self.mesh is None else self.mesh.shape["data"]

    def _blocks(self):
        """Cached ``(device blocks, n, block length)`` of all rows."""
        if self._device is None:
            tree = self._tree()
            n = len(tree[0])
            block = round_block(n, self.block_size, self._shards())
            self._device = (topk.put_blocks(topk.block_database(tree, block, self._shards()), self.mesh), n, block)
        return self._device

    def _scan(self, score_fn, q_state, k: int, allowed: np.ndarray | None):
        """Top ``k`` ``(scores, positions)`` of ``score_fn`` over the rows where ``allowed`` (``None`` = all)."""
        keep = mask = None
        if allowed is None:
            blocks, n, _ = self._blocks()
        elif allowed.sum() <= self.subset_fraction * len(allowed):
            keep = np.flatnonzero(allowed)
            size = max(128, 1 << (len(keep) - 1).bit_length())  # powers of two: few distinct programs
            block = round_block(size, self.block_size, self._shards())
            tree = tuple(pad_rows(a, size) for a in self._tree(keep))
            blocks, n = topk.put_blocks(topk.block_database(tree, block, self._shards()), self.mesh), len(keep)
        else:
            blocks, n, block = self._blocks()
            mask = topk.put_blocks(topk.block_database(allowed, block, self._shards()), self.mesh)
        scores, pos = topk.search_blocks(score_fn, q_state, blocks, n, k, query_batch=self.query_batch,
                                         mesh=self.mesh, approx=self.approx, mask=mask)
        if keep is not None:
            pos = np.where(pos < 0, -1, keep[np.maximum(pos, 0)])
        return scores, pos.astype(np.int64)


class FlatIndex(BlockScanIndex):
    """Exact search over all vectors with a blockwise top-k.

    Args:
      dim: vector dimension.
      metric: ``"l2"`` (squared distances, ascending), ``"ip"`` (inner products, descending) or
        ``"cosine"`` (both sides normalised by the index, descending).
      mesh: optional ``jax.sharding.Mesh``; the database is sharded over its ``"data"`` axis and
        per-shard top-k lists are merged.
      block_size: database rows scored per step (memory ``query_batch x block_size`` floats; large
        blocks amortise the per-block top-k merge over more rows).
      query_batch: queries per program call.
      approx: use ``jax.lax.approx_max_k`` per block (default: only on TPU, where it is accelerated).
    """

    def __init__(self, dim: int, metric: str = "l2", **kwargs):
        kwargs.setdefault("block_size", 16384)
        super().__init__(dim, metric, **kwargs)
        self._x = np.zeros((0, self.dim), np.float32)
        self._device = None  # cached (blocks, n) on device

    def add(self, x, ids=None) -> None:
        """Appends ``x [n, dim]`` with optional integer ``ids [n]`` (default: consecutive)."""
        x, ids = self._prepare_add(x, ids)
        self._ids = np.concatenate([self._ids, ids])
        self._x = np.concatenate([self._x, x])
        self._device = None

    def _vectors(self, positions):
        return self._x[positions]

    def _remove_rows(self, keep):
        self._x = self._x[keep]
        self._device = None

    def _tree(self, positions=None):
        x = self._x if positions is None else self._x[positions]
        return (x,) if self.metric != "l2" else (x, 0.5 * np.sum(x * x, axis=1))

    def _search(self, q, k, allowed, params):
        return self._scan(l2_score if self.metric == "l2" else ip_score, (q,), k, allowed)

    def _arrays(self):
        return {"x": self._x}

    def _array_specs(self, n):
        return {"x": (np.float32, (n, self.dim))}

    def _restore(self, arrays):
        self._x = arrays["x"]
        self._device = None


def exact_search(q, x, k: int, metric: str = "l2", **kwargs):
    """One-shot exact search of ``q [Q, D]`` in ``x [N, D]``: ``(D, I)`` as ``FlatIndex.search``."""
    x = np.asarray(x)
    index = FlatIndex(x.shape[-1], metric, **kwargs)
    index.add(x)
    return index.search(q, k)

