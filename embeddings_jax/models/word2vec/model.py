"""word2vec (Mikolov et al., 2013) with gensim's interface and defaults, trained by a jitted step.

    >>> model = Word2Vec(sentences, vector_size=100, window=5, min_count=5, sg=1)
    >>> model.wv.most_similar("king")
    >>> model.save("w2v")                      # Orbax checkpoint: training can continue
    >>> model = Word2Vec.load("w2v"); model.train(more_sentences, epochs=1)

The host streams the corpus twice (vocabulary, then one int32 per in-vocabulary token); each of
``workers`` devices then trains its own part of it on its own copy of the tables, the copies
merged every ``sync_every`` steps (see :mod:`embeddings_jax.models.word2vec.step`), with the
learning rate decaying linearly from ``alpha`` to ``min_alpha`` over all words of all epochs, as
in gensim. On CPU a worker is a CPU device; JAX starts with one unless
:func:`~embeddings_jax.train.sharding.use_cpu_cores` runs first.
"""

from __future__ import annotations

import json
import os
import pathlib
import time
import warnings
from collections.abc import Iterable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from embeddings_jax.data.text import LineSentence
from embeddings_jax.data.vocab import Corpus, Vocab, build_vocab, keeps_word, vocab_from_counts
from embeddings_jax.index.base import check_positive_int
from embeddings_jax.models.word2vec.step import make_train_step
from embeddings_jax.models.word2vec.updates import StepConfig
from embeddings_jax.ops.huffman import build_huffman
from embeddings_jax.ops.sampling import build_alias_table, keep_probabilities, unigram_weights
from embeddings_jax.train.atomic import atomic_directory, resolve_directory
from embeddings_jax.train.environment import release_free_memory
from embeddings_jax.train.logging import progress
from embeddings_jax.train.sharding import (
    DATA_AXIS,
    host_value,
    make_mesh,
    replicated,
    worker_devices,
)
from embeddings_jax.vectors import KeyedVectors

# Training steps per jitted call (a lax.scan): fewer Python dispatches, same updates.
STEPS_PER_CALL = 32
# Tokens all workers together train between merges when ``sync_every`` is not given: the deltas
# of n workers are summed, so staleness is bounded over all of them.
TOKENS_PER_MERGE = 1 << 17

# Chunks copied at a time into a worker's block (the temporary of a fancy-indexed copy).
_COPY_CHUNKS = 1024

# The four classic variants by name: (sg, hs, negative) as Word2Vec takes them.
VARIANTS = {"sgns": (1, 0, 5), "cbowns": (0, 0, 5), "sghs": (1, 1, 0), "cbowhs": (0, 1, 0)}

_HPARAMS = (
    "vector_size", "window", "min_count", "sample", "sg", "hs", "negative", "ns_exponent",
    "cbow_mean", "alpha", "min_alpha", "epochs", "seed", "max_vocab_size", "max_final_vocab",
    "chunk_size", "negative_group", "chunks_per_step", "sorted_vocab", "null_word", "shrink_windows",
    "sync_every",
)  # fmt: skip


class Word2Vec:
    """Skip-gram / CBOW with negative sampling and/or hierarchical softmax.

    Args (gensim's names, order and defaults):
      sentences: re-iterable token lists; with it (or ``corpus_file``) the vocabulary is built and
        the model trained at once. corpus_file: a text file, one sentence a line (``LineSentence``).
      vector_size: dimension ``D``. window: maximum context distance ``W``.
      min_count, max_vocab_size, max_final_vocab, trim_rule, sorted_vocab, null_word: vocabulary
        (see ``data.vocab.build_vocab``). sample: subsampling threshold (0 disables).
      sg: 1 skip-gram, 0 CBOW. hs: 1 for hierarchical softmax. negative: negatives per positive
        (0 disables). ns_exponent: exponent of the negative-sampling unigram distribution.
      cbow_mean: 1 mean, 0 sum. alpha, min_alpha: learning rate, decayed linearly over all epochs.
      epochs, seed. shrink_windows: gensim's dynamic windows (False: every centre sees all ``W``).
      callbacks: gensim-style callbacks (``on_train_begin/end``, ``on_epoch_begin/end``) of the
        training started here.
      workers: parallel workers: each trains its own part of the corpus on its own device and copy
        of the tables (at most one per device; on CPU see ``use_cpu_cores``). One worker already
        uses every core through XLA's threads, and on a 2-core CPU two in-process workers train
        slower than one (``benchmarks/word2vec_vs_gensim.py --scaling``), so the default is 1,
        not gensim's 3 threads.
      batch_words, hashfxn, comment: accepted as in gensim; the batching comes from
        ``chunk_size``, the initial vectors from ``seed``; ``comment`` is kept.
      compute_loss: sum gensim's training loss (:meth:`get_latest_training_loss`).
    Args (this engine's):
      chunk_size: corpus tokens per chunk; one chunk's updates are computed from the same
        parameters and summed, so larger is faster but further from gensim's sequential SGD.
        ``None`` chooses one (see ``_auto_chunk``).
      negative_group: inputs (spread over the chunk) that share one draw of negatives.
      chunks_per_step: chunks per step over all workers (default: one per worker).
      sync_every: steps each worker trains on its own copy between merges (``None``: about
        ``TOKENS_PER_MERGE`` tokens of all workers together; 1: the synchronous step).
      devices: the workers' devices, overriding ``workers``. progress: show a progress bar.
    """

    def __init__(
        self,
        sentences: Iterable[list[str]] | None = None,
        corpus_file: str | os.PathLike | None = None,
        vector_size: int = 100,
        alpha: float = 0.025,
        window: int = 5,
        min_count: int = 5,
        max_vocab_size: int | None = None,
        sample: float = 1e-3,
        seed: int = 1,
        workers: int = 1,
        min_alpha: float = 0.0001,
        sg: int = 0,
        hs: int = 0,
        negative: int = 5,
        ns_exponent: float = 0.75,
        cbow_mean: int = 1,
        hashfxn=hash,
        epochs: int = 5,
        null_word: int = 0,
        trim_rule=None,
        sorted_vocab: int = 1,
        batch_words: int = 10000,
        compute_loss: bool = False,
        callbacks=(),
        comment: str | None = None,
        max_final_vocab: int | None = None,
        shrink_windows: bool = True,
        *,
        chunk_size: int | None = None,
        negative_group: int = 8,
        chunks_per_step: int | None = None,
        sync_every: int | None = None,
        devices=None,
        progress: bool = False,
    ):
        _check_hyperparameters(vector_size=vector_size, window=window, min_count=min_count, sample=sample,
                               negative=negative, ns_exponent=ns_exponent, alpha=alpha,
                               min_alpha=min_alpha, epochs=epochs, workers=workers, batch_words=batch_words)
        if vector_size < 1 or window < 1 or epochs < 1 or workers < 1 or batch_words < 1:
            raise ValueError(
                f"vector_size, window, epochs, workers and batch_words must be >= 1 (got {vector_size}, "
                f"{window}, {epochs}, {workers}, {batch_words})"
            )
        if negative < 0 or (not hs and negative == 0):
            raise ValueError(
                "use negative sampling (negative > 0), hierarchical softmax (hs=1) or both"
            )
        if not 0 < alpha or min_alpha < 0:
            raise ValueError(f"alpha must be > 0 and min_alpha >= 0 (got {alpha}, {min_alpha})")
        if chunk_size is not None and (chunk_size < 2 * window + 1 or chunk_size % negative_group):
            raise ValueError(
                f"chunk_size ({chunk_size}) must exceed 2 * window + 1 and be a multiple of "
                f"negative_group ({negative_group})"
            )
        if sync_every is not None:
            check_positive_int(sync_every, "sync_every")
        self.vector_size, self.window, self.min_count, self.sample = vector_size, window, min_count, sample
        self.sg, self.hs, self.negative, self.ns_exponent = int(sg), int(hs), negative, ns_exponent
        self.cbow_mean, self.alpha, self.min_alpha = int(cbow_mean), alpha, min_alpha
        self.epochs, self.seed = epochs, seed
        self.max_vocab_size, self.max_final_vocab = max_vocab_size, max_final_vocab
        self.trim_rule, self.sorted_vocab, self.null_word = trim_rule, int(sorted_vocab), int(null_word)
        self.shrink_windows = bool(shrink_windows)
        self.workers, self.batch_words, self.hashfxn, self.comment = workers, batch_words, hashfxn, comment
        self.compute_loss, self.callbacks = bool(compute_loss), tuple(callbacks)
        self.running_training_loss = 0.0
        self._chunk_size_arg, self.chunk_size, self.negative_group = chunk_size, chunk_size, negative_group
        self.mesh = make_mesh(worker_devices(workers) if devices is None else devices)
        n_dev = self.mesh.size
        self.chunks_per_step = chunks_per_step or n_dev
        if self.chunks_per_step % n_dev:
            raise ValueError(
                f"chunks_per_step={self.chunks_per_step} must divide over {n_dev} workers"
            )
        self._sync_every_arg = self.sync_every = sync_every
        self.progress = progress
        self.vocab: Vocab | None = None
        self.params: dict | None = None
        self.epochs_trained = 0
        self.corpus_count = self.corpus_total_words = 0
        self.train_seconds = 0.0
        self.words_per_second = 0.0
        if sentences is not None or corpus_file is not None:
            corpus = _corpus(sentences, corpus_file)
            self.build_vocab(corpus, trim_rule=trim_rule)
            self.train(corpus, total_examples=self.corpus_count, epochs=epochs,
                       compute_loss=self.compute_loss, callbacks=self.callbacks)

    # ---------------------------------------------------------------- vocabulary and tables
    def build_vocab(self, corpus_iterable: Iterable[list[str]] | None = None,
                    corpus_file: str | os.PathLike | None = None, update: bool = False,
                    progress_per: int = 10000, keep_raw_vocab: bool = False, trim_rule=None) -> Word2Vec:
        """Counts words, prunes them, and (re)builds the sampling tables (gensim's signature).

        ``update=True`` grows a trained model's vocabulary: known words add their new counts, new
        words that pass ``min_count`` are appended with fresh input vectors, and every trained row is
        kept. ``progress_per`` and ``keep_raw_vocab`` are gensim's logging and memory knobs.
        """
        corpus = _corpus(corpus_iterable, corpus_file)
        if self.progress:  # counting reads the corpus once: a one-pass bar over it is enough
            corpus = progress(corpus, total=len(corpus) if hasattr(corpus, "__len__") else None,
                              desc="vocabulary")
        rule = trim_rule if trim_rule is not None else self.trim_rule
        if update:
            self._check_can_grow()
            return self._grow_vocab(build_vocab(corpus, 1, self.max_vocab_size), rule)
        return self._set_vocab(build_vocab(corpus, self.min_count, self.max_vocab_size, self.max_final_vocab,
                                           trim_rule=rule, sorted_vocab=bool(self.sorted_vocab),
                                           null_word=bool(self.null_word)))

    def build_vocab_from_freq(self, word_freq: dict[str, int], keep_raw_vocab: bool = False,
                              corpus_count: int | None = None, trim_rule=None,
                              update: bool = False) -> Word2Vec:
        """The vocabulary from ready ``{word: count}``, without reading a corpus (gensim's signature).

        The same rules as :meth:`build_vocab` (``min_count``, ``max_final_vocab``, ``trim_rule``, ties
        in the dict's order; ``update=True`` grows the model, appending new words in the dict's
        order as gensim does). ``corpus_count`` sets the sentence count (0 when not given, as in
        gensim); ``corpus_total_words`` becomes the sum of the counts (gensim leaves it unset).
        ``keep_raw_vocab`` is gensim's memory knob.
        """
        counts = _check_word_freq(word_freq)
        raw, n = sum(counts.values()), int(corpus_count or 0)
        rule = trim_rule if trim_rule is not None else self.trim_rule
        if update:
            self._check_can_grow()
            # gensim appends new words in the dict's order
            return self._grow_vocab(vocab_from_counts(counts, raw, n, 1, sorted_vocab=False), rule)
        return self._set_vocab(vocab_from_counts(counts, raw, n, self.min_count, self.max_final_vocab,
                                                 trim_rule=rule, sorted_vocab=bool(self.sorted_vocab),
                                                 null_word=bool(self.null_word)))

    def _set_vocab(self, vocab: Vocab) -> Word2Vec:
        self.vocab = vocab
        self.corpus_count, self.corpus_total_words = vocab.num_sentences, vocab.raw_words
        self._make_tables()
        self.reset_params()
        return self

    _n_buckets = 0  # input rows after the word rows in the host tables (FastText's n-gram buckets)
    _min_auto_chunk = 256  # smallest chunk _auto_chunk picks: below it per-step costs dominate

    def _host_params(self) -> dict:
        """The tables as numpy, in the layout files hold (:meth:`save`, growth)."""
        return jax.tree.map(host_value, self.params)

    def _device_params(self, host: dict) -> dict:
        """The training tables on the mesh from :meth:`_host_params`' layout."""
        return _replicate(host, self.mesh)

    def _restore_params(self, ckptr, path: pathlib.Path) -> dict:
        """Restores :meth:`save`'s tables onto the mesh (the shapes of ``self.params``)."""
        target = jax.tree.map(
            lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), self.params
        )
        return ckptr.restore(path, target)

    def _check_can_grow(self) -> None:
        if self.vocab is None or self.params is None:
            raise ValueError("build_vocab(update=True) grows an existing vocabulary: call build_vocab() "
                             "(and train) first")
        trained = self.params["syn0"].shape[1]
        if trained != self.vector_size:
            raise ValueError(f"build_vocab(update=True): vector_size is {self.vector_size} but the trained "
                             f"vectors have {trained} dimensions; keep vector_size={trained} or train a new model")

    def _grow_vocab(self, new: Vocab, rule) -> Word2Vec:
        """Adds ``new``'s counts (every word, ``min_count`` not yet applied) to the vocabulary."""
        counts = self.vocab.counts.copy()
        added = []
        for word, count in zip(new.words, new.counts.tolist()):
            if word in self.vocab:
                counts[self.vocab.index[word]] += count
            elif keeps_word(word, count, self.min_count, rule):
                added.append((word, count))
        old, host = len(self.vocab), self._host_params()
        self.vocab = Vocab(self.vocab.words + [w for w, _ in added],
                           np.concatenate([counts, np.array([c for _, c in added], np.int64)]),
                           self.vocab.raw_words + new.raw_words, self.vocab.num_sentences + new.num_sentences)
        self.corpus_count, self.corpus_total_words = new.num_sentences, new.raw_words
        self._make_tables()
        self.params = None
        self.params = self._device_params(
            _grown_params(host, len(self.vocab), self.seed + old, self._n_buckets)
        )
        self._wv = None
        return self

    @property
    def layer1_size(self) -> int:
        """Width of the output rows (gensim's name): ``vector_size``."""
        return self.vector_size

    def reset_params(self):
        """Fresh random input vectors and zero output vectors (vocabulary and tables kept)."""
        self.params = None  # free the old tables first
        self.params = init_params(
            self.seed, len(self.vocab), self.vector_size, bool(self.negative),
            bool(self.hs), self.mesh, self.layer1_size,
        )  # fmt: skip
        self.epochs_trained = 0
        self._wv = None

    def _make_tables(self):
        counts = self.vocab.counts
        tables = {"keep": keep_probabilities(counts, self.sample).astype(np.float32)}
        self.chunk_size = self._chunk_size_arg or self._auto_chunk(tables["keep"], counts)
        if self.negative:
            tables["accept"], tables["alias"] = build_alias_table(
                unigram_weights(counts, self.ns_exponent)
            )
        if self.hs:
            tree = build_huffman(counts)
            tables.update(codes=tree.codes, points=tree.points, lengths=tree.lengths)
        capacity = self._capacity(tables["keep"], counts)
        input_tables, subword_slots = self._input_tables(tables["keep"], counts, capacity)
        self.tables = _replicate({**tables, **input_tables}, self.mesh)
        cfg = StepConfig(
            bool(self.sg),
            bool(self.hs),
            self.negative,
            self.window,
            bool(self.cbow_mean),
            self.chunk_size,
            self.negative_group,
            capacity,
            shrink_windows=self.shrink_windows,
            compute_loss=self.compute_loss,
            subword_slots=subword_slots,
            **self._step_options(),
        )
        per_step = self.chunk_size * self.chunks_per_step  # tokens per step, all workers
        self.sync_every = self._sync_every_arg or max(1, TOKENS_PER_MERGE // per_step)
        self.step_config = cfg
        self._step = make_train_step(cfg, self.mesh)

    def _step_options(self) -> dict:
        """A front end's :class:`StepConfig` fields (Doc2Vec's document inputs): none here."""
        return {}

    def _input_tables(self, keep: np.ndarray, counts: np.ndarray, capacity: int) -> tuple[dict, int]:
        """The device tables listing each word's input rows, and the row slots a chunk needs
        (``StepConfig.subword_slots``): none for word2vec, whose input is one row per word."""
        return {}, 0

    def _auto_chunk(self, keep: np.ndarray, counts: np.ndarray) -> int:
        """Chunk size bounding how often one word's updates pile up in a single step.

        Updates inside a chunk are computed from the same parameters and summed; a word present
        ``n`` times gets ``n`` unsaturated updates at once where sequential SGD would see each
        one react to the last. The chunk is the largest power of two (``_min_auto_chunk`` to
        16384) in which the most frequent surviving word is expected at most once (skip-gram,
        whose every occurrence is the input and output of up to ``2W`` pairs) or 4 times (CBOW:
        one example per occurrence).
        """
        max_repeats = 1 if self.sg else 4
        share = float((keep * counts).max() / counts.sum())  # kept occurrences per corpus token
        c = 16384
        while c > self._min_auto_chunk and c * share > max_repeats:
            c //= 2
        c //= self.chunks_per_step // self.mesh.size  # a worker's chunks of a step are summed together
        c = max(c, 2 * self.window + 2, 64)
        return -(-c // self.negative_group) * self.negative_group

    def _capacity(self, keep: np.ndarray, counts: np.ndarray) -> int:
        """Compacted tokens per chunk: the expected survivors of subsampling + a wide margin.

        A chunk keeps ``C * p`` tokens on average (``p`` = corpus keep rate); the buffer holds
        ``1.25 C p + 8 sqrt(C)`` (binomial s.d. is ``<= sqrt(C) / 2``), rounded up to a multiple of
        ``negative_group``, so overflow (counted in the training stats) is practically never hit
        while padding work stays small.
        """
        p = float((keep * counts).sum() / counts.sum())
        cap = int(1.25 * self.chunk_size * p + 8 * np.sqrt(self.chunk_size))
        cap = -(-cap // self.negative_group) * self.negative_group
        return min(cap, self.chunk_size)

    # ---------------------------------------------------------------- training
    def encode(self, sentences: Iterable[list[str]]) -> Corpus:
        if self.vocab is None:
            raise ValueError("call build_vocab(sentences) before encoding or training")
        return self.vocab.encode(sentences)

    def train(self, corpus_iterable: Iterable[list[str]] | Corpus | None = None,
              corpus_file: str | os.PathLike | None = None, total_examples: int | None = None,
              total_words: int | None = None, epochs: int | None = None, start_alpha: float | None = None,
              end_alpha: float | None = None, word_count: int = 0, queue_factor: int = 2,
              report_delay: float = 1.0, compute_loss: bool = False, callbacks=()) -> tuple[int, int]:
        """Trains ``epochs`` passes (default ``self.epochs``) over a corpus (gensim's signature).

        The corpus is ``corpus_iterable`` (re-iterable token lists, or an encoded ``Corpus``) or
        ``corpus_file``. The learning rate goes linearly from ``start_alpha`` (default ``alpha``) to
        ``end_alpha`` (default ``min_alpha``) over all words of all epochs, counted exactly, so
        ``total_examples``/``total_words`` are optional; given, they are checked against the corpus.
        ``callbacks`` get ``on_train_begin``, ``on_epoch_begin``, ``on_epoch_end`` and
        ``on_train_end`` with the model. ``word_count``, ``queue_factor`` and ``report_delay`` are
        gensim's thread-queue and logging knobs. Returns gensim's ``(trained words, raw words)``:
        the words kept by subsampling and all words read, over all epochs. ``last_train_stats`` holds
        the counts, ``last_train_timing`` the timings (raw words/second excludes vocabulary building). A corpus without one word of the
        vocabulary trains nothing, with a warning, as in gensim.
        """
        if self.vocab is None:
            raise ValueError("call build_vocab(sentences) before train()")
        if bool(compute_loss) != self.compute_loss:  # gensim: each train() call says it anew
            self.compute_loss = bool(compute_loss)
            self._make_tables()
        source = corpus_iterable if isinstance(corpus_iterable, Corpus) else _corpus(corpus_iterable, corpus_file)
        corpus = source if isinstance(source, Corpus) else self.encode(source)
        _check_totals(corpus, total_examples, total_words)
        epochs = self.epochs if epochs is None else epochs
        if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 1:
            raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
        callbacks = tuple(callbacks)
        a0 = self.alpha if start_alpha is None else start_alpha
        a1 = self.min_alpha if end_alpha is None else end_alpha
        if len(corpus) == 0:
            warnings.warn("the corpus has no word of the vocabulary: nothing to train (build_vocab("
                          "..., update=True) adds new words)", stacklevel=2)
            self.last_train_stats = {"kept_words": 0, "trained_examples": 0, "dropped_overflow_words": 0}
            self.last_train_timing = {"seconds": 0.0, "raw_words": corpus.raw_words * epochs,
                                      "words_per_second": 0.0, "effective_words": 0}
            return 0, corpus.raw_words * epochs
        self._check_trainable(corpus)
        raw_words, n_tokens = corpus.raw_words, len(corpus)
        plan = _Schedule(len(corpus), self.chunk_size, self.chunks_per_step, self.mesh.size, self.sync_every)
        blocks = plan.worker_blocks(corpus.tokens, self.mesh)
        tables = {**self.tables, **self._corpus_tables(corpus, plan)}
        del source, corpus  # an encoded corpus read here is freed before its blocks are placed
        tokens = _put_blocks(blocks, plan.block_length, self.mesh)
        release_free_memory()  # the host copies just freed, before the step's compilation needs memory
        self._run(plan, tokens, tables, raw_words, n_tokens, epochs, a0, a1, callbacks)
        return self.last_train_stats["kept_words"], raw_words * epochs

    def _check_trainable(self, corpus: Corpus) -> None:
        """Refuses a corpus in which no word has a context."""
        if len(corpus) <= self.window:
            raise ValueError(
                f"the corpus has {len(corpus)} in-vocabulary words, not more than window="
                f"{self.window}; use a larger corpus or a smaller window"
            )
        if corpus.longest_sentence() < 2:
            raise ValueError(
                "every sentence has fewer than 2 in-vocabulary words, so no word has a context; "
                "the corpus is smaller than one window"
            )

    def _corpus_tables(self, corpus: Corpus, plan: _Schedule) -> dict:
        """Device tables of this corpus (beyond the vocabulary's ``self.tables``): none here."""
        return {}

    def _run(self, plan: _Schedule, tokens, tables: dict, raw_words: int, n_tokens: int, epochs: int,
             a0: float, a1: float, callbacks=()) -> None:
        """The training loop over placed ``tokens``: ``epochs`` passes of ``plan``'s calls, the
        learning rate from ``a0`` to ``a1``; sets ``last_train_stats`` and ``last_train_timing``."""
        key = jax.random.key(self.seed)
        stats = jnp.zeros(4)
        self.running_training_loss = 0.0
        _notify(callbacks, "on_train_begin", self)
        bar = progress(total=epochs * plan.calls, desc="word2vec") if self.progress else None
        spec = P(None, None, DATA_AXIS)  # schedules: the chunks of a step split over the workers
        t0 = time.perf_counter()
        for e in range(epochs):
            _notify(callbacks, "on_epoch_begin", self)
            # Keyed by the global epoch, so save -> load -> train continues the same stream.
            ekey = jax.random.fold_in(key, self.epochs_trained)
            for local_chunk, chunk_id, alpha in plan.calls_of_epoch(e, epochs, a0, a1):
                self.params, st = self._step(
                    self.params, tables, tokens, _put(local_chunk, self.mesh, spec),
                    _put(chunk_id, self.mesh, spec), _put(alpha, self.mesh, spec), ekey,
                )  # fmt: skip
                stats = stats + st  # stays on device (no host sync per step)
                if self.mesh.size > 1:  # XLA:CPU can deadlock with collectives of queued calls
                    jax.block_until_ready(self.params)
                if bar is not None:
                    bar.update(1)
            self.epochs_trained += 1
            self._wv = None
            if bar is not None or self.compute_loss:  # one sync per epoch, for an honest rate
                self.running_training_loss = float(host_value(stats)[3])
            if bar is not None:
                rate = raw_words * (e + 1) / (time.perf_counter() - t0)
                loss = {"loss": f"{self.running_training_loss:.4g}"} if self.compute_loss else {}
                bar.set_postfix(epoch=f"{e + 1}/{epochs}", words_per_s=f"{rate:,.0f}", **loss)
            _notify(callbacks, "on_epoch_end", self)
        jax.block_until_ready(self.params)
        seconds = time.perf_counter() - t0
        if bar is not None:
            bar.close()
        self.train_seconds = seconds
        self.words_per_second = raw_words * epochs / seconds
        self._wv = None
        stats = host_value(stats)
        self.running_training_loss = float(stats[3])
        self.last_train_stats = {
            "kept_words": int(stats[0]), "trained_examples": int(stats[1]),
            "dropped_overflow_words": int(stats[2]),
        }  # fmt: skip
        self.last_train_timing = {
            "seconds": seconds,
            "raw_words": raw_words * epochs,
            "words_per_second": self.words_per_second,
            "effective_words": n_tokens * epochs,
            "workers": self.mesh.size,
            "sync_every": self.sync_every,
        }
        _notify(callbacks, "on_train_end", self)

    def get_latest_training_loss(self) -> float:
        """gensim's loss of the latest ``train`` call with ``compute_loss=True``: the sum of
        ``-log sigmoid(+-score)`` over the pairs trained so far in it (at each epoch's end while
        training); 0.0 without ``compute_loss``."""
        return self.running_training_loss

    # ---------------------------------------------------------------- vectors
    @property
    def wv(self) -> KeyedVectors:
        """Trained input vectors as :class:`KeyedVectors` (rebuilt lazily after training)."""
        if self.params is None:
            raise ValueError("the model has no vocabulary yet; call build_vocab() and train()")
        if getattr(self, "_wv", None) is None:
            self._wv = KeyedVectors(
                self.vocab.words, host_value(self.params["syn0"]), counts=self.vocab.counts
            )
        return self._wv

    @property
    def syn1neg(self) -> np.ndarray:
        """Output (context) vectors of negative sampling ``[V, D]`` float32, rows in vocabulary
        order (gensim's name). ``wv[a] @ syn1neg[b]`` estimates ``PMI(a, b) - log(negative)``."""
        if self.params is None or "syn1neg" not in self.params:
            raise ValueError("no output vectors: the model is untrained or uses hs=1, negative=0")
        return host_value(self.params["syn1neg"])

    # ---------------------------------------------------------------- persistence
    def hparams(self) -> dict:
        return {k: getattr(self, k) for k in _HPARAMS}

    def _extra_meta(self) -> dict:
        """What a front end saves beside the hyper-parameters and vocabulary (Doc2Vec's tags)."""
        return {}

    def _load_meta(self, meta: dict) -> None:
        """Restores :meth:`_extra_meta` before the tables are rebuilt."""

    def save(self, path: str | os.PathLike) -> None:
        """Saves hyper-parameters, vocabulary and all tables (Orbax) so training can continue.

        Atomic: the model is written into a temporary sibling directory that then takes the place of
        ``path``, so a save killed at any moment leaves the previous model or the new one, whole."""
        import orbax.checkpoint as ocp

        if self.vocab is None or self.params is None:
            raise ValueError("nothing to save: call build_vocab() and train() first")
        path = pathlib.Path(path).absolute()
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            **self._extra_meta(),
            "model": type(self).__name__,
            "hparams": self.hparams(),
            "epochs_trained": self.epochs_trained,
            "vocab": {
                "words": self.vocab.words,
                "counts": self.vocab.counts.tolist(),
                "raw_words": self.vocab.raw_words,
                "num_sentences": self.vocab.num_sentences,
            },
        }
        params = self._host_params()
        with atomic_directory(path) as tmp:
            (tmp / "word2vec.json").write_text(json.dumps(meta))
            with ocp.StandardCheckpointer() as ckptr:
                ckptr.save(tmp / "params", params)

    @classmethod
    def load(cls, path: str | os.PathLike, devices=None) -> Word2Vec:
        """Restores a model written by :meth:`save` (on any devices)."""
        import orbax.checkpoint as ocp

        path = resolve_directory(pathlib.Path(path).absolute())
        meta_file = path / "word2vec.json"
        if not meta_file.is_file():
            raise FileNotFoundError(f"{path} is not a saved Word2Vec model (no word2vec.json)")
        meta = json.loads(meta_file.read_text())
        saved = meta.get("model", "Word2Vec")  # files written before the field hold Word2Vec models
        if saved != cls.__name__ and not (saved == "Word2Vec" and cls.__name__ == "FastText"):
            raise ValueError(f"{path} holds a saved {saved} model; load it with {saved}.load")
        if devices is None:  # as many devices as the saved chunks_per_step can be split over
            import math

            n = math.gcd(meta["hparams"]["chunks_per_step"], jax.device_count())
            devices = jax.devices()[:n]
        model = cls(devices=devices, **meta["hparams"])
        voc = meta["vocab"]
        model.vocab = Vocab(
            voc["words"], np.asarray(voc["counts"]), voc["raw_words"], voc["num_sentences"]
        )
        model._load_meta(meta)
        model._make_tables()
        model.reset_params()
        with ocp.StandardCheckpointer() as ckptr:
            model.params = model._restore_params(ckptr, path / "params")
        model.epochs_trained = meta["epochs_trained"]
        return model


def _check_hyperparameters(**values) -> None:
    """Integers where gensim takes integers, finite non-negative numbers elsewhere: a NaN or
    infinite learning rate would otherwise train to NaN vectors without a word."""
    for name in ("vector_size", "window", "min_count", "negative", "epochs", "workers", "batch_words"):
        v = values[name]
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"{name} must be an integer, got {v!r}")
    for name in ("sample", "ns_exponent", "alpha", "min_alpha"):
        v = values[name]
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise TypeError(f"{name} must be a finite number, got {v!r}")
        if not np.isfinite(v):
            raise ValueError(f"{name} must be a finite number, got {v!r}")
        if v < 0:
            raise ValueError(f"{name} must be >= 0, got {v!r}")


def _check_word_freq(word_freq) -> dict[str, int]:
    """``{word: count}`` with string words and non-negative integer counts, as a plain dict."""
    if not hasattr(word_freq, "items"):
        raise TypeError(f"word_freq must be a dict of word -> count, got {type(word_freq).__name__}")
    counts = {}
    for word, count in word_freq.items():
        if not isinstance(word, str):
            raise TypeError(f"word_freq's words must be strings, got {word!r}")
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 0:
            raise ValueError(f"word_freq[{word!r}] = {count!r}; counts must be integers >= 0")
        counts[word] = int(count)
    return counts


def _corpus(corpus_iterable, corpus_file):
    """The one corpus of a gensim call: re-iterable token lists, or a ``LineSentence`` of a file."""
    if (corpus_iterable is None) == (corpus_file is None):
        raise ValueError("give exactly one of corpus_iterable (token lists) and corpus_file (a path)")
    if corpus_file is not None:
        return LineSentence(corpus_file)
    if isinstance(corpus_iterable, (str, bytes, os.PathLike)):
        raise TypeError("sentences must be an iterable of token lists, not a string or path; "
                        "pass a file as corpus_file=")
    if iter(corpus_iterable) is corpus_iterable:
        raise TypeError("the corpus is read twice (vocabulary, then training), so it cannot be a "
                        "one-shot iterator or generator; pass a list, a LineSentence or corpus_file=")
    return corpus_iterable


def _check_totals(corpus: Corpus, total_examples, total_words) -> None:
    """gensim needs these to schedule the learning rate; here they are counted, and a given value
    that disagrees with the corpus is reported rather than silently obeyed or ignored."""
    actual = {"total_examples": corpus.num_sentences, "total_words": corpus.raw_words}
    for name, given in (("total_examples", total_examples), ("total_words", total_words)):
        if given is not None and int(given) != actual[name]:
            warnings.warn(f"{name}={given} but the corpus has {actual[name]}; the learning rate is "
                          "scheduled over the counted corpus", stacklevel=3)


def _notify(callbacks, event: str, model) -> None:
    for callback in callbacks:
        hook = getattr(callback, event, None)
        if hook is not None:
            hook(model)


class _Schedule:
    """Which chunk each worker trains at each step, and where its chunks lie on its device.

    The corpus is cut into chunks of ``c`` tokens; step ``s`` trains chunks ``s * g .. s * g + g - 1``
    and worker ``w`` takes the ``g / n`` of them from ``s * g + w * g / n`` (so with one worker, or
    merging every step, training is the same as one device with ``g`` chunks per step). Worker
    ``w``'s device holds only its chunks, in the order it trains them, and one empty chunk that the
    steps padding the last call train on (learning rate 0). A call is ``rounds`` rounds of
    ``sync_every`` steps.
    """

    def __init__(self, n_tokens: int, c: int, g: int, n: int, sync_every: int):
        self.n_tokens, self.c, self.g = n_tokens, c, g
        self.per_worker = g // n
        self.steps = -(-n_tokens // (c * g))
        self.sync_every = min(sync_every, self.steps)
        # Several workers merge once per call, at the top level of the program: XLA:CPU runs the
        # devices of a process on one thread pool, where a collective inside a loop can starve.
        rounds = 1 if n > 1 else STEPS_PER_CALL // self.sync_every
        self.rounds = max(1, min(rounds, -(-self.steps // self.sync_every)))
        per_call = self.rounds * self.sync_every
        self.calls = -(-self.steps // per_call)
        self.padded_steps = self.calls * per_call

    @property
    def block_length(self) -> int:
        """Tokens on each worker's device: its ``steps * g / n`` chunks and the empty one."""
        return (self.steps * self.per_worker + 1) * self.c

    def worker_blocks(self, tokens: np.ndarray, mesh: Mesh) -> dict[int, np.ndarray]:
        """``{w: block}`` for the workers on this process's devices: worker ``w``'s chunks in the
        order it trains them, then the empty chunk (``-1`` is padding)."""
        c, g, gl, steps = self.c, self.g, self.per_worker, self.steps
        full = self.n_tokens // c
        chunks = tokens[: full * c].reshape(full, c)
        blocks = {}
        for w, device in enumerate(mesh.devices.flat):
            if device.process_index != jax.process_index():
                continue
            k = (np.arange(steps)[:, None] * g + w * gl + np.arange(gl)).ravel()  # its global chunks
            out = np.full((k.size + 1, c), -1, np.int32)
            held = np.flatnonzero(k < full)
            for s in range(0, held.size, _COPY_CHUNKS):  # bounded temporaries, not a corpus-sized one
                rows = held[s : s + _COPY_CHUNKS]
                out[rows] = chunks[k[rows]]
            tail = np.flatnonzero(k == full)
            if tail.size:
                out[tail[0], : self.n_tokens - full * c] = tokens[full * c :]
            blocks[w] = out.reshape(-1)
        return blocks

    def calls_of_epoch(self, epoch: int, epochs: int, a0: float, a1: float):
        """``(local_chunk, chunk_id, alpha)`` of each call of ``epoch``, ``[rounds, sync_every, g]``
        each: the chunk's position in its worker's block, its global number (which keys its
        random draws) and its learning rate, decayed linearly over all chunks of all epochs."""
        g, gl, steps = self.g, self.per_worker, self.steps
        s = np.arange(self.padded_steps)[:, None]
        k = np.arange(g)[None, :]
        real = s < steps
        chunk_id = np.where(real, s * g + k, steps * g).astype(np.int32)
        local = np.where(real, s * gl + k % gl, steps * gl).astype(np.int32)
        done = (epoch * steps * g + chunk_id).astype(np.float64) / (epochs * steps * g)
        alpha = np.where(real, a0 - (a0 - a1) * done, 0.0).astype(np.float32)
        shape = (self.calls, self.rounds, self.sync_every, g)
        yield from zip(*(x.reshape(shape) for x in (local, chunk_id, alpha)))


def _put(x: np.ndarray, mesh: Mesh, spec: P):
    """A host array (the same on every process) as a global array on ``mesh``."""
    return jax.make_array_from_callback(x.shape, NamedSharding(mesh, spec), lambda idx: x[idx])


def _put_blocks(blocks: dict[int, np.ndarray], length: int, mesh: Mesh):
    """The ``[n * length]`` token array sharded over the workers from this process's blocks
    (:meth:`_Schedule.worker_blocks`), each host block freed once its device holds it."""
    n = mesh.size
    return jax.make_array_from_callback(
        (n * length,), NamedSharding(mesh, P(DATA_AXIS)),
        lambda idx: blocks.pop(idx[0].indices(n * length)[0] // length),
    )  # fmt: skip


def _grown_params(params: dict, v: int, seed: int, n_buckets: int = 0) -> dict:
    """Host tables ``params`` extended to ``v`` words: trained rows kept, new input rows drawn as
    in ``init_params`` (from ``seed``), new output rows zero. The input table's last ``n_buckets``
    rows (fastText's n-grams) stay after the word rows."""
    out = {}
    for name, old in params.items():
        tail = n_buckets if name == "syn0" else 0
        words = old.shape[0] - tail
        rows, d = (v if name != "syn1" else max(v - 1, 1)) - words, old.shape[1]
        extra = _initial_vectors(seed, rows, d) if name == "syn0" else np.zeros((rows, d), np.float32)
        out[name] = np.concatenate([old[:words], extra, old[words:]])
    return out


def _initial_vectors(seed: int, v: int, d: int) -> np.ndarray:
    """``[v, d]`` float32 ~ U[-1/d, 1/d] from ``seed``, drawn in place (one host copy)."""
    x = np.random.default_rng(seed).random((v, d), dtype=np.float32)
    x *= 2.0
    x -= 1.0
    x /= d
    return x


def _replicate(tree, mesh: Mesh):
    return jax.device_put(tree, replicated(mesh))


def init_params(seed: int, v: int, d: int, negative: bool, hs: bool, mesh: Mesh,
                out_dim: int | None = None) -> dict:
    """Tables replicated on ``mesh``: input vectors ~ U[-1/D, 1/D], output vectors zero and
    ``out_dim`` wide (default ``d``; Doc2Vec's dm_concat feeds them a wider input).

    This is gensim 4's initialisation (twice the range of the original C tool's U[-0.5/D, 0.5/D]);
    the scale matters because output vectors start at zero, so their first updates are
    proportional to the input vectors. Drawn in place on the host, so a 1M x D table costs one
    copy, not the several intermediates of an on-device PRNG."""
    syn0 = _initial_vectors(seed, v, d)
    sharding = replicated(mesh)
    params = {"syn0": jax.block_until_ready(jax.device_put(syn0, sharding))}
    del syn0
    width = d if out_dim is None else out_dim
    zeros = jax.jit(
        lambda n: jnp.zeros((n, width), jnp.float32), static_argnums=0, out_shardings=sharding
    )
    if negative:
        params["syn1neg"] = zeros(v)
    if hs:
        params["syn1"] = zeros(max(v - 1, 1))
    return params
