"""The jitted word2vec step: random draws of each chunk, the scanned loop, data-parallel merge.

One call trains on ``S`` steps of ``G`` chunks of ``C`` consecutive corpus tokens. Everything a
chunk needs is generated on device from the corpus array (:func:`sample_chunk`): frequent-word
subsampling (kept tokens are compacted, so windows span the surviving words as in gensim),
reduced ("dynamic") windows, sentence boundaries, and unigram^0.75 negatives from an alias table.
The updates themselves are :mod:`~embeddings_jax.models.word2vec.updates`.

Data parallelism: the ``G`` chunks of a step are split over the mesh axis ``"data"``
(``jax.shard_map``); each device computes the sparse updates of its chunks from the same
replicated tables, the updates (``O(G * C * D)``, not ``O(V * D)``) are all-gathered and every
device applies all of them, so 8 devices compute exactly what one device computes.

On CPU meshes the step gets the tricks of :mod:`embeddings_jax.ops.xla_cpu` (compiler options,
fusion barriers) and draws every chunk's negatives before its loop; ``tune=False`` compiles the
plain program: the same updates, up to float rounding.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from embeddings_jax.models.word2vec.updates import StepConfig, apply_updates, updates_from_draws
from embeddings_jax.ops import xla_cpu
from embeddings_jax.ops.sampling import alias_sample_from_bits, randint_from_bits, uniform_from_bits


# ---------------------------------------------------------------- random draws of a chunk
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
        "reach": w - randint_from_bits(b_win, w) if cfg.shrink_windows else jnp.full(c, w, jnp.int32),
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
      key: PRNG key of this chunk (or its bits); alpha: learning rate (scalar).
    Returns: ``(updates, stats)`` of :func:`~embeddings_jax.models.word2vec.updates.updates_from_draws`.
    """
    return updates_from_draws(
        params, tables, sample_chunk(tables, ids, sents, key, cfg, negs), alpha, cfg
    )


# ---------------------------------------------------------------- data-parallel merge
def _all_gather_updates(updates: dict, axis: str) -> dict:
    """Every device's sparse updates, in device order, through one collective.

    The rows of all tables are bitcast to float32 and packed beside their deltas in one
    ``[M, 1 + D]`` buffer: a collective is a rendezvous of all devices, so one per step instead
    of one per array (the statistics are summed after the loop).
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


# ---------------------------------------------------------------- the jitted loop
@functools.lru_cache(maxsize=32)  # models with equal settings share one compiled step
def make_train_step(cfg: StepConfig, mesh: Mesh, tune: bool | None = None):
    """Jitted ``steps(params, tables, corpus, sentence_ids, chunk_index[S, G], alpha[S, G], key)``.

    ``corpus``/``sentence_ids`` are the padded ``[n_chunks * C]`` arrays on device; row ``i`` of
    ``chunk_index`` picks the ``G`` chunks step ``i`` trains on (``G`` divisible by the mesh size).
    The ``S`` steps run one after another inside one call (``lax.scan``): the same updates as ``S``
    calls, without ``S`` dispatches from Python. With several devices, each step costs one
    collective (see :func:`_all_gather_updates`); the statistics are reduced once per call.
    ``tune``: the XLA:CPU tricks (default: on CPU meshes). ``params`` is donated. Returns
    ``(params, stats [3])`` summed over all chunks (see :func:`chunk_updates`).
    """
    c = cfg.chunk_size
    n_dev = mesh.size
    tune = xla_cpu.tuned(mesh) if tune is None else tune

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
        return apply_updates(params, updates), stats.sum(0, keepdims=True)

    sharded = jax.shard_map(
        local,
        mesh=mesh,
        in_specs=(P(), P(), P(), P(), P("data"), P("data"), P("data"), P("data")),
        out_specs=(P(), P("data")),  # stats: one row per device, summed after the loop
        check_vma=False,  # params are replicated: every device applies the same gathered updates
    )

    def steps(params, tables, corpus, sents, chunk_index, alpha, key):
        with xla_cpu.fusion_barriers(tune):
            # Chunk i's bits come from fold_in(key, i): the same stream however chunks are grouped.
            n_bits = random_bits_per_chunk(cfg)
            draw = lambda ci: jax.random.bits(jax.random.fold_in(key, ci), (n_bits,), jnp.uint32)
            bits = jax.vmap(jax.vmap(draw))(chunk_index)  # [S, G, n_bits], before the loop
            # XLA:CPU recomputes negatives sampled inside the loop in every consumer.
            negs = sample_negatives(tables, bits, cfg) if cfg.negative and tune else None

            def one(p, xs):
                return sharded(p, tables, corpus, sents, *xs)

            params, stats = jax.lax.scan(one, params, (chunk_index, alpha, bits, negs))
        return params, stats.sum((0, 1))

    options = xla_cpu.cpu_compiler_options(mesh) if tune else None
    return jax.jit(steps, donate_argnums=0, compiler_options=options)
