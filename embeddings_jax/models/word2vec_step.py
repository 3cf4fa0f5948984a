"""The jitted word2vec update: skip-gram / CBOW x negative sampling / hierarchical softmax.

One call trains on ``G`` chunks of ``C`` consecutive corpus tokens. Everything a chunk needs is
generated on device from the corpus array: frequent-word subsampling (kept tokens are compacted,
so windows span the surviving words as in gensim), reduced ("dynamic") windows, sentence
boundaries, and unigram^0.75 negatives from an alias table.

Work per chunk, with input rows ``x = syn0[ids]`` of the compacted tokens:

* positives are read off shifted copies of ``x`` (``x[j + o]`` for each window offset ``o``), so
  no ``[C, 2W, D]`` tensor of context rows is gathered;
* skip-gram + negatives: all pairs that share an input word share its ``K`` negatives, and groups
  of ``negative_group`` consecutive inputs share one draw, so the negative term is a batched
  matrix product ``[S, D] @ [D, K]`` weighted by each input's number of pairs (the batch-shared
  negatives of Ji et al., 2016, organised by input instead of by centre; same expected update);
* CBOW: the mean (or sum) of the window is one input row against the centre and ``K`` negatives
  shared the same way (a negative equal to the centre is skipped, as in gensim);
* hierarchical softmax: the inner nodes on the centre's Huffman path are its outputs, a batched
  ``[2W, D] @ [D, L]`` product per centre for skip-gram.
* as in gensim, a pair whose score lies beyond ``+-MAX_EXP`` gets no update (see :func:`_error`).

Updates are sparse: every step scatter-adds into the ``C`` input rows and the ``C + C K / S``
(or ``C * L``) output rows it read, never forming a dense ``V x D`` gradient, and there is no
optimizer state (plain SGD with word2vec's linearly decaying learning rate). All updates of a
chunk are computed from the same parameters (a mini-batch, unlike gensim's sequential
Hogwild SGD); the model keeps chunks small enough that a word rarely repeats within one.

Data parallelism: the ``G`` chunks are split over the mesh axis ``"data"`` (``jax.shard_map``);
each device computes the sparse updates of its chunks from the same replicated tables, the
updates (``O(G * C * D)``, not ``O(V * D)``) are all-gathered and every device applies all of them,
so 8 devices compute exactly what one device computes for the same ``G`` chunks.

On CPU the step is compiled with :func:`~embeddings_jax.ops.xla_cpu.cpu_compiler_options`
(YNNPACK for matrix products only); every random bit of a call, and the negatives drawn from
them, are made before its loop, and barriers keep row-level values out of the ``[C, D]``
fusions: XLA:CPU would otherwise recompute them for every element (see ``SPEED_NOTE`` in
``experiments/word2vec.py`` for the measured effect of each).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from embeddings_jax.ops.sampling import alias_sample_from_bits, randint_from_bits, uniform_from_bits
from embeddings_jax.ops.xla_cpu import cpu_compiler_options


@dataclasses.dataclass(frozen=True)
class StepConfig:
    """Static (hashable) settings of the update."""

    sg: bool
    hs: bool
    negative: int
    window: int
    cbow_mean: bool
    chunk_size: int
    negative_group: int = 1  # consecutive inputs sharing one draw of negatives
    capacity: int = 0  # tokens kept per chunk after subsampling (0: chunk_size)
    max_repeats: float = 16.0  # cap on summed updates of one Huffman node per step (hs)

    @property
    def negative_draws(self) -> int:
        """Negatives drawn per group. An input word of skip-gram stands for up to ``2W`` pairs
        that gensim gives ``K`` fresh negatives each; drawing ``K * W`` (weighted accordingly)
        keeps the variance of its update near gensim's instead of reusing ``K`` draws ``2W``
        times. CBOW has one example per centre: ``K``."""
        if not self.negative:
            return 0
        return self.negative * self.window if self.sg else self.negative

    def __post_init__(self):
        if self.capacity <= 0 or self.capacity > self.chunk_size:
            object.__setattr__(self, "capacity", self.chunk_size)


def _pad(x: jax.Array, w: int, fill=0) -> jax.Array:
    return jnp.pad(x, [(w, w)] + [(0, 0)] * (x.ndim - 1), constant_values=fill)


def _shift(xp: jax.Array, o: int, w: int, c: int) -> jax.Array:
    """``x[j + o]`` for ``j < c`` from ``xp = _pad(x, w)`` (a slice, fused into its consumer)."""
    return xp[w + o : w + o + c]


def _unshift_sum(parts: list[jax.Array], offsets, w: int, c: int) -> jax.Array:
    """Adjoint of the shifts: ``out[j] = sum_o parts[o][j - o]``, ``[C, ...]`` each -> ``[C, ...]``."""
    out = jnp.zeros((c + 2 * w,) + parts[0].shape[1:], parts[0].dtype)
    for part, o in zip(parts, offsets):
        out = out.at[w + o : w + o + c].add(part)
    return out[w : w + c]


def _unshift_weighted(weights: list[jax.Array], rows: jax.Array, offsets, w: int, c: int):
    """``out[j] = sum_o weights[o][j - o] * rows[j - o]``: :func:`_unshift_sum` of the parts
    ``weights[o][:, None] * rows`` (``[C]`` each, ``rows [C, D]``) in one fused pass over ``rows``.

    The padded ``rows`` go behind an ``optimization_barrier``, asking XLA to materialise them
    once rather than fuse their producer into the sum, where it would run once per offset."""
    rp = jax.lax.optimization_barrier(_pad(rows, w))
    return sum(
        _shift(_pad(wt, w), -o, w, c)[:, None] * _shift(rp, -o, w, c)
        for wt, o in zip(weights, offsets)
    )


MAX_EXP = 6.0  # gensim (and the C tool's table) ignore pairs whose score lies beyond +-MAX_EXP


def _error(label, logits):
    """``label - sigmoid(logits)``, zero where ``|logits| >= MAX_EXP``: gensim skips those pairs
    (their sigmoid is off its table), which also bounds how hard a saturated pair can pull."""
    return jnp.where(jnp.abs(logits) < MAX_EXP, label - jax.nn.sigmoid(logits), 0.0)


def _group_products(o, x, error):
    """Scores of ``K`` outputs against ``S`` inputs per group, and both gradients.

    Args:
      o: ``[G, K, D]`` output rows; x: ``[G, S, D]`` input rows;
      error: ``logits [G, K, S] -> [G, K, S]``, the learning rate times the error of each pair.
    Returns: ``(d_x [G, S, D], d_o [G, K, D])``.

    The scores are computed transposed (``[G, K, S]``) and the error is transposed once, in
    memory, for ``d_x``: then every product contracts the left operand's last dimension with
    the right operand's middle one (or both last ones for the scores), the forms XLA:CPU runs
    fastest; the other orientation made ``d_o`` 2-3x slower on these small shapes.
    """
    g = error(jnp.einsum("gkd,gsd->gks", o, x))
    d_o = jnp.einsum("gks,gsd->gkd", g, x)
    # The barrier keeps the transposed copy: without it XLA folds the transpose into the product.
    d_x = jnp.einsum("gsk,gkd->gsd", jax.lax.optimization_barrier(jnp.swapaxes(g, 1, 2)), o)
    return d_x, d_o


def _shared_negatives(table, rows, x, alpha, weight, mask=None):
    """Negatives shared by groups of consecutive inputs, as batched matrix products.

    Args:
      table: ``[V, D]`` output vectors; rows: ``[G, K]`` negatives of each group.
      x: ``[G, S, D]`` input rows (``S`` inputs per group); weight: ``[G, S]`` how many
        (input, positive) pairs each input row stands for; mask: optional ``[G, K, S]``.
    Returns:
      ``(d_x [G, S, D], (rows [G * K], d_out [G * K, D]))``.
    """

    def error(logits):
        g = _error(0.0, logits) * (alpha * weight)[:, None, :]
        return g if mask is None else g * mask

    d_x, d_o = _group_products(table[rows], x, error)
    return d_x, (rows.reshape(-1), d_o.reshape(-1, d_o.shape[-1]))


def random_bits_per_chunk(cfg: StepConfig) -> int:
    """How many uint32 random bits :func:`sample_chunk` uses: subsampling (``chunk_size``),
    windows (``capacity``) and two per negative (an alias-table draw)."""
    n_neg = (cfg.capacity // cfg.negative_group) * cfg.negative_draws
    return cfg.chunk_size + cfg.capacity + 2 * n_neg


def sample_chunk(tables, ids, sents, key, cfg: StepConfig, negs=None) -> dict:
    """The random choices of one chunk, all made on device.

    ``key`` is a PRNG key, or the chunk's ``[random_bits_per_chunk(cfg)] uint32`` bits drawn from
    it beforehand (the train step draws all chunks' bits at once, outside its loop: threefry runs
    far faster on one large array than on many small ones). ``negs``, when given, are the
    negatives :func:`sample_negatives` draws from these bits.
    Returns ``ids``/``sents [capacity]`` (subsampled tokens compacted to the front, padding has
    sentence ``-1``), ``reach [capacity]`` (each centre's reduced window), ``negs [capacity //
    negative_group, negative_draws]`` and the counts ``n_kept``/``n_dropped``.
    """
    w = cfg.window
    n_in, c = cfg.chunk_size, cfg.capacity
    if ids.shape != (n_in,):
        raise ValueError(f"a chunk has chunk_size={n_in} token ids, got shape {ids.shape}")
    # One draw of random bits serves every use (a single PRNG call keeps compilation fast).
    n_bits = random_bits_per_chunk(cfg)
    bits = key if key.dtype == jnp.uint32 else jax.random.bits(key, (n_bits,), jnp.uint32)
    if bits.shape != (n_bits,):
        raise ValueError(f"sample_chunk needs {n_bits} random bits, got shape {bits.shape}")
    b_keep, b_win = bits[:n_in], bits[n_in : n_in + c]
    # Subsample, then compact surviving tokens to the front (order kept), so windows span the
    # surviving words as in gensim. The buffer holds ``capacity`` tokens (the expected survivors
    # plus a wide margin); any overflow is counted and dropped.
    keep = (sents >= 0) & (uniform_from_bits(b_keep) < tables["keep"][ids])
    dest = jnp.where(keep, jnp.cumsum(keep) - 1, c)
    n_kept = keep.sum()
    out = {
        "ids": jnp.zeros(c, jnp.int32).at[dest].set(ids, mode="drop"),
        "sents": jnp.full(c, -1, jnp.int32).at[dest].set(sents, mode="drop"),
        # Dynamic windows: centre j sees contexts j + o, 0 < |o| <= W - b_j, b_j ~ U{0..W-1}.
        "reach": w - randint_from_bits(b_win, w),
        "n_kept": n_kept,
        "n_dropped": jnp.maximum(n_kept - c, 0),
    }
    if cfg.negative:
        out["negs"] = sample_negatives(tables, bits, cfg) if negs is None else negs
    return out


def sample_negatives(tables, bits, cfg: StepConfig):
    """``[..., capacity // negative_group, negative_draws]`` unigram^0.75 negatives (alias table)
    from the tail of each chunk's ``[..., random_bits_per_chunk(cfg)]`` bits."""
    c, s = cfg.capacity, cfg.negative_group
    b_neg = bits[..., cfg.chunk_size + c :]
    b_neg = b_neg.reshape(bits.shape[:-1] + (c // s, cfg.negative_draws, 2))
    return alias_sample_from_bits(b_neg, tables["accept"], tables["alias"])


def chunk_updates(params, tables, ids, sents, key, alpha, cfg: StepConfig, negs=None):
    """Sparse updates of one chunk, computed from the current ``params``.

    Args:
      params: ``{"syn0": [V, D], "syn1neg": [V, D] (negative > 0), "syn1": [V - 1, D] (hs)}``.
      tables: device constants: ``keep [V]``, ``accept``/``alias [V]`` (negatives),
        ``codes``/``points [V, L]``, ``lengths [V]`` (hs).
      ids: ``[C] int32`` token ids; sents: ``[C] int32`` sentence ids, ``-1`` for padding.
      key: PRNG key of this chunk; alpha: learning rate (scalar).
    Returns:
      ``(updates, stats)``: ``updates[name] = (rows [M] int32, deltas [M, D])`` to scatter-add,
      ``stats = [kept tokens, trained centres (CBOW) or pairs (SG), tokens lost to overflow]``.
    """
    return updates_from_draws(
        params, tables, sample_chunk(tables, ids, sents, key, cfg, negs), alpha, cfg
    )


def updates_from_draws(params, tables, draws: dict, alpha, cfg: StepConfig):
    """The deterministic part of :func:`chunk_updates`, given :func:`sample_chunk`'s draws."""
    w, s, c = cfg.window, cfg.negative_group, cfg.capacity
    syn0 = params["syn0"]
    dt = syn0.dtype
    ids, sents, reach = draws["ids"], draws["sents"], draws["reach"]
    valid = sents >= 0
    # mask[o][j]: is (centre j, context j + o) a training pair (same sentence, within reach)?
    offsets = tuple(range(-w, 0)) + tuple(range(1, w + 1))
    sp = _pad(sents, w, -1)
    masks = [
        (valid & (_shift(sp, o, w, c) == sents) & (abs(o) <= reach)).astype(dt) for o in offsets
    ]
    count = sum(masks)  # [C] contexts per centre
    # Barriers around the row masks and the gathered input rows: without them XLA:CPU fuses
    # their producers into each [C, D] consumer and recomputes them per element (SG-NS step
    # 160 -> 125 us on PTB+Brown).
    masks, count = jax.lax.optimization_barrier((masks, count))
    x = jax.lax.optimization_barrier(syn0[ids])  # [C, D] input rows of the compacted chunk
    xp = _pad(x, w)
    updates: dict = {}
    if cfg.sg:
        d_parts = []  # d_parts[o][j]: hierarchical softmax's error for input j + o
        pos_g = []  # pos_g[o][j]: negative sampling's error of the pair (j + o, j), times alpha
        d_x = jnp.zeros_like(x)
    else:
        h = sum(m[:, None] * _shift(xp, o, w, c) for m, o in zip(masks, offsets))
        if cfg.cbow_mean:
            h = h / jnp.maximum(count, 1.0)[:, None]
        has_ctx = (count > 0).astype(dt)
        d_h = jnp.zeros_like(x)

    if cfg.negative:
        y = params["syn1neg"][ids]  # [C, D] positive outputs (the centre words)
        negs = draws["negs"]
        if cfg.sg:
            # Positive pairs: input = context j + o, output = centre j (gensim's orientation).
            d_y = jnp.zeros_like(y)
            for i, (m, o) in enumerate(zip(masks, offsets)):
                xo = _shift(xp, o, w, c)
                g = _error(1.0, jnp.sum(xo * y, -1)) * alpha * m
                pos_g.append(g)
                d_y = d_y + g[:, None] * xo
            # Negatives: every pair with input j shares j's group negatives, so the negative
            # term of input j is counted once, weighted by its number of pairs.
            n_pairs = _unshift_sum(masks, offsets, w, c)  # [C]
            d_xn, upd = _shared_negatives(
                params["syn1neg"],
                negs,
                x.reshape(c // s, s, -1),
                alpha,
                (n_pairs * (cfg.negative / cfg.negative_draws)).reshape(c // s, s),
            )
            d_x = d_x + d_xn.reshape(c, -1)
        else:
            g = _error(1.0, jnp.sum(h * y, -1)) * alpha * has_ctx
            d_h = d_h + g[:, None] * y
            d_y = g[:, None] * h
            # As gensim, a negative equal to the centre word is skipped.
            mask = (negs[:, :, None] != ids.reshape(c // s, 1, s)).astype(dt)  # [G, K, S]
            d_hn, upd = _shared_negatives(
                params["syn1neg"], negs, h.reshape(c // s, s, -1), alpha,
                has_ctx.reshape(c // s, s), mask,
            )  # fmt: skip
            d_h = d_h + d_hn.reshape(c, -1)
        updates["syn1neg"] = (jnp.concatenate([ids, upd[0]]), jnp.concatenate([d_y, upd[1]]))

    if cfg.hs:
        # Hierarchical softmax: the inner nodes on the centre's Huffman path are its outputs.
        points = tables["points"][ids]  # [C, L]
        labels = 1.0 - tables["codes"][ids].astype(dt)
        on_path = (jnp.arange(points.shape[1])[None, :] < tables["lengths"][ids][:, None]).astype(
            dt
        )
        o = params["syn1"][points]  # [C, L, D]
        # Every path starts at the root, so the top inner nodes receive one update per example
        # of the chunk. Sequential SGD lets each react to the last; summed at once they would
        # overshoot, so a node's summed update is scaled to at most ``max_repeats`` updates'
        # worth (O(V) counts per step, no V x D state).
        per_centre = count if cfg.sg else has_ctx
        n_node = (
            jnp.zeros(params["syn1"].shape[0], dt).at[points].add(on_path * per_centre[:, None])
        )
        node_scale = jnp.minimum(1.0, cfg.max_repeats / jnp.maximum(n_node[points], 1.0))  # [C, L]
        if cfg.sg:  # per centre: its L path nodes against its 2W contexts
            xctx = jnp.stack([_shift(xp, off, w, c) for off in offsets], axis=1)  # [C, 2W, D]
            weight = alpha * jnp.stack(masks, axis=1)[:, None, :] * on_path[:, :, None]
            d_ctx, d_o = _group_products(
                o, xctx, lambda z: _error(labels[:, :, None], z) * weight
            )  # [C, 2W, D], [C, L, D]
            d_parts = [d_ctx[:, i] for i in range(len(offsets))]
            d_o = d_o * node_scale[:, :, None]
        else:
            g = _error(labels, jnp.einsum("cd,cld->cl", h, o)) * alpha
            g = g * on_path * has_ctx[:, None]
            d_h = d_h + jnp.einsum("cl,cld->cd", g, o)
            d_o = (g * node_scale)[:, :, None] * h[:, None, :]
        updates["syn1"] = (points.reshape(-1), d_o.reshape(-1, d_o.shape[-1]))

    if cfg.sg:
        if pos_g:
            d_x = d_x + _unshift_weighted(pos_g, y, offsets, w, c)
        if d_parts:
            d_x = d_x + _unshift_sum(d_parts, offsets, w, c)
        n_trained = sum(m.sum() for m in masks)
    else:
        if not cfg.cbow_mean:  # gensim divides the error over summed windows
            d_h = d_h / jnp.maximum(count, 1.0)[:, None]
        d_x = _unshift_weighted(masks, d_h, offsets, w, c)
        n_trained = has_ctx.sum()
    updates["syn0"] = (ids, d_x)
    stats = jnp.stack([draws["n_kept"], n_trained, draws["n_dropped"]]).astype(dt)
    return updates, stats


def _apply(params, updates):
    return {
        name: table.at[updates[name][0]].add(updates[name][1], mode="drop")
        if name in updates
        else table
        for name, table in params.items()
    }


def _all_gather_updates(updates: dict, axis: str) -> dict:
    """Every device's sparse updates, in device order, through one collective.

    The rows of all tables are bitcast to float32 and packed beside their deltas in one
    ``[M, 1 + D]`` buffer: a collective is a rendezvous of all devices, so one per step instead
    of one per array (the statistics are summed after the loop). On 2 CPU devices this still
    leaves data parallelism slower than one device: every device applies all updates.
    """
    names = sorted(updates)
    sizes = [updates[k][0].shape[0] for k in names]
    packed = jnp.concatenate(
        [
            jnp.concatenate(
                [jax.lax.bitcast_convert_type(updates[k][0], jnp.float32)[:, None], updates[k][1]],
                axis=1,
            )
            for k in names
        ]
    )
    packed = jax.lax.all_gather(packed, axis)  # [devices, M, 1 + D]
    out, start = {}, 0
    for k, m in zip(names, sizes):
        part = packed[:, start : start + m].reshape(-1, packed.shape[-1])
        out[k] = (jax.lax.bitcast_convert_type(part[:, 0], jnp.int32), part[:, 1:])
        start += m
    return out


@functools.lru_cache(maxsize=32)  # models with equal settings share one compiled step
def make_train_step(cfg: StepConfig, mesh: Mesh):
    """Jitted ``steps(params, tables, corpus, sentence_ids, chunk_index[S, G], alpha[S, G], key)``.

    ``corpus``/``sentence_ids`` are the padded ``[n_chunks * C]`` arrays on device; row ``i`` of
    ``chunk_index`` picks the ``G`` chunks step ``i`` trains on (``G`` divisible by the mesh size).
    The ``S`` steps run one after another inside one call (``lax.scan``): the same updates as ``S``
    calls, without ``S`` dispatches from Python (+9% SG-NS / +16% CBOW-NS words/s on PTB+Brown, CPU).
    With several devices, each step costs one collective (see :func:`_all_gather_updates`);
    the statistics are reduced once per call. ``params`` is donated. Returns ``(params, stats
    [3])`` summed over all chunks (see :func:`chunk_updates`).
    """
    c = cfg.chunk_size
    n_dev = mesh.size

    def local(params, tables, corpus, sents, chunk_index, alpha, bits, negs):
        def one(ci, a, b, n):
            start = ci * c
            ids = jax.lax.dynamic_slice(corpus, (start,), (c,))
            sid = jax.lax.dynamic_slice(sents, (start,), (c,))
            return chunk_updates(params, tables, ids, sid, b, a, cfg, n)

        updates, stats = jax.vmap(one)(chunk_index, alpha, bits, negs)
        updates = jax.tree.map(lambda u: u.reshape((-1,) + u.shape[2:]), updates)
        if n_dev > 1:
            updates = _all_gather_updates(updates, "data")
        return _apply(params, updates), stats.sum(0, keepdims=True)

    sharded = jax.shard_map(
        local,
        mesh=mesh,
        in_specs=(P(), P(), P(), P(), P("data"), P("data"), P("data"), P("data")),
        out_specs=(P(), P("data")),  # stats: one row per device, summed after the loop
        check_vma=False,  # params are replicated: every device applies the same gathered updates
    )

    def steps(params, tables, corpus, sents, chunk_index, alpha, key):
        # Chunk i's bits come from fold_in(key, i): the same stream however chunks are grouped.
        n_bits = random_bits_per_chunk(cfg)
        draw = lambda ci: jax.random.bits(jax.random.fold_in(key, ci), (n_bits,), jnp.uint32)
        bits = jax.vmap(jax.vmap(draw))(chunk_index)  # [S, G, n_bits], before the loop
        # Negatives too: sampled inside the loop, XLA:CPU recomputes them in every consumer.
        negs = sample_negatives(tables, bits, cfg) if cfg.negative else None

        def one(p, xs):
            return sharded(p, tables, corpus, sents, *xs)

        params, stats = jax.lax.scan(one, params, (chunk_index, alpha, bits, negs))
        return params, stats.sum((0, 1))

    return jax.jit(steps, donate_argnums=0, compiler_options=cpu_compiler_options(mesh))


def make_mesh(devices=None) -> Mesh:
    devices = jax.devices() if devices is None else list(devices)
    return Mesh(np.asarray(devices), ("data",))


def replicate(tree, mesh: Mesh):
    return jax.device_put(tree, NamedSharding(mesh, P()))


def init_params(seed: int, v: int, d: int, negative: bool, hs: bool, mesh: Mesh) -> dict:
    """Tables replicated on ``mesh``: input vectors ~ U[-1/D, 1/D], output vectors zero.

    This is gensim 4's initialisation (twice the range of the original C tool's U[-0.5/D, 0.5/D]).
    The scale matters: output vectors start at zero, so their first updates are proportional to
    the input vectors, and on the synthetic world the C tool's range costs CBOW about 15 analogy
    points after 15 epochs. Drawn in place on the host, so a 1M x D table costs one copy, not the
    several intermediates of an on-device PRNG."""
    syn0 = np.random.default_rng(seed).random((v, d), dtype=np.float32)
    syn0 *= 2.0
    syn0 -= 1.0
    syn0 /= d
    sharding = NamedSharding(mesh, P())
    params = {"syn0": jax.block_until_ready(jax.device_put(syn0, sharding))}
    del syn0
    zeros = jax.jit(
        lambda n: jnp.zeros((n, d), jnp.float32), static_argnums=0, out_shardings=sharding
    )
    if negative:
        params["syn1neg"] = zeros(v)
    if hs:
        params["syn1"] = zeros(max(v - 1, 1))
    return params
