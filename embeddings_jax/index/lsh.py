"""``LSHIndex``: random-hyperplane (SimHash) locality-sensitive hashing, FAISS IndexLSH plus hash tables.

Each of ``num_tables`` tables projects a vector onto ``nbits`` random Gaussian directions (drawn from
``seed``) and keeps the sign bits. Two search modes, chosen by ``probes``:

* ``probes=0``, **Hamming ranking** (FAISS IndexLSH): every stored code is ranked by its Hamming
  distance to the query's code, summed over tables (one jitted popcount-of-XOR scan); the best
  ``rescore * k`` are re-ranked exactly. ``hamming_search`` returns the raw Hamming ranking, as FAISS.
* ``probes=p >= 1``, **buckets + multi-probe** (Lv et al. 2007): in each table the candidates are the rows
  in the query's bucket and in the ``p - 1`` buckets one bit away, flipping the least confident bits
  first (projections nearest zero); the union over tables is re-ranked exactly. Buckets are sorted
  keys looked up with ``searchsorted`` on the host. Needs ``nbits <= 64``.

In both modes ``D`` holds exact distances / similarities to the stored float32 vectors; rows outside
the candidates are never returned (fewer than ``k`` candidates pad with ``I = -1``). Hyperplanes pass
through the origin, so for ``metric="l2"`` centre the data first. ``rotate=False`` is FAISS's plain
``"LSH"``: the signs of the first ``nbits`` coordinates, one table.
"""

from __future__ import annotations

import numpy as np

from embeddings_jax.index.base import check_positive_int, pad_results
from embeddings_jax.index.flat import BlockScanIndex
from embeddings_jax.index.pq import hamming_score, hamming_shortlist
from embeddings_jax.index.sq8 import rescore
from embeddings_jax.ops import quantize

MAX_BUCKET_BITS = 64  # bucket keys are uint64


class LSHIndex(BlockScanIndex):
    """Sign codes of random projections in ``num_tables`` hash tables (see the module docs).

    Args:
      dim, metric: as ``FlatIndex``.
      nbits: bits per table (default ``dim``, as FAISS).
      num_tables: independent hash tables (each its own projection).
      probes: ``0`` = Hamming ranking; ``p >= 1`` = buckets probed per table (the query's own plus ``p - 1``
        one-bit neighbours), at most ``nbits + 1``. May be changed after adding.
      rotate: project on random Gaussian directions (default); ``False`` takes the first ``nbits``
        coordinates as they are (FAISS ``"LSH"``; one table, ``nbits <= dim``).
      rescore: Hamming ranking only: candidates re-ranked exactly per result (``rescore * k``).
      seed: seed of the projections (numpy ``default_rng``; the same on every device).
    """

    def __init__(self, dim: int, metric: str = "l2", nbits: int | None = None, *, num_tables: int = 1,
                 probes: int = 0, rotate: bool = True, rescore: int = 10, seed: int = 0, **kwargs):
        kwargs.setdefault("block_size", 1024)
        kwargs.setdefault("query_batch", 256)
        super().__init__(dim, metric, **kwargs)
        self.nbits = check_positive_int(self.dim if nbits is None else nbits, "nbits")
        self.num_tables = check_positive_int(num_tables, "num_tables")
        self.rescore = check_positive_int(rescore, "rescore")
        self.rotate, self.seed = bool(rotate), int(seed)
        if not self.rotate and (self.num_tables != 1 or self.nbits > self.dim):
            raise ValueError(f"rotate=False takes the signs of the first nbits coordinates: it needs num_tables=1 "
                             f"and nbits <= dim={self.dim} (got num_tables={self.num_tables}, nbits={self.nbits})")
        self.probes = probes
        rng = np.random.default_rng(self.seed)
        self.projections = rng.standard_normal((self.num_tables, self.dim, self.nbits), np.float32) \
            if self.rotate else None  # [T, D, nbits]
        self._x = np.zeros((0, self.dim), np.float32)
        self._set_codes(self._x)

    @property
    def probes(self) -> int:
        return self._probes

    @probes.setter
    def probes(self, value) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"probes must be an integer >= 0 (0 = Hamming ranking), got {value!r}")
        if value and self.nbits > MAX_BUCKET_BITS:
            raise ValueError(f"bucket search (probes >= 1) needs nbits <= {MAX_BUCKET_BITS}, got nbits={self.nbits}; "
                             "use fewer bits per table (e.g. nbits=16) or probes=0 (Hamming ranking)")
        if value > self.nbits + 1:
            raise ValueError(f"probes={value} exceeds the nbits + 1 = {self.nbits + 1} buckets within one bit "
                             "of the query's bucket")
        self._probes = int(value)

    # ---------------------------------------------------------------- hashing
    def _project(self, x: np.ndarray) -> np.ndarray:
        """Projections ``[n, T, nbits]`` whose signs are the codes."""
        if not self.rotate:
            return x[:, None, :self.nbits]
        return np.einsum("nd,tdb->ntb", x, self.projections)

    def _keys(self, proj: np.ndarray) -> np.ndarray:
        """Bucket keys ``[n, T]`` uint64: bit ``j`` set where projection ``j`` is positive."""
        shifts = np.arange(self.nbits, dtype=np.uint64)
        return ((proj > 0).astype(np.uint64) << shifts).sum(axis=-1, dtype=np.uint64)

    def _pack(self, proj: np.ndarray) -> np.ndarray:
        """Sign codes ``[n, T * ceil(nbits / 8)]`` uint8, tables side by side (Hamming sums over tables)."""
        return quantize.binary_codes(proj).reshape(len(proj), self.num_tables * -(-self.nbits // 8))

    def _set_codes(self, x: np.ndarray) -> None:
        proj = self._project(x)
        self._codes = self._pack(proj)
        self._bucket_keys = self._keys(proj) if self.nbits <= MAX_BUCKET_BITS else None
        self._device = self._tables = None

    def add(self, x, ids=None) -> None:
        x, ids = self._prepare_add(x, ids)
        proj = self._project(x)
        self._ids = np.concatenate([self._ids, ids])
        self._x = np.concatenate([self._x, x])
        self._codes = np.concatenate([self._codes, self._pack(proj)])
        if self._bucket_keys is not None:
            self._bucket_keys = np.concatenate([self._bucket_keys, self._keys(proj)])
        self._device = self._tables = None

    def _remove_rows(self, keep) -> None:
        self._x, self._codes = self._x[keep], self._codes[keep]
        if self._bucket_keys is not None:
            self._bucket_keys = self._bucket_keys[keep]
        self._device = self._tables = None

    def _vectors(self, positions):
        return self._x[positions]

    def _tree(self, positions=None):
        return (self._codes if positions is None else self._codes[positions],)

    @property
    def code_bytes(self) -> int:
        return self._codes.nbytes

    # ---------------------------------------------------------------- candidates
    def _sorted_tables(self):
        """Cached ``(order [T, N], sorted keys [T, N])``: each table's rows grouped by bucket."""
        if self._tables is None:
            keys = self._bucket_keys.T
            order = np.argsort(keys, axis=1, kind="stable")
            self._tables = (order, np.take_along_axis(keys, order, axis=1))
        return self._tables

    def _candidate_pairs(self, q: np.ndarray, allowed: np.ndarray | None):
        """Distinct ``(query rows, positions)`` of the multi-probe candidates, sorted by query then position."""
        proj = self._project(q)  # [Q, T, nbits]
        keys = self._keys(proj)
        flips = np.argsort(np.abs(proj), axis=-1, kind="stable")[..., :self.probes - 1].astype(np.uint64)
        probe_keys = np.concatenate([keys[..., None], keys[..., None] ^ (np.uint64(1) << flips)], axis=-1)
        order, sorted_keys = self._sorted_tables()
        n = self.ntotal
        pairs = []
        for t in range(self.num_tables):
            wanted = probe_keys[:, t].reshape(-1)
            lo = np.searchsorted(sorted_keys[t], wanted, "left")
            lengths = np.searchsorted(sorted_keys[t], wanted, "right") - lo
            starts = np.repeat(lo - (np.cumsum(lengths) - lengths), lengths)  # concatenated ranges
            rows = np.repeat(np.arange(len(wanted)) // self.probes, lengths)
            pairs.append(rows * n + order[t][starts + np.arange(len(starts))])
        pairs = np.unique(np.concatenate(pairs))
        rows, positions = pairs // n, pairs % n
        if allowed is not None:
            rows, positions = rows[allowed[positions]], positions[allowed[positions]]
        return rows, positions

    def candidates(self, q) -> np.ndarray:
        """Bool ``[Q, ntotal]``: the rows bucket search re-ranks for queries ``q`` (all rows when ``probes=0``)."""
        q, _ = self._prepare_search(q, 1)
        q = self._unit_if_cosine(q)
        out = np.zeros((len(q), self.ntotal), bool)
        if self.probes == 0:
            out[:] = True
        else:
            out[self._candidate_pairs(q, None)] = True
        return out

    # ---------------------------------------------------------------- search
    def _search(self, q, k, allowed, params):
        if self.probes == 0:
            return hamming_shortlist(self, q, self._query_codes(q), k, allowed)
        out_s, out_p = [], []
        for start in range(0, len(q), self.query_batch):
            qb = q[start:start + self.query_batch]
            rows, positions = self._candidate_pairs(qb, allowed)
            counts = np.bincount(rows, minlength=len(qb))
            cand = np.full((len(qb), max(1, counts.max())), -1, np.int64)
            cand[rows, np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)] = positions
            scores, pos = rescore(qb, self._x, cand, self.kernel_metric, min(k, cand.shape[1]))
            scores, pos = pad_results(scores, pos, k)
            out_s.append(scores)
            out_p.append(pos)
        return np.concatenate(out_s), np.concatenate(out_p)

    def _query_codes(self, q: np.ndarray) -> np.ndarray:
        return self._pack(self._project(q))

    def hamming_search(self, q, k: int, *, ids=None, exclude_ids=None, params=None):
        """FAISS IndexLSH's result: ``(D [Q, k] float32 Hamming distances summed over tables, I [Q, k])``,
        ascending, ties earlier-added first, ``D = inf`` / ``I = -1`` where fewer than ``k``. Filters as ``search``."""
        q, k = self._prepare_search(q, k)
        allowed = self._allowed(ids, exclude_ids, params)
        n = self.ntotal if allowed is None else int(allowed.sum())
        if n:
            scores, pos = self._scan(hamming_score, (self._query_codes(self._unit_if_cosine(q)),), min(k, n), allowed)
        else:
            scores, pos = np.zeros((len(q), 0), np.float32), np.zeros((len(q), 0), np.int64)
        scores, pos = pad_results(scores, pos, k)
        return np.where(pos < 0, np.inf, -scores).astype(np.float32), np.where(pos < 0, -1, self._ids[pos])

    def _range(self, q, radius, allowed, params, **options):
        """Bucket mode: the candidate pairs within ``radius``; Hamming ranking: every allowed row."""
        if self.probes == 0:
            return super()._range(q, radius, allowed, params, **options)
        rows, positions = self._candidate_pairs(q, allowed)
        values = np.empty(len(rows), np.float32)
        for i in range(0, len(rows), 65536):
            r, v = q[rows[i:i + 65536]], self._x[positions[i:i + 65536]]
            values[i:i + 65536] = np.sum((r - v) ** 2, axis=1) if self.metric == "l2" else np.sum(r * v, axis=1)
        hit = values < radius if self.metric == "l2" else values > radius
        return rows[hit], positions[hit], values[hit]

    # ---------------------------------------------------------------- persistence
    def _config(self):
        return {**super()._config(), "nbits": self.nbits, "num_tables": self.num_tables, "probes": self.probes,
                "rotate": self.rotate, "rescore": self.rescore, "seed": self.seed}

    def _arrays(self):
        return {"x": self._x}

    def _array_specs(self, n):
        return {"x": (np.float32, (n, self.dim))}

    def _restore(self, arrays):
        self._x = arrays["x"]
        self._set_codes(self._x)  # codes follow from the vectors and the seeded projections

