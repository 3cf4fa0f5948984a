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


class FlatIndex(Index):
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

    def reconstruct_n(self, start: int = 0, n: int | None = None) -> np.ndarray:
        """Stored vectors ``[n, dim]`` (normalised for cosine)."""
        return self._x[start:None if n is None else start + n].copy()

    def _remove_rows(self, keep):
        self._x = self._x[keep]
        self._device = None

    def _blocks(self):
        if self._device is None:
            shards = 1 if self.mesh is None else self.mesh.shape["data"]
            block = round_block(len(self._x), self.block_size, shards)
            tree = (self._x,) if self.metric != "l2" else (self._x, 0.5 * np.sum(self._x * self._x, axis=1))
            blocks = topk.block_database(tree, block, shards)
            self._device = (topk.put_blocks(blocks, self.mesh), len(self._x))
        return self._device

    def search(self, q, k: int):
        """``(D [Q, k], I [Q, k])`` for queries ``q [Q, dim]``; see ``embeddings_jax.index.base``."""
        q, k = self._prepare_search(q, k)
        q = self._unit_if_cosine(q)
        blocks, n = self._blocks()
        score_fn = l2_score if self.metric == "l2" else ip_score
        scores, pos = topk.search_blocks(score_fn, (q,), blocks, n, k, query_batch=self.query_batch,
                                         mesh=self.mesh, approx=self.approx)
        return self._finish(scores, pos, np.sum(q * q, axis=1) if self.metric == "l2" else None)

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

