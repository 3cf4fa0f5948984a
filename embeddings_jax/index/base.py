"""Common machinery of the FAISS-like indexes: input validation, ids, result conventions, npz I/O.

Result convention (as FAISS): ``search(q, k) -> (D [Q, k], I [Q, k])``. For ``metric="l2"`` ``D``
holds squared Euclidean distances, ascending; for ``"ip"`` and ``"cosine"`` it holds similarities,
descending. Where fewer than ``k`` vectors exist, ``I = -1`` and ``D = +inf`` (l2) / ``-inf`` (ip, cosine).
Among equal scores the vector added earlier comes first.
"""

from __future__ import annotations

import json
import pathlib

import jax
import numpy as np
from jax.sharding import Mesh

from embeddings_jax.ops.similarity import METRICS


def check_metric(metric: str) -> str:
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {METRICS}")
    return metric


def as_matrix(x, dim: int, what: str = "vectors") -> np.ndarray:
    """Validates ``x`` as finite float32 ``[n, dim]`` (a single ``[dim]`` vector becomes ``[1, dim]``)."""
    x = np.asarray(x)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2:
        raise ValueError(f"{what} must be a [n, {dim}] matrix, got shape {x.shape}")
    if x.shape[1] != dim:
        raise ValueError(f"dimension mismatch: {what} have dimension {x.shape[1]} but the index has dimension {dim}")
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise ValueError(f"{what} must be numeric, got dtype {x.dtype}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if not np.isfinite(x).all():
        bad = int((~np.isfinite(x).all(axis=1)).sum())
        raise ValueError(f"{what} contain NaN or infinite values ({bad} rows); clean or drop them first")
    return x


def check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return int(k)


def pad_results(scores: np.ndarray, positions: np.ndarray, k: int):
    """Pads higher-is-better ``[Q, kk]`` results to ``k`` columns with missing entries (``-inf``,
    position ``-1``), as FAISS returns when fewer than ``k`` vectors are reachable."""
    extra = k - scores.shape[1]
    if extra <= 0:
        return scores, positions
    return (np.pad(scores, ((0, 0), (0, extra)), constant_values=-np.inf),
            np.pad(positions, ((0, 0), (0, extra)), constant_values=-1))


def normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero)."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


class Index:
    """Base class: ids bookkeeping, validation and the FAISS-style result convention."""

    requires_training = False

    def __init__(self, dim: int, metric: str = "l2", *, mesh: Mesh | None = None,
                 block_size: int = 4096, query_batch: int = 1024, approx: bool | None = None):
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim <= 0:
            raise ValueError(f"dim must be a positive integer, got {dim!r}")
        self.dim = int(dim)
        self.metric = check_metric(metric)
        self.mesh = mesh
        self.block_size = int(block_size)
        self.query_batch = int(query_batch)
        # approximate top-k only where the backend accelerates it (TPU); elsewhere exact top-k is faster
        self.approx = jax.default_backend() == "tpu" if approx is None else bool(approx)
        self._ids = np.zeros((0,), np.int64)
        self._trained = not self.requires_training

    # ---------------------------------------------------------------- FAISS-like surface
    @property
    def is_trained(self) -> bool:
        return self._trained

    @property
    def ntotal(self) -> int:
        return len(self._ids)

    def __len__(self) -> int:
        return self.ntotal

    def train(self, x) -> None:
        """Learns what the index needs from ``x [n, dim]`` (no-op for indexes without training)."""
        as_matrix(x, self.dim, "training vectors")

    def _check_trained(self, action: str) -> None:
        if not self._trained:
            raise ValueError(f"{type(self).__name__} must be trained before {action}: call index.train(x) first")

    def _new_ids(self, n: int, ids) -> np.ndarray:
        if ids is None:
            start = int(self._ids.max()) + 1 if len(self._ids) else 0
            return np.arange(start, start + n, dtype=np.int64)
        ids = np.asarray(ids)
        if ids.shape != (n,) or not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"ids must be {n} integers (one per vector), got shape {ids.shape} dtype {ids.dtype}")
        if (ids < 0).any():
            raise ValueError("ids must be non-negative (-1 marks missing results)")
        return ids.astype(np.int64)

    def _prepare_search(self, q, k):
        k = check_k(k)
        q = as_matrix(q, self.dim, "queries")
        self._check_trained("search")
        if self.ntotal == 0:
            raise ValueError(f"the {type(self).__name__} is empty: add vectors before searching")
        return q, k

    def _finish(self, scores: np.ndarray, positions: np.ndarray, q_sqnorms: np.ndarray | None = None):
        """Maps positions to ids and higher-is-better scores to the FAISS result convention."""
        missing = positions < 0
        ids = np.where(missing, -1, self._ids[np.maximum(positions, 0)])
        if self.metric == "l2":  # scores are q.x - ||x||^2 / 2
            d = np.maximum(q_sqnorms[:, None] - 2.0 * scores, 0.0).astype(np.float32)
            d[missing] = np.inf
            return d, ids
        scores = scores.astype(np.float32, copy=True)
        scores[missing] = -np.inf
        return scores, ids

    def remove_ids(self, ids) -> int:
        """Removes the vectors with these ids; returns how many were removed."""
        ids = np.asarray(ids, np.int64).reshape(-1)
        keep = ~np.isin(self._ids, ids)
        removed = int((~keep).sum())
        if removed:
            self._remove_rows(keep)
            self._ids = self._ids[keep]
        return removed

    def _remove_rows(self, keep: np.ndarray) -> None:
        raise NotImplementedError

    # ---------------------------------------------------------------- persistence
    def _config(self) -> dict:
        return {"dim": self.dim, "metric": self.metric, "block_size": self.block_size,
                "query_batch": self.query_batch, "approx": self.approx}

    def _arrays(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    def save(self, path) -> pathlib.Path:
        """Writes the index to one ``.npz`` file (class, config, trained state, vectors, ids)."""
        path = pathlib.Path(path)
        meta = {"class": type(self).__name__, "config": self._config(), "trained": self._trained}
        np.savez(path, __meta__=np.array(json.dumps(meta)), ids=self._ids, **self._arrays())
        return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")

    @classmethod
    def load(cls, path, mesh: Mesh | None = None) -> Index:
        """Reads an index written by ``save``; ``cls`` may be ``Index`` (any class) or the saved class."""
        from embeddings_jax import index as index_pkg

        path = pathlib.Path(path)
        if not path.exists() and path.with_name(path.name + ".npz").exists():
            path = path.with_name(path.name + ".npz")
        if not path.exists():
            raise FileNotFoundError(f"no saved index at {path}")
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["__meta__"]))
            arrays = {key: data[key] for key in data.files if key != "__meta__"}
        klass = getattr(index_pkg, meta["class"], None)
        if klass is None or not (cls is Index or issubclass(klass, cls)):
            raise ValueError(f"{path} holds a {meta['class']}, not a {cls.__name__}")
        index = klass(**meta["config"], mesh=mesh)
        index._trained = meta["trained"]
        index._ids = arrays.pop("ids")
        index._restore(arrays)
        return index

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dim={self.dim}, metric={self.metric!r}, ntotal={self.ntotal})"
