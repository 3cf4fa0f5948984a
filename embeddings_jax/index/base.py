"""Common machinery of the FAISS-like indexes: input validation, ids, result conventions, npz I/O.

Result convention (as FAISS): ``search(q, k) -> (D [Q, k], I [Q, k])``. For ``metric="l2"`` ``D``
holds squared Euclidean distances, ascending; for ``"ip"`` and ``"cosine"`` it holds similarities,
descending. Where fewer than ``k`` vectors exist, ``I = -1`` and ``D = +inf`` (l2) / ``-inf`` (ip, cosine).
Among equal scores the vector added earlier comes first.

Filters (``search(q, k, ids=..., exclude_ids=..., params=SearchParameters(sel=...))``) are applied inside
the scan: rows that are not allowed are never scored into the result, so a filtered search returns the
best ``k`` allowed vectors (padded as above where fewer exist). ``range_search`` returns every vector
within a radius in FAISS's ``(lims, D, I)`` layout (see ``Index.range_search``).
"""

from __future__ import annotations

import json
import pathlib
import struct
import tokenize
import zipfile
import zlib

import jax
import numpy as np
from jax.sharding import Mesh

from embeddings_jax.index.selector import SearchParameters, check_selector, id_array
from embeddings_jax.ops import similarity
from embeddings_jax.ops.similarity import METRICS
from embeddings_jax.train.atomic import atomic_write

# Squared norms above this overflow float32 scores (an l2 distance is at most 4x the larger one).
MAX_SQUARED_NORM = float(np.finfo(np.float32).max) / 16


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
    if np.issubdtype(x.dtype, np.complexfloating):
        raise ValueError(f"{what} are complex ({x.dtype}); indexes hold real vectors: pass x.real, or "
                         "stack the real and imaginary parts as separate dimensions")
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise ValueError(f"{what} must be numeric, got dtype {x.dtype}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if not np.isfinite(x).all():
        bad = int((~np.isfinite(x).all(axis=1)).sum())
        raise ValueError(f"{what} contain NaN or infinite values ({bad} rows); clean or drop them first")
    check_range(x, what)
    return x


def check_range(x: np.ndarray, what: str) -> None:
    """Rejects rows whose squared norm would overflow float32 scores (exact check only where the
    cheap bound ``dim * max|x|^2`` fails)."""
    if not x.size:
        return
    peak = max(float(x.max()), -float(x.min()))
    if x.shape[1] * peak * peak <= MAX_SQUARED_NORM:
        return
    sq = np.einsum("ij,ij->i", x, x, dtype=np.float64)
    if (sq > MAX_SQUARED_NORM).any():
        raise ValueError(
            f"{what} are too large for float32 scores ({int((sq > MAX_SQUARED_NORM).sum())} rows with squared "
            f"norm above {MAX_SQUARED_NORM:.1e}, largest {sq.max():.1e}); scale them down (e.g. normalise) first")


def training_matrix(x, dim: int) -> np.ndarray:
    """``as_matrix`` for ``train``: at least one vector."""
    x = as_matrix(x, dim, "training vectors")
    if not len(x):
        raise ValueError("training needs at least one vector, got an empty [0, dim] array")
    return x


def check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_subquantizers(m, dim: int) -> int:
    """``m`` product-quantizer subspaces: a positive integer dividing ``dim``."""
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m <= 0 or dim % m:
        raise ValueError(f"m={m!r} subquantizers must divide the dimension {dim}")
    return int(m)


def check_k(k) -> int:
    return check_positive_int(k, "k")


def check_radius(radius) -> float:
    if isinstance(radius, bool) or not isinstance(radius, (int, float, np.integer, np.floating)) \
            or not np.isfinite(radius):
        raise ValueError(f"radius must be a finite number, got {radius!r}")
    return float(radius)


def pad_results(scores: np.ndarray, positions: np.ndarray, k: int):
    """Pads higher-is-better ``[Q, kk]`` results to ``k`` columns with missing entries (``-inf``,
    position ``-1``), as FAISS returns when fewer than ``k`` vectors are reachable."""
    extra = k - scores.shape[1]
    if extra <= 0:
        return scores, positions
    return (np.pad(scores, ((0, 0), (0, extra)), constant_values=-np.inf),
            np.pad(positions, ((0, 0), (0, extra)), constant_values=-1))


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
        self.block_size = check_positive_int(block_size, "block_size")
        self.query_batch = check_positive_int(query_batch, "query_batch")
        # approximate top-k only where the backend accelerates it (TPU); elsewhere exact top-k is faster
        self.approx = jax.default_backend() == "tpu" if approx is None else bool(approx)
        self._ids = np.zeros((0,), np.int64)
        self._trained = not self.requires_training

    # ---------------------------------------------------------------- metric
    @property
    def kernel_metric(self) -> str:
        """The metric the search kernels compute: cosine is inner product on unit rows."""
        return "l2" if self.metric == "l2" else "ip"

    def _unit_if_cosine(self, x: np.ndarray) -> np.ndarray:
        """Rows scaled to unit length for ``metric="cosine"`` (stored and queried that way); zero rows
        stay zero."""
        if self.metric != "cosine":
            return x
        small = np.linalg.norm(x, axis=1) < 1e-12
        if small.any():  # below l2_normalize's eps: first scale the row by its largest entry
            x, rows = x.copy(), x[small]
            peak = np.abs(rows).max(axis=1, keepdims=True)
            x[small] = np.divide(rows, peak, out=np.zeros_like(rows), where=peak > 0)
        return similarity.l2_normalize(x)

    # ---------------------------------------------------------------- FAISS-like surface
    @property
    def d(self) -> int:
        """The vector dimension (FAISS's name for ``dim``)."""
        return self.dim

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
        if n and ids.max() > np.iinfo(np.int64).max:
            raise ValueError(f"ids must fit in int64, got {ids.max()}")
        return ids.astype(np.int64)

    def add_with_ids(self, x, ids) -> None:
        """FAISS's name for ``add(x, ids)``: every index here stores ids."""
        self.add(x, ids)

    def reset(self) -> None:
        """Removes every vector, keeping what training learned (FAISS ``reset``)."""
        if self.ntotal:
            self._remove_rows(np.zeros(self.ntotal, bool))
            self._ids = self._ids[:0]

    def _prepare_add(self, x, ids):
        """Validated vectors to store (unit rows for cosine) and their ids: ``([n, dim], [n])``."""
        x = as_matrix(x, self.dim)
        self._check_trained("add")
        return self._unit_if_cosine(x), self._new_ids(len(x), ids)

    def _prepare_search(self, q, k):
        k = check_k(k)
        q = as_matrix(q, self.dim, "queries")
        self._check_trained("search")
        if self.ntotal == 0:
            raise ValueError(f"the {type(self).__name__} is empty: add vectors before searching")
        return q, k

    # ---------------------------------------------------------------- search, filters, range search
    def search(self, q, k: int, *, ids=None, exclude_ids=None, params: SearchParameters | None = None):
        """``(D [Q, k], I [Q, k])`` for queries ``q [Q, dim]`` (see the module docs).

        ``ids`` (allow list), ``exclude_ids`` (deny list) and ``params.sel`` (an ``IDSelector``) restrict
        the ids returned; given together, a vector must pass all of them.
        """
        return self._search_filtered(q, k, ids, exclude_ids, params)

    def _search_filtered(self, q, k, ids, exclude_ids, params, **options):
        q, k = self._prepare_search(q, k)
        allowed = self._allowed(ids, exclude_ids, params)
        q_sq = np.sum(q * q, axis=1) if self.metric == "l2" else None
        if allowed is not None and not allowed.any():
            none = np.zeros((len(q), 0), np.float32)
            return self._finish(*pad_results(none, none.astype(np.int64), k), q_sq)
        scores, positions = self._search(self._unit_if_cosine(q), k, allowed, params, **options)
        return self._finish(scores, positions, q_sq)

    def _search(self, q, k: int, allowed, params, **options):
        """Higher-is-better ``(scores, positions) [Q, k]`` (l2 scores are ``q.x - ||x||^2 / 2``) of
        queries ``q`` (unit rows for cosine) over the rows where ``allowed [ntotal]`` (``None`` = all)."""
        raise NotImplementedError

    def _allowed(self, ids, exclude_ids, params) -> np.ndarray | None:
        """Rows a filtered search may return, bool ``[ntotal]``; ``None`` when nothing filters."""
        masks = []
        if ids is not None:
            masks.append(np.isin(self._ids, id_array(ids, "ids to search among")))
        if exclude_ids is not None:
            masks.append(~np.isin(self._ids, id_array(exclude_ids, "exclude_ids")))
        sel = None if params is None else getattr(params, "sel", None)
        if sel is not None:
            masks.append(np.asarray(check_selector(sel).is_member(self._ids), bool))
        return np.logical_and.reduce(masks) if masks else None

    def range_search(self, q, radius, *, ids=None, exclude_ids=None, params: SearchParameters | None = None):
        """Every vector within ``radius`` of each query, as FAISS: ``(lims [Q + 1] int64, D [R] float32,
        I [R] int64)``, query ``i``'s results in ``D[lims[i]:lims[i + 1]]`` and ``I[lims[i]:lims[i + 1]]``.

        ``l2``: squared distances strictly below ``radius`` (``d < radius``, radius on the squared scale);
        ``ip`` / ``cosine``: similarities strictly above it (``s > radius``). Unlike FAISS (unordered), each
        query's results are sorted best first, ties earlier-added first. Distances are those to the
        vectors ``reconstruct`` returns (exact, or decoded codes), over the rows ``search`` scans (IVF: the
        ``nprobe`` cells). Filters as ``search``.
        """
        return self._range_filtered(q, radius, ids, exclude_ids, params)

    def _range_filtered(self, q, radius, ids, exclude_ids, params, **options):
        q = as_matrix(q, self.dim, "queries")
        radius = check_radius(radius)
        self._check_trained("range search")
        allowed = self._allowed(ids, exclude_ids, params)
        if self.ntotal:
            rows, positions, values = self._range(self._unit_if_cosine(q), radius, allowed, params, **options)
        else:
            rows = positions = np.zeros((0,), np.int64)
            values = np.zeros((0,), np.float32)
        order = np.lexsort((positions, values if self.metric == "l2" else -values, rows))
        lims = np.zeros(len(q) + 1, np.int64)
        lims[1:] = np.cumsum(np.bincount(rows, minlength=len(q)))
        return lims, values[order].astype(np.float32), self._ids[positions[order]]

    def _range(self, q, radius: float, allowed, params, **options):
        """``(query rows, positions, D values)`` of the pairs within ``radius``: every allowed row."""
        positions = np.arange(self.ntotal) if allowed is None else np.flatnonzero(allowed)
        return self._within(q, np.arange(len(q)), positions, radius)

    def _within(self, q, rows: np.ndarray, positions: np.ndarray, radius: float, block: int = 8192):
        """The pairs of queries ``q[rows]`` and stored ``positions`` within ``radius``, scored against
        ``_vectors``: ``(rows, positions, values)`` with values in ``D`` units."""
        out_r, out_p, out_v = [np.zeros((0,), np.int64)], [np.zeros((0,), np.int64)], [np.zeros((0,), np.float32)]
        q = q[rows]
        q_sq = np.sum(q * q, axis=1)
        for j in range(0, len(positions), block):  # each block's vectors gathered (or decoded) once
            pos = positions[j:j + block]
            v = self._vectors(pos)
            half_sq = 0.5 * np.sum(v * v, axis=1)[None, :] if self.metric == "l2" else None
            for i in range(0, len(rows), 1024):
                qb, qb_sq = q[i:i + 1024], q_sq[i:i + 1024]
                s = qb @ v.T
                if self.metric == "l2":
                    # s = q.v - ||v||^2 / 2 and d = ||q||^2 - 2 s (as _finish): a loose test on s, then d < radius
                    loose = 0.5 * (qb_sq - radius) - 1e-5 * (qb_sq + abs(radius) + 1.0)
                    s -= half_sq
                    r, c = np.nonzero(s > loose[:, None])
                    d = np.maximum(qb_sq[r] - 2.0 * s[r, c], 0.0)
                    r, c, d = r[d < radius], c[d < radius], d[d < radius]
                else:
                    r, c = np.nonzero(s > radius)
                    d = s[r, c]
                out_r.append(rows[i + r])
                out_p.append(pos[c])
                out_v.append(d)
        return np.concatenate(out_r), np.concatenate(out_p), np.concatenate(out_v)

    # ---------------------------------------------------------------- reconstruction
    def _vectors(self, positions: np.ndarray) -> np.ndarray:
        """Float32 ``[n, dim]`` vectors the index scores at these positions (stored rows or decoded codes)."""
        raise ValueError(f"{type(self).__name__} keeps no vectors it can reconstruct")

    def reconstruct(self, key) -> np.ndarray:
        """The vector stored under id ``key``, ``[dim]`` float32: exact where the index keeps float32 vectors
        (Flat, Refine, Binary, IVF-Flat, SQ8 with re-scoring), else decoded from its codes (SQ8, PQ, IVF-PQ),
        as FAISS does; unit length for cosine. With repeated ids, the earliest added."""
        if isinstance(key, bool) or not isinstance(key, (int, np.integer)):
            raise TypeError(f"key must be an integer id, got {key!r}")
        where = np.flatnonzero(self._ids == key)
        if not len(where):
            raise ValueError(f"id {key} is not in the {type(self).__name__} ({self.ntotal} vectors)")
        return self._vectors(where[:1])[0]

    def reconstruct_n(self, i0: int = 0, n: int | None = None) -> np.ndarray:
        """Vectors ``[n, dim]`` at positions ``i0 .. i0 + n - 1`` in add order (the ids, when added
        without ids), as ``reconstruct``; ``n`` defaults to the rest."""
        n = self.ntotal - i0 if n is None else n
        if min(i0, n) < 0 or i0 + n > self.ntotal:
            raise ValueError(f"positions [{i0}, {i0 + n}) are outside the {self.ntotal} stored vectors")
        return self._vectors(np.arange(i0, i0 + n))

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
        """Removes the vectors with these integer ids (unknown ids are ignored); returns how many were removed."""
        ids = id_array(ids, "ids to remove")
        if ids.size == 0:
            return 0
        keep = ~np.isin(self._ids, ids)
        removed = int((~keep).sum())
        if removed:
            self._remove_rows(keep)
            self._ids = self._ids[keep]
        return removed

    def _remove_rows(self, keep: np.ndarray) -> None:
        raise NotImplementedError

    # ---------------------------------------------------------------- persistence
    @classmethod
    def _from_config(cls, config: dict, mesh: Mesh | None) -> Index:
        """The empty index ``load`` fills: the constructor called with a saved ``_config``."""
        return cls(**config, mesh=mesh)

    def _config(self) -> dict:
        return {"dim": self.dim, "metric": self.metric, "block_size": self.block_size,
                "query_batch": self.query_batch, "approx": self.approx}

    def _arrays(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _array_specs(self, n: int) -> dict[str, tuple[type, tuple[int, ...]]]:
        """``name -> (dtype, shape)`` of the arrays ``_arrays`` returns for ``n`` vectors in this state
        (``_trained`` set); ``load`` accepts a file only if it holds exactly these."""
        raise NotImplementedError

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    def save(self, path) -> pathlib.Path:
        """Writes the index to one ``.npz`` file (class, config, trained state, vectors, ids), atomically:
        an interrupted save leaves the previous file. Returns the path (``.npz`` appended if missing)."""
        path = pathlib.Path(path)
        if path.suffix != ".npz":
            path = path.with_name(path.name + ".npz")
        meta = {"class": type(self).__name__, "config": self._config(), "trained": self._trained}
        with atomic_write(path, "wb") as f:
            np.savez(f, __meta__=np.array(json.dumps(meta)), ids=self._ids, **self._arrays())
        return path

    @classmethod
    def load(cls, path, mesh: Mesh | None = None) -> Index:
        """Reads an index written by ``save``; ``cls`` may be ``Index`` (any class) or the saved class.

        The file is checked before use: a known index class, its constructor's config, and arrays of
        the expected names, shapes and dtypes with finite values. Anything else raises ``ValueError``.
        """
        path = pathlib.Path(path)
        if not path.exists() and path.with_name(path.name + ".npz").exists():
            path = path.with_name(path.name + ".npz")
        if not path.exists():
            raise FileNotFoundError(f"no saved index at {path}")
        meta, arrays = _read_npz(path)

        def bad(problem: str) -> ValueError:
            return ValueError(f"{path} is not a valid saved index: {problem}. The file is corrupt, truncated or "
                              "not written by Index.save; save the index again")

        if not isinstance(meta, dict) or set(meta) != {"class", "config", "trained"}:
            raise bad("its metadata must hold exactly 'class', 'config' and 'trained'")
        classes = index_classes()
        klass = classes.get(meta["class"]) if isinstance(meta["class"], str) else None
        if klass is None:
            raise bad(f"unknown index class {meta['class']!r} (known: {sorted(classes)})")
        if not (cls is Index or issubclass(klass, cls)):
            raise ValueError(f"{path} holds a {klass.__name__}, not a {cls.__name__}; "
                             f"load it with Index.load or {klass.__name__}.load")
        config, trained = meta["config"], meta["trained"]
        if not isinstance(config, dict) or not isinstance(trained, bool):
            raise bad("'config' must be an object and 'trained' a boolean")
        try:
            index = klass._from_config(config, mesh)
        except (TypeError, ValueError) as e:
            raise bad(f"its config does not build a {klass.__name__} ({e})") from None
        if index._config() != config:
            raise bad(f"its config {config} is not a {klass.__name__} config (expected keys "
                      f"{sorted(index._config())}, values as the constructor stores them)")
        if not index.requires_training and not trained:
            raise bad(f"a {klass.__name__} of this config needs no training but is marked untrained")
        ids = arrays.pop("ids", None)
        if ids is None or ids.ndim != 1 or ids.dtype.kind != "i":
            raise bad("'ids' must be a 1-D integer array")
        if len(ids) and not trained:
            raise bad("an untrained index cannot hold vectors")
        if len(ids) and ids.min() < 0:
            raise bad("ids must be non-negative")
        index._trained = trained
        specs = index._array_specs(len(ids))
        if set(arrays) != set(specs):
            raise bad(f"arrays {sorted(arrays)} do not match a {'trained' if trained else 'untrained'} "
                      f"{klass.__name__} with {len(ids)} vectors (expected {sorted(specs)})")
        index._ids = ids.astype(np.int64)
        try:
            index._restore({name: _checked_array(name, arrays[name], *spec) for name, spec in specs.items()})
        except ValueError as e:  # a wrong dtype, shape or value (e.g. a cell id beyond nlist)
            raise bad(str(e)) from None
        return index

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dim={self.dim}, metric={self.metric!r}, ntotal={self.ntotal})"


def _checked_array(name: str, a: np.ndarray, dtype, shape: tuple[int, ...]) -> np.ndarray:
    """``a`` as ``dtype`` if it has that kind, size and ``shape`` and (floats) finite values."""
    want = np.dtype(dtype)
    if a.shape != shape or a.dtype.kind != want.kind or a.dtype.itemsize != want.itemsize:
        raise ValueError(f"array {name!r} is {a.dtype}{list(a.shape)}, expected {want}{list(shape)}")
    if want.kind == "f" and not np.isfinite(a).all():
        raise ValueError(f"array {name!r} holds NaN or infinite values")
    return a.astype(want, copy=False)


# what zipfile, numpy's .npy header parser and json raise on damaged bytes
_READ_ERRORS = (OSError, EOFError, ValueError, KeyError, TypeError, RuntimeError, NotImplementedError, OverflowError,
                MemoryError, SyntaxError, struct.error, tokenize.TokenError, zlib.error, zipfile.BadZipFile)


def _read_npz(path: pathlib.Path) -> tuple[object, dict[str, np.ndarray]]:
    """``(metadata, arrays)`` of an ``.npz`` index file; any read or decode failure is a ``ValueError``."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if "__meta__" not in data.files:
                raise KeyError("no '__meta__' entry")
            arrays = {key: data[key] for key in data.files}
        meta = arrays.pop("__meta__")
        if meta.shape != () or meta.dtype.kind != "U":
            raise ValueError("'__meta__' is not a JSON string")
        return json.loads(str(meta)), arrays
    except _READ_ERRORS as e:
        raise ValueError(f"{path} is not a readable saved index ({type(e).__name__}: {e}). The file is "
                         "corrupt, truncated or not written by Index.save; save the index again") from None


def index_classes() -> dict[str, type[Index]]:
    """The classes ``Index.load`` may build, by the name ``save`` records (an explicit whitelist)."""
    from embeddings_jax.index.flat import FlatIndex
    from embeddings_jax.index.ivf import IVFIndex, IVFPQIndex
    from embeddings_jax.index.lsh import LSHIndex
    from embeddings_jax.index.pq import BinaryIndex, PQIndex
    from embeddings_jax.index.refine import RefineIndex
    from embeddings_jax.index.sq8 import SQ8Index

    return {c.__name__: c for c in (FlatIndex, SQ8Index, PQIndex, BinaryIndex, IVFIndex, IVFPQIndex, LSHIndex,
                                            RefineIndex)}
