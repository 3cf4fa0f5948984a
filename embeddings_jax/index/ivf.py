"""Inverted-file indexes: ``IVFIndex`` (IVF-Flat) and ``IVFPQIndex`` (IVF + residual product quantization).

k-means (JAX, k-means++ seeded) splits space into ``nlist`` cells; a query scans the ``nprobe`` cells
whose centroids score best.

Search is *list-major*, so the inner loop is a matrix product rather than a matrix-vector product:
each cell is stored as fixed-size chunks of ``chunk`` vectors; the host groups the (query, chunk)
pairs of a query batch by chunk into tiles of up to ``group`` queries, and one jitted program scans the
tiles, scoring ``[group, D] x [D, chunk]`` per tile, gathers each query's tile rows and takes one top-k
per query. Each stored vector is read once per tile instead of once per probing query, and small tiles
of a batched matmul run several times faster on CPU than the matrix-vector products of a query-major
scan. IVF-PQ instead scans query-major with lookup tables (asymmetric distance computation): ``M`` table
lookups per candidate cost less than decoding its ``D`` values, however the decoding is shared.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from embeddings_jax.index.base import Index, as_matrix, normalize, pad_results
from embeddings_jax.index.kmeans import kmeans
from embeddings_jax.ops import quantize, similarity, topk


def _bucket(n: int, base: int) -> int:
    """Rounds ``n`` up to ``base * 2**(i/4)`` steps (few distinct shapes, at most ~19% padding)."""
    size = base
    while size < n:
        size = int(np.ceil(size * 2 ** 0.25 / base)) * base
    return size


@functools.partial(jax.jit, static_argnames=("nprobe", "metric"))
def _coarse(q, centroids, nprobe, metric):
    """Best ``nprobe`` cells per query: ``[Q, nprobe]`` int32."""
    s = similarity.dot(q, centroids)
    if metric == "l2":
        s = s - 0.5 * similarity.squared_norms(centroids)[None, :]
    return topk.chunked_topk(s, nprobe)[1]


def query_chunks(probes: np.ndarray, list_start: np.ndarray, list_chunks: np.ndarray):
    """Every (query, chunk) pair a batch scans, in query order.

    Returns ``query, slot, chunk [P]`` (the pair's query, its slot among the query's chunks and the
    chunk id), ``slot_chunk [Q, S]`` (``-1`` = empty) and ``slot_probe [Q, S]`` (which of the query's
    probes the slot's cell is, ``0`` when empty), with ``S`` the most chunks any query scans.
    """
    nq, nprobe = probes.shape
    counts = list_chunks[probes]  # [Q, nprobe]
    per_query = counts.sum(axis=1)
    total = int(per_query.sum())
    query = np.repeat(np.arange(nq), per_query)
    pair_counts = counts.ravel()
    pair_first = np.repeat(list_start[probes].ravel(), pair_counts)
    within = np.arange(total) - np.repeat(np.cumsum(pair_counts) - pair_counts, pair_counts)
    chunk = pair_first + within
    slot = np.arange(total) - np.repeat(np.cumsum(per_query) - per_query, per_query)
    num_slots = max(1, int(per_query.max()))
    slot_chunk = np.full((nq, num_slots), -1, np.int64)
    slot_chunk[query, slot] = chunk
    slot_probe = np.zeros((nq, num_slots), np.int64)
    slot_probe[query, slot] = np.repeat(np.tile(np.arange(nprobe), nq), pair_counts)
    return query, slot, chunk, slot_chunk, slot_probe


def plan_tiles(probes: np.ndarray, list_start: np.ndarray, list_chunks: np.ndarray, group: int):
    """Host-side schedule for one query batch.

    Args:
      probes: ``[Q, nprobe]`` cell ids; ``list_start/list_chunks [nlist]``: each cell's chunk range.
    Returns:
      ``tile_chunk [T]`` (chunk scanned by each tile), ``tile_query [T, group]`` (query rows, ``Q`` = none),
      ``slot_src [Q, S]`` (row ``tile * group + member`` holding each slot's scores, ``-1`` = empty) and
      ``slot_chunk [Q, S]`` (chunk in each slot, ``-1`` = empty), with ``S`` the most chunks any query scans.
    """
    nq = len(probes)
    query, slot, chunk, slot_chunk, _ = query_chunks(probes, list_start, list_chunks)
    total = len(chunk)
    # group by chunk into tiles of up to `group` queries
    order = np.argsort(chunk, kind="stable")
    chunk, query, slot = chunk[order], query[order], slot[order]
    starts = np.flatnonzero(np.r_[True, chunk[1:] != chunk[:-1]])
    rank = np.arange(total) - np.repeat(starts, np.diff(np.r_[starts, total]))
    tiles_per_chunk = (np.diff(np.r_[starts, total]) + group - 1) // group
    tile_base = np.repeat(np.cumsum(tiles_per_chunk) - tiles_per_chunk, np.diff(np.r_[starts, total]))
    tile = tile_base + rank // group
    num_tiles = int(tiles_per_chunk.sum())
    tile_chunk = np.zeros(num_tiles, np.int64)
    tile_chunk[tile] = chunk
    tile_query = np.full((num_tiles, group), nq, np.int64)
    tile_query[tile, rank % group] = query
    slot_src = np.full(slot_chunk.shape, -1, np.int64)
    slot_src[query, slot] = tile * group + rank % group
    return tile_chunk, tile_query, slot_src, slot_chunk


def pq_decode(chunk_data, tile_chunk):
    """IVF-PQ chunks: centroid of the cell plus the decoded residual, ``[T, C, D]``."""
    codes, chunk_list, centroids, codebooks = chunk_data
    m, ksub, dsub = codebooks.shape
    rows = codes[tile_chunk].astype(jnp.int32) + jnp.arange(m, dtype=jnp.int32) * ksub  # [T, C, M]
    # one row gather from the flattened codebooks (3x faster on CPU than a two-index gather)
    residual = jnp.take(codebooks.reshape(m * ksub, dsub), rows, axis=0).reshape(*rows.shape[:2], -1)
    return residual + centroids[chunk_list[tile_chunk]][:, None, :]


@functools.partial(jax.jit, static_argnames=("metric", "k", "steps", "compute_dtype"))
def _scan_tiles(q, tile_chunk, tile_query, slot_src, slot_pos, chunk_data, metric, k, steps,
                compute_dtype=jnp.float32):
    """Scores every tile ``[T, group, C]``, gathers each query's slots ``[Q, S, C]``, returns its top ``k``."""
    nq = q.shape[0]
    q_pad = jnp.concatenate([q, jnp.zeros((1, q.shape[1]), q.dtype)])
    xs = jax.tree.map(lambda a: a.reshape(steps, -1, *a.shape[1:]), (tile_chunk, tile_query))

    def body(_, x):
        t_chunk, t_query = x
        vecs = chunk_data[0][t_chunk]  # [TG, C, D] stored vectors of the tiles' chunks
        qs = q_pad[t_query]  # [TG, G, D]
        s = jnp.einsum("tgd,tcd->tgc", qs.astype(compute_dtype), vecs.astype(compute_dtype),
                       precision=similarity.full_precision(), preferred_element_type=jnp.float32)
        if metric == "l2":
            s = s - 0.5 * jnp.sum(vecs * vecs, axis=-1)[:, None, :]
        return None, s

    _, tiles = jax.lax.scan(body, None, xs)  # [steps, TG, G, C]
    chunk = tiles.shape[-1]
    rows = jnp.concatenate([tiles.reshape(-1, chunk), jnp.full((1, chunk), -jnp.inf, jnp.float32)])
    scores = rows[jnp.where(slot_src < 0, rows.shape[0] - 1, slot_src)]  # [Q, S, C]
    flat_pos = slot_pos.reshape(nq, -1)
    scores = jnp.where(flat_pos >= 0, scores.reshape(nq, -1), -jnp.inf)
    vals, where = topk.chunked_topk(scores, k)
    pos = jnp.take_along_axis(flat_pos, where, axis=1)
    return vals, jnp.where(jnp.isneginf(vals), -1, pos)


@functools.partial(jax.jit, static_argnames=("k", "sub"))
def _adc_scan(q, probes, slot_chunk, slot_probe, chunk_pos, codes_t, bias, centroids, codebooks, k, sub):
    """IVF-PQ asymmetric distance computation, query-major, ``sub`` queries at a time.

    For a stored ``x = c + r`` (cell centroid plus PQ-decoded residual) the score is
    ``q.c + sum_m lut[m, code_m] + bias``, with ``lut[m, j] = q_m . codebook[m, j]`` built once per
    query and ``bias = -||x||^2 / 2`` (l2) or ``0`` (inner product), ``-inf`` for empty entries: per
    candidate, ``M`` table lookups and adds instead of decoding ``D`` values. Lookups run
    code-position-major (``M`` gathers of ``[sub, S * C]`` from a 256-entry row each); stored positions
    are looked up for the ``k`` winners only.

    Args:
      q ``[Q, D]``; probes ``[Q, nprobe]``; slot_chunk / slot_probe ``[Q, S]`` (empty slots point at the
      all-empty chunk); chunk_pos ``[chunks, C]`` (stored position, ``-1`` = none); codes_t
      ``[chunks, M, C]`` uint8; bias ``[chunks, C]``; centroids ``[nlist, D]``; codebooks
      ``[M, ksub, D / M]``.
    Returns ``(scores, positions)``, each ``[Q, k]``.
    """
    m, _, dsub = codebooks.shape
    nq = slot_chunk.shape[0]
    chunk = codes_t.shape[-1]

    def batch(args):
        qb, pb, sc, sp = args
        lut = jnp.einsum("bmd,mkd->bmk", qb.reshape(sub, m, dsub), codebooks,
                         precision=similarity.full_precision())
        coarse = jnp.einsum("bd,bpd->bp", qb, centroids[pb], precision=similarity.full_precision())
        codes = codes_t[sc]  # [sub, S, M, C]
        s = jnp.take_along_axis(coarse, sp, axis=1)[:, :, None] + bias[sc]  # [sub, S, C]
        s = s.reshape(sub, -1)
        for j in range(m):
            idx = codes[:, :, j, :].reshape(sub, -1).astype(jnp.int32)
            s = s + jnp.take_along_axis(lut[:, j, :], idx, axis=1)
        vals, where = jax.lax.top_k(s, k)  # faster than chunked_topk after the gathers (measured)
        slot_chunks = jnp.take_along_axis(sc, where // chunk, axis=1)
        pos = chunk_pos[slot_chunks, where % chunk]
        return vals, jnp.where(jnp.isneginf(vals), -1, pos)

    xs = jax.tree.map(lambda a: a.reshape(nq // sub, sub, *a.shape[1:]),
                      (q, probes, slot_chunk, slot_probe))
    vals, pos = jax.lax.map(batch, xs)
    return vals.reshape(nq, k), pos.reshape(nq, k)


@jax.jit
def _half_sqnorms(chunk_data, chunks):
    """``||x||^2 / 2`` of the IVF-PQ reconstructions in ``chunks``: ``[len(chunks), C]``."""
    x = pq_decode(chunk_data, chunks)
    return 0.5 * jnp.sum(x * x, axis=-1)


class IVFIndex(Index):
    """IVF-Flat (FAISS IndexIVFFlat): exact vectors in ``nlist`` k-means cells, ``nprobe`` cells scanned.

    Args:
      dim, metric: as ``FlatIndex`` (cells are assigned by the same metric).
      nlist: number of cells; ``nprobe``: cells scanned per query (settable later).
      chunk: vectors per stored chunk; ``group``: queries per tile (default: the expected number of
        queries per cell in a batch, as a power of two in [8, 64]); ``tiles_per_step``: tiles per scan step.
      kmeans_iters, seed: coarse quantizer training.
      compute_dtype: ``"float32"`` (exact scores within the probed cells) or ``"bfloat16"`` (bf16 products
        accumulated in f32: faster on CPUs with bf16 units, scores rounded to ~3 significant digits).
    """

    requires_training = True

    def __init__(self, dim: int, metric: str = "l2", nlist: int = 100, *, nprobe: int = 1, chunk: int = 64,
                 group: int | None = None, tiles_per_step: int = 16, kmeans_iters: int = 20, seed: int = 0,
                 compute_dtype: str = "float32", **kwargs):
        kwargs.setdefault("query_batch", 2048)
        super().__init__(dim, metric, **kwargs)
        if compute_dtype not in ("float32", "bfloat16"):
            raise ValueError(f"compute_dtype must be 'float32' or 'bfloat16', got {compute_dtype!r}")
        self.compute_dtype = compute_dtype
        if nlist <= 0:
            raise ValueError(f"nlist must be positive, got {nlist}")
        self.nlist, self.nprobe, self.chunk = int(nlist), int(nprobe), int(chunk)
        self.group = None if group is None else int(group)
        self.tiles_per_step, self.kmeans_iters, self.seed = int(tiles_per_step), int(kmeans_iters), int(seed)
        self.centroids = None
        self._list = np.zeros((0,), np.int64)  # cell of every stored vector
        self._x = np.zeros((0, self.dim), np.float32)
        self._device = None

    # ---------------------------------------------------------------- training and adding
    def _prep(self, x):
        return normalize(x) if self.metric == "cosine" else x

    def train(self, x) -> None:
        x = self._prep(as_matrix(x, self.dim, "training vectors"))
        if len(x) < self.nlist:
            raise ValueError(f"training needs at least nlist={self.nlist} vectors, got {len(x)}")
        self.centroids, _ = kmeans(x, self.nlist, iters=self.kmeans_iters, seed=self.seed)
        self._train_codes(x)
        self._trained = True

    def _train_codes(self, x) -> None:
        pass

    def assign(self, x: np.ndarray) -> np.ndarray:
        """Cell of each vector ``[n]`` (best centroid under the index metric)."""
        metric = "l2" if self.metric == "l2" else "ip"
        out = [np.asarray(_coarse(jnp.asarray(x[i:i + 8192]), jnp.asarray(self.centroids), 1, metric))[:, 0]
               for i in range(0, len(x), 8192)]
        return np.concatenate(out).astype(np.int64) if out else np.zeros((0,), np.int64)

    def add(self, x, ids=None) -> None:
        x = as_matrix(x, self.dim)
        self._check_trained("add")
        x = self._prep(x)
        lists = self.assign(x)
        self._ids = np.concatenate([self._ids, self._new_ids(len(x), ids)])
        self._list = np.concatenate([self._list, lists])
        self._store(x, lists)
        self._device = None

    def _store(self, x, lists) -> None:
        self._x = np.concatenate([self._x, x])

    def _remove_rows(self, keep) -> None:
        self._list = self._list[keep]
        self._x = self._x[keep]
        self._device = None

    def _payload(self) -> dict[str, np.ndarray]:
        """Per-vector arrays laid out into chunks."""
        return {"x": self._x}

    def _chunk_extra(self, chunk_list: np.ndarray):
        return ()

    # ---------------------------------------------------------------- chunked device layout
    def list_sizes(self) -> np.ndarray:
        return np.bincount(self._list, minlength=self.nlist)

    def _layout(self):
        if self._device is not None:
            return self._device
        sizes = self.list_sizes()
        list_chunks = (sizes + self.chunk - 1) // self.chunk
        list_start = np.cumsum(list_chunks) - list_chunks
        num_chunks = int(list_chunks.sum()) + 1  # + an all-empty chunk
        order = np.argsort(self._list, kind="stable")  # positions grouped by cell, ascending within
        lst = self._list[order]
        rank = np.arange(len(order)) - (np.cumsum(sizes) - sizes)[lst]
        row = list_start[lst] * self.chunk + rank  # flat row in the chunked layout
        chunk_pos = np.full(num_chunks * self.chunk, -1, np.int64)
        chunk_pos[row] = order
        data = []
        for arr in self._payload().values():
            out = np.zeros((num_chunks * self.chunk, *arr.shape[1:]), arr.dtype)
            out[row] = arr[order]
            data.append(jnp.asarray(out.reshape(num_chunks, self.chunk, *arr.shape[1:])))
        chunk_list = np.zeros(num_chunks, np.int32)
        chunk_list[:-1] = np.repeat(np.arange(self.nlist), list_chunks)
        chunk_data = tuple(data) + self._chunk_extra(chunk_list)
        self._device = (chunk_data, chunk_pos.reshape(num_chunks, self.chunk), list_start, list_chunks)
        return self._device

    # ---------------------------------------------------------------- search
    def _prepare_ivf_search(self, q, k, nprobe):
        """Checked ``(queries, k, nprobe)``; ``nprobe`` defaults to ``self.nprobe``, capped at ``nlist``."""
        q, k = self._prepare_search(q, k)
        nprobe = min(self.nlist, int(nprobe or self.nprobe))
        if nprobe <= 0:
            raise ValueError(f"nprobe must be positive, got {nprobe}")
        return self._prep(q), k, nprobe

    def search(self, q, k: int, nprobe: int | None = None):
        """``(D, I)`` as ``FlatIndex.search``, scanning ``nprobe`` (default ``self.nprobe``) cells per query."""
        q, k, nprobe = self._prepare_ivf_search(q, k, nprobe)
        chunk_data, chunk_pos, list_start, list_chunks = self._layout()
        metric = "l2" if self.metric == "l2" else "ip"
        centroids = jnp.asarray(self.centroids)
        scores, positions = [], []
        for start in range(0, len(q), self.query_batch):
            qb = q[start:start + self.query_batch]
            probes = np.asarray(_coarse(jnp.asarray(qb), centroids, nprobe, metric)).astype(np.int64)
            group = self.group or int(np.clip(2 ** round(np.log2(max(1, len(qb) * nprobe / self.nlist))), 8, 64))
            tile_chunk, tile_query, slot_src, slot_chunk = plan_tiles(probes, list_start, list_chunks, group)
            step = self.tiles_per_step
            num_tiles = _bucket(len(tile_chunk), step)
            pad = num_tiles - len(tile_chunk)
            tile_chunk = np.pad(tile_chunk, (0, pad), constant_values=len(chunk_pos) - 1)
            tile_query = np.pad(tile_query, ((0, pad), (0, 0)), constant_values=len(qb))
            num_slots = _bucket(slot_chunk.shape[1], 8)
            widen = ((0, 0), (0, num_slots - slot_chunk.shape[1]))
            slot_chunk = np.pad(slot_chunk, widen, constant_values=-1)
            slot_src = np.pad(slot_src, widen, constant_values=-1)
            slot_pos = np.where(slot_chunk[:, :, None] >= 0, chunk_pos[slot_chunk], -1)
            kk = min(k, num_slots * self.chunk)
            vals, pos = _scan_tiles(
                jnp.asarray(qb), tile_chunk.astype(np.int32), tile_query.astype(np.int32),
                slot_src.astype(np.int32), slot_pos.astype(np.int32), chunk_data,
                metric, kk, num_tiles // step, jnp.dtype(self.compute_dtype))
            vals, pos = pad_results(np.asarray(vals), np.asarray(pos).astype(np.int64), k)
            scores.append(vals)
            positions.append(pos)
        scores, positions = np.concatenate(scores), np.concatenate(positions)
        return self._finish(scores, positions, np.sum(q * q, axis=1) if self.metric == "l2" else None)

    # ---------------------------------------------------------------- persistence
    def _config(self):
        return {**super()._config(), "nlist": self.nlist, "nprobe": self.nprobe, "chunk": self.chunk,
                "group": self.group, "tiles_per_step": self.tiles_per_step,
                "kmeans_iters": self.kmeans_iters, "seed": self.seed, "compute_dtype": self.compute_dtype}

    def _arrays(self):
        arrays = {"list": self._list, **self._payload()}
        if self.centroids is not None:
            arrays["centroids"] = self.centroids
        return arrays

    def _restore(self, arrays):
        self._list = arrays.pop("list")
        self.centroids = arrays.pop("centroids", None)
        for key, value in arrays.items():
            setattr(self, "_" + key, value)
        self._device = None


class IVFPQIndex(IVFIndex):
    """IVF-PQ (FAISS IndexIVFPQ, residual encoding): each vector is stored as ``m`` bytes, the PQ code of
    its residual to the cell centroid. Search is asymmetric distance computation (queries stay exact):
    one ``[M, 256]`` lookup table per query, then ``M`` lookups per scanned vector (see ``_adc_scan``).
    For l2 the search also keeps ``||x||^2 / 2`` of every reconstruction on the device (4 bytes per
    vector, derived from the codes, not stored; FAISS keeps ``nlist x M x 256`` precomputed tables).

    Args: as ``IVFIndex`` plus ``m`` (subquantizers, must divide ``dim``), ``pq_iters`` and ``adc_batch``
    (queries per lookup step; bounds the work memory to ``adc_batch x scanned vectors x m`` bytes).
    """

    group_queries = 512  # queries padded to a common scan length (sorted by it, see ``search``)

    def __init__(self, dim: int, metric: str = "l2", nlist: int = 100, m: int = 8, *, pq_iters: int = 20,
                 adc_batch: int = 128, **kwargs):
        if m <= 0 or dim % m:
            raise ValueError(f"m={m} subquantizers must divide the dimension {dim}")
        kwargs.setdefault("chunk", 32)  # finer than IVF-Flat's: less padding per scanned cell
        super().__init__(dim, metric, nlist, **kwargs)
        self.m, self.pq_iters, self.adc_batch = int(m), int(pq_iters), int(adc_batch)
        self.codebooks = None
        self._codes = np.zeros((0, self.m), np.uint8)
        self._adc = None

    def _adc_arrays(self, layout):
        """``(codes_t [chunks, M, C], bias [chunks, C], positions [chunks, C])`` for ``_adc_scan``, on the
        device, cached per layout."""
        if self._adc is None or self._adc[0] is not layout:
            chunk_data = layout[0]
            codes_t = jnp.swapaxes(chunk_data[0], 1, 2)
            pos = jnp.asarray(layout[1], jnp.int32)
            bias = jnp.zeros(pos.shape, jnp.float32)
            if self.metric == "l2":
                n = chunk_data[0].shape[0]
                bias = -jnp.concatenate([
                    _half_sqnorms(chunk_data, jnp.arange(i, min(i + 1024, n))) for i in range(0, n, 1024)])
            self._adc = (layout, codes_t, jnp.where(pos >= 0, bias, -jnp.inf), pos)
        return self._adc[1:]

    def _adc_group(self, qb, probes, slot_chunk, slot_probe, chunk_data, chunk_pos, codes_t, bias, k):
        """Top ``k`` ``(scores, positions)`` of one group of queries through ``_adc_scan``."""
        used = max(1, int((slot_chunk >= 0).sum(1).max()))
        slot_chunk, slot_probe = slot_chunk[:, :used], slot_probe[:, :used]
        nq = -(-len(qb) // self.adc_batch) * self.adc_batch
        widen = ((0, nq - len(qb)), (0, _bucket(used, 4) - used))
        slot_chunk = np.pad(slot_chunk, widen, constant_values=-1)
        slot_probe = np.pad(slot_probe, widen)
        kk = min(k, slot_chunk.shape[1] * self.chunk)
        vals, pos = _adc_scan(
            jnp.asarray(np.pad(qb, ((0, nq - len(qb)), (0, 0)))),
            jnp.asarray(np.pad(probes, ((0, nq - len(qb)), (0, 0))), jnp.int32),
            jnp.asarray(np.where(slot_chunk < 0, chunk_pos.shape[0] - 1, slot_chunk), jnp.int32),
            jnp.asarray(slot_probe, jnp.int32), chunk_pos,
            codes_t, bias, chunk_data[2], chunk_data[3], kk, self.adc_batch)
        return pad_results(np.asarray(vals)[:len(qb)], np.asarray(pos)[:len(qb)].astype(np.int64), k)

    def search(self, q, k: int, nprobe: int | None = None):
        """``(D, I)`` as ``FlatIndex.search``, scanning ``nprobe`` (default ``self.nprobe``) cells per query."""
        q, k, nprobe = self._prepare_ivf_search(q, k, nprobe)
        layout = self._layout()
        chunk_data, _, list_start, list_chunks = layout
        codes_t, bias, pos_dev = self._adc_arrays(layout)
        metric = "l2" if self.metric == "l2" else "ip"
        centroids = chunk_data[2]
        scores, positions = [], []
        for start in range(0, len(q), self.query_batch):
            qb = q[start:start + self.query_batch]
            probes = np.asarray(_coarse(jnp.asarray(qb), centroids, nprobe, metric)).astype(np.int64)
            _, _, _, slot_chunk, slot_probe = query_chunks(probes, list_start, list_chunks)
            # Queries sorted by how many chunks they scan, in groups of ``group_queries`` padded to
            # their group's widest query (not the batch's): cells differ in size, so this cuts the
            # padded work at large nprobe.
            order = np.argsort((slot_chunk >= 0).sum(1), kind="stable")
            vals = np.full((len(qb), k), -np.inf, np.float32)
            pos = np.full((len(qb), k), -1, np.int64)
            for g in range(0, len(qb), self.group_queries):
                rows = order[g:g + self.group_queries]
                vals[rows], pos[rows] = self._adc_group(
                    qb[rows], probes[rows], slot_chunk[rows], slot_probe[rows], chunk_data, pos_dev,
                    codes_t, bias, k)
            scores.append(vals)
            positions.append(pos)
        scores, positions = np.concatenate(scores), np.concatenate(positions)
        return self._finish(scores, positions, np.sum(q * q, axis=1) if self.metric == "l2" else None)

    def _train_codes(self, x) -> None:
        residual = x - self.centroids[self.assign(x)]
        self.codebooks = quantize.train_pq(residual, self.m, iters=self.pq_iters, seed=self.seed)

    def _store(self, x, lists) -> None:
        codes = quantize.encode_pq(x - self.centroids[lists], self.codebooks)
        self._codes = np.concatenate([self._codes, codes])

    def _remove_rows(self, keep) -> None:
        self._list = self._list[keep]
        self._codes = self._codes[keep]
        self._device = None

    def _payload(self):
        return {"codes": self._codes}

    def _chunk_extra(self, chunk_list):
        return (jnp.asarray(chunk_list), jnp.asarray(self.centroids), jnp.asarray(self.codebooks))

    @property
    def code_bytes(self) -> int:
        """Bytes of the stored codes (``m`` per vector)."""
        return self._codes.nbytes

    def _config(self):
        return {**super()._config(), "m": self.m, "pq_iters": self.pq_iters, "adc_batch": self.adc_batch}

    def _arrays(self):
        arrays = super()._arrays()
        if self.codebooks is not None:
            arrays["codebooks"] = self.codebooks
        return arrays

    def _restore(self, arrays):
        self.codebooks = arrays.pop("codebooks", None)
        super()._restore(arrays)
