"""Inverted-file indexes: ``IVFIndex`` (IVF-Flat) and ``IVFPQIndex`` (IVF + residual product quantization).

k-means (JAX, k-means++ seeded) splits space into ``nlist`` cells; a query scans the ``nprobe`` cells
whose centroids score best.

IVF-Flat search is *list-major*, so the inner loop is a matrix product rather than a matrix-vector
product: each cell is stored as fixed-size chunks of ``chunk`` vectors; the host groups the (query,
chunk) pairs of a query batch by chunk into tiles of up to ``group`` queries, and one jitted program
scans the tiles, scoring ``[group, D] x [D, chunk]`` per tile. Each stored vector is read once per tile
instead of once per probing query, and small tiles of a batched matmul beat the matrix-vector
products of a query-major scan. IVF-PQ scores the same (query, chunk) pairs with
lookup tables (asymmetric distance computation): ``M`` table lookups per candidate cost less than
decoding its ``D`` values, however the decoding is shared.

Both then gather each query's scored rows and take its top-k (``_merge_parts``). Cells differ in size,
so the longest query scans several times the mean number of chunks; each query's rows are cut into
parts of about 1.5x the mean (``split_slots``) and the parts' top-k merged, so neither the scoring nor
the gather is padded to the longest query.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from embeddings_jax.index.base import (
    Index,
    check_positive_int,
    check_subquantizers,
    pad_results,
    training_matrix,
)
from embeddings_jax.ops import quantize, similarity, topk, xla_cpu
from embeddings_jax.ops.kmeans import kmeans


def _bucket(n: int, base: int) -> int:
    """Rounds ``n`` up to ``base * 2**(i/4)`` steps (few distinct shapes, at most ~19% padding)."""
    size = base
    while size < n:
        size = int(np.ceil(size * 2 ** 0.25 / base)) * base
    return size


@functools.partial(jax.jit, static_argnames=("nprobe", "metric"))
def _coarse(q, centroids, nprobe, metric):
    """``(q . centroids [Q, nlist], best nprobe cells per query [Q, nprobe] int32)``."""
    dots = similarity.dot(q, centroids)
    s = dots - 0.5 * similarity.squared_norms(centroids)[None, :] if metric == "l2" else dots
    return dots, topk.chunked_topk(s, nprobe)[1]


def query_chunks(probes: np.ndarray, list_start: np.ndarray, list_chunks: np.ndarray):
    """Every (query, chunk) pair a batch scans, in query order.

    Returns ``query, slot, chunk [P]`` (the pair's query, its slot among the query's chunks and the
    chunk id) and ``slot_chunk [Q, S]`` (``-1`` = empty), with ``S`` the most chunks any query scans.
    """
    nq = len(probes)
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
    return query, slot, chunk, slot_chunk


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
    query, slot, chunk, slot_chunk = query_chunks(probes, list_start, list_chunks)
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


def split_slots(slot_src: np.ndarray, slot_chunk: np.ndarray, width: int):
    """Cuts each query's slots into parts of ``width`` slots, so the per-query score gather is padded
    to ``width`` rather than to the longest list (cells differ in size: the longest list is several
    times the mean).

    Returns ``part_src, part_chunk [R, width]`` (as ``slot_src/slot_chunk``, ``-1`` = empty) and
    ``part_of [Q, V]`` (row of each query's ``j``-th part, ``R`` = none), ``V`` the most parts a query has.
    """
    nq = len(slot_src)
    parts = np.maximum(1, -(-(slot_chunk >= 0).sum(1) // width))
    v = int(parts.max())
    widen = ((0, 0), (0, max(0, v * width - slot_src.shape[1])))
    src = np.pad(slot_src, widen, constant_values=-1)[:, :v * width].reshape(nq * v, width)
    chunk = np.pad(slot_chunk, widen, constant_values=-1)[:, :v * width].reshape(nq * v, width)
    keep = (np.arange(v)[None, :] < parts[:, None]).ravel()
    part_of = np.full(nq * v, int(keep.sum()), np.int64)
    part_of[keep] = np.arange(int(keep.sum()))
    return src[keep], chunk[keep], part_of.reshape(nq, v)


def plan_parts(slot_src: np.ndarray, slot_chunk: np.ndarray):
    """``split_slots`` with parts of about 1.5x the mean number of slots (most queries need one part and
    the gather pads little), rows padded to a bucketed count; int32 ``(part_src, part_chunk, part_of)``."""
    width = _bucket(int(np.ceil(1.5 * (slot_chunk >= 0).sum(1).mean())), 2)
    part_src, part_chunk, part_of = split_slots(slot_src, slot_chunk, width)
    pad = ((0, _bucket(len(part_src), 256) - len(part_src)), (0, 0))
    return (np.pad(part_src, pad, constant_values=-1).astype(np.int32),
            np.pad(part_chunk, pad, constant_values=-1).astype(np.int32), part_of.astype(np.int32))


def entry_bias(half_sqnorms, chunk_pos: np.ndarray, metric: str) -> jax.Array:
    """Per stored entry ``[chunks, C]``: ``-||x||^2 / 2`` for l2, ``0`` for inner product, ``-inf`` where
    ``chunk_pos`` marks an empty entry, so a score ``q.x + bias`` ranks as the metric does."""
    bias = -half_sqnorms if metric == "l2" else jnp.zeros(chunk_pos.shape, jnp.float32)
    return jnp.where(jnp.asarray(chunk_pos) >= 0, bias, -jnp.inf).astype(jnp.float32)


def plan_blocks(query: np.ndarray, chunk: np.ndarray, num_queries: int, block: int, empty_chunk: int):
    """Lays the (query, chunk) pairs of ``query_chunks`` out in blocks of ``block`` queries, each padded
    to the fullest block (padding scans ``empty_chunk``).

    Returns ``block_query`` (query within its block) and ``block_chunk``, both ``[blocks, P]`` int32, and
    ``row [pairs]``, each pair's flat row ``block * P + i``.
    """
    blk = query // block
    per_block = np.bincount(blk, minlength=num_queries // block)
    width = _bucket(int(per_block.max()), 256)
    row = blk * width + np.arange(len(query)) - np.repeat(np.cumsum(per_block) - per_block, per_block)
    block_query = np.zeros(len(per_block) * width, np.int32)
    block_query[row] = query % block
    block_chunk = np.full(len(per_block) * width, empty_chunk, np.int32)
    block_chunk[row] = chunk
    return block_query.reshape(-1, width), block_chunk.reshape(-1, width), row


def pq_decode(chunk_data, tile_chunk):
    """IVF-PQ chunks: centroid of the cell plus the decoded residual, ``[T, C, D]``."""
    codes, chunk_list, centroids, codebooks = chunk_data
    m, ksub, dsub = codebooks.shape
    rows = codes[tile_chunk].astype(jnp.int32) + jnp.arange(m, dtype=jnp.int32) * ksub  # [T, C, M]
    # one row gather from the flattened codebooks: cheaper than a two-index gather
    residual = jnp.take(codebooks.reshape(m * ksub, dsub), rows, axis=0).reshape(*rows.shape[:2], -1)
    return residual + centroids[chunk_list[tile_chunk]][:, None, :]


def _merge_parts(rows, part_src, part_chunk, part_of, chunk_pos, k: int):
    """Top ``k`` ``(scores, positions) [Q, k]`` from scored chunk rows.

    ``rows [N, C]`` holds the scores of some (query, chunk) pairs (``-inf`` for empty entries); each query
    part lists its rows (``part_src [R, width]`` indexes ``rows``, see ``split_slots``). A part's top ``k``
    lies in its ``k`` rows with the best maxima (ties included, as in ``topk.chunked_topk``), so only
    the row maxima ``[R, width]`` are gathered and ranked, then the ``k`` chosen rows' ``k * C`` scores;
    each query merges its parts. Stored positions are looked up for the winners only.
    """
    chunk = rows.shape[-1]
    empty = rows.shape[0]  # index of an appended all -inf row
    rows = jnp.concatenate([rows, jnp.full((1, chunk), -jnp.inf, rows.dtype)])
    src = jnp.where(part_src < 0, empty, part_src)
    part_k = min(k, src.shape[1])
    _, best = jax.lax.top_k(jnp.max(rows, axis=1)[src], part_k)  # [R, part_k] slots
    best = jnp.sort(best, axis=1)  # slot order, so ties keep the lower slot and entry first
    cand = rows[jnp.take_along_axis(src, best, axis=1)].reshape(len(src), -1)  # [R, part_k * C]
    vals, where = jax.lax.top_k(cand, min(k, cand.shape[1]))
    chunks = jnp.take_along_axis(jnp.take_along_axis(part_chunk, best, axis=1), where // chunk, axis=1)
    pos = jnp.where(chunks < 0, -1, chunk_pos[chunks, where % chunk])
    nq, part_k = len(part_of), vals.shape[1]
    vals = jnp.concatenate([vals, jnp.full((1, part_k), -jnp.inf, vals.dtype)])[part_of].reshape(nq, -1)
    pos = jnp.concatenate([pos, jnp.full((1, part_k), -1, pos.dtype)])[part_of].reshape(nq, -1)
    vals, where = jax.lax.top_k(vals, min(k, vals.shape[1]))
    pos = jnp.take_along_axis(pos, where, axis=1)
    return vals, jnp.where(jnp.isneginf(vals), -1, pos)


@functools.partial(jax.jit, static_argnames=("k", "steps", "compute_dtype"))
def _scan_tiles(q, tile_chunk, tile_query, part_src, part_chunk, part_of, vecs_t, bias, chunk_pos, k, steps,
                compute_dtype=jnp.float32):
    """IVF-Flat: scores every tile ``[T, group, C]`` as ``q.x + bias`` (``bias = -||x||^2 / 2`` for l2,
    ``0`` for inner product, ``-inf`` for empty entries) and returns each query's top ``k`` (``_merge_parts``).

    Args:
      q ``[Q, D]``; tile_chunk ``[T]``, tile_query ``[T, group]`` (``Q`` = padding); part_src (rows
      ``tile * group + member``) / part_chunk ``[R, width]``, part_of ``[Q, V]`` (see ``split_slots``);
      vecs_t ``[chunks, D, C]``; bias, chunk_pos ``[chunks, C]``.
    """
    q_pad = jnp.concatenate([q, jnp.zeros((1, q.shape[1]), q.dtype)])
    xs = jax.tree.map(lambda a: a.reshape(steps, -1, *a.shape[1:]), (tile_chunk, tile_query))

    def body(_, x):
        t_chunk, t_query = x
        s = jnp.einsum("tgd,tdc->tgc", q_pad[t_query].astype(compute_dtype),
                       vecs_t[t_chunk].astype(compute_dtype),
                       precision=similarity.full_precision(), preferred_element_type=jnp.float32)
        return None, s + bias[t_chunk][:, None, :]

    _, tiles = jax.lax.scan(body, None, xs)  # [steps, TG, G, C]
    return _merge_parts(tiles.reshape(-1, tiles.shape[-1]), part_src, part_chunk, part_of, chunk_pos, k)


@functools.partial(jax.jit, static_argnames=("k", "in_cache"))
def _adc_scan(q, dots, block_query, block_chunk, part_src, part_chunk, part_of, chunk_list, codes_t, bias,
              chunk_pos, codebooks, k, in_cache):
    """IVF-PQ asymmetric distance computation over (query, chunk) pairs; top ``k`` per query.

    For a stored ``x = c + r`` (cell centroid plus PQ-decoded residual) the score is
    ``q.c + sum_m lut[m, code_m] + bias``, with ``lut[m, j] = q_m . codebook[m, j]`` built once per
    query and ``bias = -||x||^2 / 2`` (l2) or ``0`` (inner product), ``-inf`` for empty entries: per
    candidate, ``M`` table lookups and adds instead of decoding ``D`` values. Queries go in blocks of
    ``B``; a block holds only its queries' real pairs (padded to the fullest block, not to the longest
    query). ``in_cache=True`` builds each block's tables (``B x M x 1 KiB``) inside a loop over blocks, so
    they are looked up while in cache; ``False`` builds all tables first and runs every lookup in one
    program-level fusion; ``xla_cpu.tables_in_cache_loop`` chooses. ``_merge_parts`` then takes each
    query's top ``k``.

    Args:
      q ``[blocks * B, D]``; dots ``[blocks * B, nlist]`` (``q . centroids``); block_query (query within
      the block) / block_chunk ``[blocks, P]``: the pairs, row ``block * P + i`` in ``part_src``;
      part_src / part_chunk ``[R, width]``, part_of ``[Q, V]``; chunk_list ``[chunks]`` (cell of each
      chunk); codes_t ``[M, chunks, C]`` uint8; bias, chunk_pos ``[chunks, C]``; codebooks ``[M, ksub, D / M]``.
    """
    ksub = codebooks.shape[1]
    num_blocks = block_query.shape[0]
    size = len(q) // num_blocks
    first = (jnp.arange(num_blocks, dtype=jnp.int32) * size)[:, None]
    scores = dots[first + block_query, chunk_list[block_chunk]][..., None] + bias[block_chunk]  # [blocks, P, C]
    if in_cache:
        def block(args):
            qb, s, pq, pc = args
            lut = quantize.pq_lut(qb, codebooks).reshape(-1)
            return quantize.adc_lookup(lut, (pq * ksub)[:, None], codes_t, size * ksub, rows=pc, scores=s)

        scores = jax.lax.map(block, (q.reshape(num_blocks, size, -1), scores, block_query, block_chunk))
    else:
        table = (first + block_query) * ksub  # [M, Q, ksub] tables, query rows
        scores = quantize.adc_lookup(quantize.pq_lut(q, codebooks).reshape(-1), table.reshape(-1, 1), codes_t,
                                     len(q) * ksub, rows=block_chunk.reshape(-1),
                                     scores=scores.reshape(-1, scores.shape[-1]))
    return _merge_parts(scores.reshape(-1, scores.shape[-1]), part_src, part_chunk, part_of, chunk_pos, k)


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
      mesh: optional ``jax.sharding.Mesh``: the index is replicated on its devices and query batches are
        split over them (see ``search``).
    """

    requires_training = True
    _bias_slot = 1  # where the entry biases sit in _device_arrays' tuple (filters mask them)

    def __init__(self, dim: int, metric: str = "l2", nlist: int = 100, *, nprobe: int = 1, chunk: int = 64,
                 group: int | None = None, tiles_per_step: int = 16, kmeans_iters: int = 20, seed: int = 0,
                 compute_dtype: str = "float32", **kwargs):
        kwargs.setdefault("query_batch", 4096)
        super().__init__(dim, metric, **kwargs)
        if compute_dtype not in ("float32", "bfloat16"):
            raise ValueError(f"compute_dtype must be 'float32' or 'bfloat16', got {compute_dtype!r}")
        self.compute_dtype = compute_dtype
        self.nlist = check_positive_int(nlist, "nlist")
        self.nprobe = check_positive_int(nprobe, "nprobe")
        self.chunk = check_positive_int(chunk, "chunk")
        self.group = None if group is None else check_positive_int(group, "group")
        self.tiles_per_step = check_positive_int(tiles_per_step, "tiles_per_step")
        self.kmeans_iters, self.seed = check_positive_int(kmeans_iters, "kmeans_iters"), int(seed)
        self.centroids = None
        self._list = np.zeros((0,), np.int64)  # cell of every stored vector
        self._x = np.zeros((0, self.dim), np.float32)
        self._device = None
        self._replicas = {}  # _search_arrays' per-device copies

    # ---------------------------------------------------------------- training and adding
    def train(self, x) -> None:
        x = self._unit_if_cosine(training_matrix(x, self.dim))
        if len(x) < self.nlist:
            raise ValueError(f"training needs at least nlist={self.nlist} vectors, got {len(x)}")
        self.centroids, _ = kmeans(x, self.nlist, iters=self.kmeans_iters, seed=self.seed)
        self._train_codes(x)
        self._trained = True

    def _train_codes(self, x) -> None:
        pass

    def assign(self, x: np.ndarray) -> np.ndarray:
        """Cell of each vector ``[n]`` (best centroid under the index metric)."""
        metric = self.kernel_metric
        out = [np.asarray(_coarse(jnp.asarray(x[i:i + 8192]), jnp.asarray(self.centroids), 1, metric)[1])[:, 0]
               for i in range(0, len(x), 8192)]
        return np.concatenate(out).astype(np.int64) if out else np.zeros((0,), np.int64)

    def add(self, x, ids=None) -> None:
        x, ids = self._prepare_add(x, ids)
        lists = self.assign(x)
        self._ids = np.concatenate([self._ids, ids])
        self._list = np.concatenate([self._list, lists])
        self._store(x, lists)
        self._device = None

    def _store(self, x, lists) -> None:
        self._x = np.concatenate([self._x, x])

    def _remove_rows(self, keep) -> None:
        self._list = self._list[keep]
        self._x = self._x[keep]
        self._device = None

    def _vectors(self, positions):
        return self._x[positions]

    def _payload(self) -> dict[str, np.ndarray]:
        """Per-vector arrays laid out into chunks."""
        return {"x": self._x}

    def _device_arrays(self, chunked: dict[str, np.ndarray], chunk_list: np.ndarray, chunk_pos: np.ndarray):
        """What the search reads on the device, from the chunked payload ``{name: [chunks, C, ...]}``:
        ``(vectors [chunks, D, C], bias [chunks, C], positions [chunks, C])`` (see ``_scan_tiles``)."""
        x = chunked["x"]
        bias = entry_bias(jnp.asarray(0.5 * np.einsum("ncd,ncd->nc", x, x)), chunk_pos, self.metric)
        return jnp.asarray(np.swapaxes(x, 1, 2)), bias, jnp.asarray(chunk_pos, jnp.int32)

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
        chunked = {}
        for name, arr in self._payload().items():
            out = np.zeros((num_chunks * self.chunk, *arr.shape[1:]), arr.dtype)
            out[row] = arr[order]
            chunked[name] = out.reshape(num_chunks, self.chunk, *arr.shape[1:])
        chunk_list = np.zeros(num_chunks, np.int32)
        chunk_list[:-1] = np.repeat(np.arange(self.nlist), list_chunks)
        chunk_pos = chunk_pos.reshape(num_chunks, self.chunk)
        chunk_data = self._device_arrays(chunked, chunk_list, chunk_pos)
        self._device = (chunk_data, chunk_pos, list_start, list_chunks)
        self._replicas = {}  # copies of the previous layout are stale
        return self._device

    # ---------------------------------------------------------------- search
    def _nprobe(self, nprobe, params) -> int:
        """Cells to scan: ``nprobe``, else ``params.nprobe``, else ``self.nprobe``; capped at ``nlist``."""
        if nprobe is None:
            nprobe = getattr(params, "nprobe", None)
        nprobe = check_positive_int(self.nprobe if nprobe is None else nprobe, "nprobe (cells scanned per query)")
        return min(self.nlist, nprobe)

    def _probes(self, q: np.ndarray, nprobe: int) -> np.ndarray:
        """The ``nprobe`` cells each query scans, ``[Q, nprobe]``."""
        centroids = jnp.asarray(self.centroids)
        return np.concatenate([np.asarray(_coarse(jnp.asarray(q[i:i + 4096]), centroids, nprobe, self.kernel_metric)[1])
                               for i in range(0, len(q), 4096)]).astype(np.int64)

    def _masked(self, arrays, allowed: np.ndarray):
        """``arrays`` (``_search_arrays``) with a ``-inf`` bias on the entries of rows not ``allowed``, so
        the scan of the probed cells never returns them."""
        chunk_data, chunk_pos = arrays[:2]
        bias = chunk_data[self._bias_slot]
        keep = jax.device_put((chunk_pos >= 0) & allowed[np.maximum(chunk_pos, 0)], next(iter(bias.devices())))
        chunk_data = list(chunk_data)
        chunk_data[self._bias_slot] = jnp.where(keep, bias, -jnp.inf)
        return (tuple(chunk_data), *arrays[1:])

    def _devices(self) -> list:
        """Devices the query batches go to in turn: the mesh's, or ``[None]`` (JAX's default device)."""
        return [None] if self.mesh is None else list(self.mesh.devices.flat)

    def _search_arrays(self, device):
        """``(chunk_data, chunk_pos, list_start, list_chunks)`` of ``_layout`` with the device arrays
        (``_device_arrays``) on ``device`` (``None``: where ``_layout`` put them); one copy per device."""
        layout = self._layout()
        if device is None:
            return layout
        if device not in self._replicas:
            self._replicas[device] = jax.device_put(layout[0], device)
        return (self._replicas[device], *layout[1:])

    def search(self, q, k: int, nprobe: int | None = None, *, ids=None, exclude_ids=None, params=None):
        """``(D, I)`` as ``FlatIndex.search``, scanning ``nprobe`` (default ``params.nprobe``, then
        ``self.nprobe``) cells per query; filters (see ``Index.search``) mask rows inside those cells.

        With a ``mesh`` the index is replicated on its devices and each query batch is split over them
        (query parallelism): every device scans its share with the same program, and the host plans one
        device's share while the others compute, so XLA:CPU's single-threaded parts (top-k, loop bodies)
        run side by side. Results equal a single-device search.
        """
        return self._search_filtered(q, k, ids, exclude_ids, params, nprobe=nprobe)

    def range_search(self, q, radius, nprobe: int | None = None, *, ids=None, exclude_ids=None, params=None):
        """``Index.range_search`` over the ``nprobe`` cells each query scans."""
        return self._range_filtered(q, radius, ids, exclude_ids, params, nprobe=nprobe)

    def _search(self, q, k, allowed, params, nprobe=None):
        nprobe = self._nprobe(nprobe, params)
        devices = self._devices()
        step = max(1, self.query_batch // len(devices))
        pending, masked = [], {}  # masked: the filtered arrays per device
        for i, start in enumerate(range(0, len(q), step)):
            qb = q[start:start + step]
            device = devices[i % len(devices)]
            qb = jnp.asarray(qb) if device is None else jax.device_put(qb, device)
            arrays = self._search_arrays(device)
            if allowed is not None:
                if device not in masked:
                    masked[device] = self._masked(arrays, allowed)
                arrays = masked[device]
            pending.append((len(qb), self._search_batch(qb, k, nprobe, arrays)))
        results = [pad_results(np.asarray(vals)[:n], np.asarray(pos)[:n].astype(np.int64), k)
                   for n, (vals, pos) in pending]
        return np.concatenate([r[0] for r in results]), np.concatenate([r[1] for r in results])

    def _range(self, q, radius, allowed, params, nprobe=None):
        """Pairs within ``radius`` among each query's ``nprobe`` cells, one cell at a time."""
        nprobe = self._nprobe(nprobe, params)
        probes = self._probes(q, nprobe)
        by_cell = np.argsort(self._list, kind="stable")  # positions grouped by cell, ascending within
        ends = np.cumsum(self.list_sizes())
        starts = ends - self.list_sizes()
        pair_query = np.repeat(np.arange(len(q)), nprobe)
        pair_cell = probes.ravel()
        order = np.argsort(pair_cell, kind="stable")
        pair_query, pair_cell = pair_query[order], pair_cell[order]
        cells, first = np.unique(pair_cell, return_index=True)
        out = [(np.zeros((0,), np.int64),) * 2 + (np.zeros((0,), np.float32),)]
        for cell, lo, hi in zip(cells, first, np.r_[first[1:], len(pair_cell)]):
            positions = by_cell[starts[cell]:ends[cell]]
            if allowed is not None:
                positions = positions[allowed[positions]]
            if len(positions):
                out.append(self._within(q, pair_query[lo:hi], positions, radius))
        return tuple(np.concatenate(parts) for parts in zip(*out))

    def _search_batch(self, qb, k: int, nprobe: int, arrays):
        """Dispatches one query batch ``qb [Q, D]`` (on its device); device ``(scores, positions) [Q, k]``."""
        chunk_data, chunk_pos, list_start, list_chunks = arrays
        metric = self.kernel_metric
        probes = np.asarray(_coarse(qb, jnp.asarray(self.centroids), nprobe, metric)[1]).astype(np.int64)
        group = self.group or int(np.clip(2 ** round(np.log2(max(1, len(qb) * nprobe / self.nlist))), 8, 64))
        tile_chunk, tile_query, slot_src, slot_chunk = plan_tiles(probes, list_start, list_chunks, group)
        num_tiles = _bucket(len(tile_chunk), self.tiles_per_step)
        pad = num_tiles - len(tile_chunk)
        tile_chunk = np.pad(tile_chunk, (0, pad), constant_values=len(chunk_pos) - 1)  # all-empty chunk
        tile_query = np.pad(tile_query, ((0, pad), (0, 0)), constant_values=len(qb))
        tiles = (jnp.asarray(a, jnp.int32) for a in (tile_chunk, tile_query))
        return _scan_tiles(qb, *tiles, *plan_parts(slot_src, slot_chunk), *chunk_data, k,
                           num_tiles // self.tiles_per_step, jnp.dtype(self.compute_dtype))

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

    def _array_specs(self, n):
        specs = {"list": (np.int64, (n,)), "x": (np.float32, (n, self.dim))}
        if self._trained:
            specs["centroids"] = (np.float32, (self.nlist, self.dim))
        return specs

    def _restore_lists(self, arrays) -> None:
        lists = arrays["list"]
        if len(lists) and (lists.min() < 0 or lists.max() >= self.nlist):
            raise ValueError(f"cell ids must lie in [0, nlist={self.nlist})")
        self._list, self.centroids = lists, arrays.get("centroids")
        self._device = None

    def _restore(self, arrays):
        self._restore_lists(arrays)
        self._x = arrays["x"]


class IVFPQIndex(IVFIndex):
    """IVF-PQ (FAISS IndexIVFPQ, residual encoding): each vector is stored as ``m`` bytes, the PQ code of
    its residual to the cell centroid. Search is asymmetric distance computation (queries stay exact):
    one ``[M, 256]`` lookup table per query, then ``M`` lookups per scanned vector (see ``_adc_scan``).
    For l2 the search also keeps ``||x||^2 / 2`` of every reconstruction on the device (4 bytes per
    vector, derived from the codes, not stored; FAISS keeps ``nlist x M x 256`` precomputed tables).

    Args: as ``IVFIndex`` plus ``m`` (subquantizers, must divide ``dim``), ``pq_iters`` and ``adc_batch``
    (queries per lookup block, whose ``adc_batch x m x 1 KiB`` of tables should fit in cache).
    """

    _bias_slot = 4

    def __init__(self, dim: int, metric: str = "l2", nlist: int = 100, m: int = 8, *, pq_iters: int = 20,
                 adc_batch: int = 128, **kwargs):
        kwargs.setdefault("chunk", 32)  # finer than IVF-Flat's: less padding per scanned cell
        # smaller batches than IVF-Flat's: a batch's 16 KiB-per-query tables (M=16) then stay in cache
        kwargs.setdefault("query_batch", 2048)
        super().__init__(dim, metric, nlist, **kwargs)
        self.m = check_subquantizers(m, self.dim)
        self.adc_batch = check_positive_int(adc_batch, "adc_batch")
        self.pq_iters = check_positive_int(pq_iters, "pq_iters")
        self.codebooks = None
        self._codes = np.zeros((0, self.m), np.uint8)

    def _vectors(self, positions):
        """Reconstructions: the cell centroid plus the decoded residual."""
        return self.centroids[self._list[positions]] + quantize.decode_pq(self._codes[positions], self.codebooks)

    def _search_batch(self, qb, k: int, nprobe: int, arrays):
        (codes_t, chunk_list, centroids, codebooks, bias, pos_dev), chunk_pos, list_start, list_chunks = arrays
        metric = self.kernel_metric
        qb = jnp.pad(qb, ((0, -len(qb) % self.adc_batch), (0, 0)))
        dots, probes = _coarse(qb, centroids, nprobe, metric)
        probes = np.asarray(probes).astype(np.int64)
        query, slot, chunk, slot_chunk = query_chunks(probes, list_start, list_chunks)
        block_query, block_chunk, row = plan_blocks(query, chunk, len(qb), self.adc_batch, len(chunk_pos) - 1)
        slot_src = np.full(slot_chunk.shape, -1, np.int64)
        slot_src[query, slot] = row
        reads = len(query) * self.chunk / (codebooks.shape[1] * len(qb))  # per table entry, on average
        in_cache = xla_cpu.tables_in_cache_loop(reads, self._devices())
        return _adc_scan(qb, dots, jnp.asarray(block_query), jnp.asarray(block_chunk),
                         *plan_parts(slot_src, slot_chunk), chunk_list, codes_t, bias, pos_dev, codebooks, k,
                         in_cache)

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

    def _device_arrays(self, chunked, chunk_list, chunk_pos):
        """``(codes_t [M, chunks, C], chunk_list, centroids, codebooks, bias [chunks, C], positions
        [chunks, C])`` for ``_adc_scan``; the l2 bias comes from the decoded reconstructions."""
        codes = jnp.asarray(chunked["codes"])
        decode = (codes, jnp.asarray(chunk_list), jnp.asarray(self.centroids), jnp.asarray(self.codebooks))
        half_sqnorms = None
        if self.metric == "l2":
            n = len(codes)
            half_sqnorms = jnp.concatenate([
                _half_sqnorms(decode, jnp.arange(i, min(i + 1024, n))) for i in range(0, n, 1024)])
        return (jnp.moveaxis(codes, 2, 0), *decode[1:], entry_bias(half_sqnorms, chunk_pos, self.metric),
                jnp.asarray(chunk_pos, jnp.int32))

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

    def _array_specs(self, n):
        specs = {"list": (np.int64, (n,)), "codes": (np.uint8, (n, self.m))}
        if self._trained:
            specs.update(centroids=(np.float32, (self.nlist, self.dim)),
                         codebooks=(np.float32, (self.m, 256, self.dim // self.m)))
        return specs

    def _restore(self, arrays):
        self._restore_lists(arrays)
        self._codes, self.codebooks = arrays["codes"], arrays.get("codebooks")
