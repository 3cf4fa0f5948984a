"""The jitted word2vec step: random draws of each chunk, the scanned loop, parallel workers.

One call trains on ``R`` rounds of ``E`` steps of ``G`` chunks of ``C`` consecutive corpus
tokens. Everything a chunk needs is generated on device from the corpus array
(:func:`sample_chunk`): frequent-word
subsampling (kept tokens are compacted, so windows span the surviving words as in gensim),
reduced ("dynamic") windows, sentence boundaries, and unigram^0.75 negatives from an alias table.
The updates themselves are :mod:`~embeddings_jax.models.word2vec.updates`.

Parallel workers: each device of the mesh trains its own chunks on its own copy of the
tables and the copies are merged every ``E`` steps by summing each worker's deltas (one
all-reduce of the dense tables per round: Hogwild with bounded staleness). One worker computes
exactly the single-device updates; ``E = 1`` is the synchronous data-parallel step.

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

from embeddings_jax.data.vocab import unpack_tokens
from embeddings_jax.models.word2vec.updates import StepConfig, apply_updates, updates_from_draws
from embeddings_jax.ops import xla_cpu
from embeddings_jax.ops.sampling import alias_sample_from_bits, randint_from_bits, uniform_from_bits
from embeddings_jax.train.sharding import DATA_AXIS


# ---------------------------------------------------------------- random draws of a chunk
def random_bits_per_chunk(cfg: StepConfig) -> int:
    """How many uint32 random bits :func:`sample_chunk` uses: subsampling (``chunk_size``),
    windows (``capacity``) and two per negative (an alias-table draw)."""
    n_neg = (cfg.capacity // cfg.negative_group) * cfg.negative_draws
    return cfg.chunk_size + cfg.capacity + 2 * n_neg


def sample_chunk(tables, ids, sents, key, cfg: StepConfig, negs=None, sentences_before=None) -> dict:
    """The random choices of one chunk, all made on device.

    ``key`` is a PRNG key, or the chunk's ``[random_bits_per_chunk(cfg)] uint32`` bits drawn from
    it beforehand (the train step draws all chunks' bits at once, outside its loop: threefry runs
    far faster on one large array than on many small ones). ``negs``, when given, are the
    negatives :func:`sample_negatives` draws from these bits. ``sentences_before`` (Doc2Vec): how many
    corpus sentences begin before the chunk (a sentence the chunk starts inside is the last of them).
    Returns ``ids``/``sents [capacity]`` (subsampled tokens compacted to the front, padding has
    sentence ``-1``), ``reach [capacity]`` (each centre's reduced window), ``negs [capacity //
    negative_group, negative_draws]``, the counts ``n_kept``/``n_dropped`` and (``cfg.doc``)
    ``docs [capacity]``, each token's document row (``tables["doc_rows"]`` of its sentence).
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
    if cfg.doc:  # a chunk's sentence ids count the starts in it: 0 is a sentence begun before it
        sentence = jnp.clip(sentences_before + out["sents"] - 1, 0, tables["doc_rows"].shape[0] - 1)
        out["docs"] = jnp.where(out["sents"] >= 0, tables["doc_rows"][sentence], -1)
    return out


def sample_negatives(tables, bits, cfg: StepConfig):
    """``[..., capacity // negative_group, negative_draws]`` unigram^0.75 negatives (alias table)
    from the tail of each chunk's ``[..., random_bits_per_chunk(cfg)]`` bits."""
    c, s = cfg.capacity, cfg.negative_group
    b_neg = bits[..., cfg.chunk_size + c :]
    b_neg = b_neg.reshape(bits.shape[:-1] + (c // s, cfg.negative_draws, 2))
    return alias_sample_from_bits(b_neg, tables["accept"], tables["alias"])


def chunk_updates(params, tables, ids, sents, key, alpha, cfg: StepConfig, negs=None,
                  sentences_before=None):
    """Sparse updates of one chunk, computed from the current ``params``.

    Args:
      params: ``{"syn0": [V, D], "syn1neg": [V, D] (negative > 0), "syn1": [V - 1, D] (hs)}``,
        and ``"dv": [N, D]`` (Doc2Vec).
      tables: device constants: ``keep [V]``, ``accept``/``alias [V]`` (negatives),
        ``codes``/``points [V, L]``, ``lengths [V]`` (hs); Doc2Vec's ``doc_rows [S]`` (each
        sentence's row of ``dv``), ``sentences_before`` and ``null_row`` (dm_concat).
      ids: ``[C] int32`` token ids; sents: ``[C] int32`` sentence ids, ``-1`` for padding.
      key: PRNG key of this chunk (or its bits); alpha: learning rate (scalar).
      sentences_before: (Doc2Vec) corpus sentences begun before the chunk (see :func:`sample_chunk`).
    Returns: ``(updates, stats)`` of :func:`~embeddings_jax.models.word2vec.updates.updates_from_draws`.
    """
    draws = sample_chunk(tables, ids, sents, key, cfg, negs, sentences_before)
    return updates_from_draws(params, tables, draws, alpha, cfg)


# ---------------------------------------------------------------- workers and their merge
def merge_workers(base: dict, params: dict, axis: str) -> dict:
    """``base + sum_w (params_w - base)``: every worker's tables after the merge hold the
    updates all workers made since ``base`` (their last merge), through one all-reduce."""
    return jax.tree.map(lambda b, p: b + jax.lax.psum(p - b, axis), base, params)


# ---------------------------------------------------------------- the jitted loop
@functools.lru_cache(maxsize=32)  # models with equal settings share one compiled step
def make_train_step(cfg: StepConfig, mesh: Mesh, tune: bool | None = None):
    """Jitted ``steps(params, tables, tokens, local_chunk, chunk_id, alpha, key)``: workers
    training their own chunks on their own copy of the tables, merged every few steps.

    Each device of ``mesh`` is a worker. ``tokens`` (``Corpus.tokens``, sharded over ``"data"``)
    holds worker ``w``'s chunks of ``C`` tokens, one after another, in block ``w``. The schedule
    ``local_chunk``/``chunk_id``/``alpha`` is ``[R, E, G]``: ``R`` rounds of ``E`` steps of ``G``
    chunks, split over the workers (``G / n`` each, as the last axis is sharded); ``local_chunk``
    is the chunk's position in its worker's block, ``chunk_id`` the global chunk number whose
    ``fold_in(key, chunk_id)`` draws its randomness, ``alpha`` its learning rate. A worker
    applies each step's updates to its own tables; after each round of ``E`` steps the workers'
    deltas are summed (:func:`merge_workers`, Hogwild with bounded staleness). ``E = 1`` is the
    synchronous step: every chunk of a step sees the same parameters, as on one device with
    ``G`` chunks per step; one worker never merges. ``tune``: the XLA:CPU tricks (default: on
    CPU meshes). Several workers take one round per call (``R = 1``). ``params`` (replicated,
    equal on all workers at each call) is donated. Returns
    ``(params, stats [4])`` summed over all chunks (see :func:`chunk_updates`).
    """
    c = cfg.chunk_size
    n_workers = mesh.size
    tune = xla_cpu.tuned(mesh) if tune is None else tune
    n_bits = random_bits_per_chunk(cfg)

    def worker(params, tables, tokens, local_chunk, chunk_id, alpha, key):
        # Chunk i's bits come from fold_in(key, i): the same stream however chunks are grouped.
        draw = lambda ci: jax.random.bits(jax.random.fold_in(key, ci), (n_bits,), jnp.uint32)
        bits = jax.vmap(jax.vmap(jax.vmap(draw)))(chunk_id)  # [R, E, G / n, n_bits], before the loop
        # XLA:CPU recomputes negatives sampled inside the loop in every consumer.
        negs = sample_negatives(tables, bits, cfg) if cfg.negative and tune else None

        def step(p, xs):
            def one(li, ci, a, b, n):
                ids, sents = unpack_tokens(jax.lax.dynamic_slice(tokens, (li * c,), (c,)))
                before = tables["sentences_before"][ci] if cfg.doc else None  # Doc2Vec's documents
                return chunk_updates(p, tables, ids, sents, b, a, cfg, n, before)

            updates, stats = jax.vmap(one)(*xs)
            updates = jax.tree.map(lambda u: u.reshape((-1,) + u.shape[2:]), updates)
            return apply_updates(p, updates), stats.sum(0)

        def round_(p, xs):
            trained, stats = jax.lax.scan(step, p, xs)
            return trained, stats.sum(0)

        if n_workers == 1:
            params, stats = jax.lax.scan(round_, params, (local_chunk, chunk_id, alpha, bits, negs))
            return params, stats.sum(0, keepdims=True)
        # One round per call, merged outside any loop: XLA:CPU runs all devices of a process on
        # one thread pool, and a collective inside a loop can starve it.
        xs = jax.tree.map(lambda x: x[0], (local_chunk, chunk_id, alpha, bits, negs))
        trained, stats = round_(params, xs)
        return merge_workers(params, trained, DATA_AXIS), stats[None]

    schedule = P(None, None, DATA_AXIS)
    sharded = jax.shard_map(
        worker,
        mesh=mesh,
        in_specs=(P(), P(), P(DATA_AXIS), schedule, schedule, schedule, P()),
        out_specs=(P(), P(DATA_AXIS)),  # stats: one row per worker
        # Workers' tables differ between merges; each round ends with a merge, so the returned
        # tables are replicated.
        check_vma=False,
    )

    def steps(params, tables, tokens, local_chunk, chunk_id, alpha, key):
        with xla_cpu.fusion_barriers(tune):
            params, stats = sharded(params, tables, tokens, local_chunk, chunk_id, alpha, key)
        return params, stats.sum(0)

    options = xla_cpu.cpu_compiler_options(mesh) if tune else None
    return jax.jit(steps, donate_argnums=0, compiler_options=options)
