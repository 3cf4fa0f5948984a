"""word2vec (Mikolov et al., 2013) with gensim's interface and defaults, trained by a jitted step.

    >>> model = Word2Vec(sentences, vector_size=100, window=5, min_count=5, sg=1)
    >>> model.wv.most_similar("king")
    >>> model.save("w2v")                      # Orbax checkpoint: training can continue
    >>> model = Word2Vec.load("w2v"); model.train(more_sentences, epochs=1)

The host builds the vocabulary and one int32 array of the corpus; each step then asks the device
to train on a few chunks of it (see :mod:`embeddings_jax.models.word2vec_step`), with the learning
rate decaying linearly from ``alpha`` to ``min_alpha`` over all words of all epochs, as in gensim.
"""

from __future__ import annotations

import json
import os
import pathlib
import time
from collections.abc import Iterable

import jax
import jax.numpy as jnp
import numpy as np

from embeddings_jax.data.vocab import Corpus, Vocab, build_vocab
from embeddings_jax.models import word2vec_step as step_lib
from embeddings_jax.ops.huffman import build_huffman
from embeddings_jax.ops.sampling import build_alias_table, keep_probabilities, unigram_weights
from embeddings_jax.vectors import KeyedVectors

# Training steps per jitted call (a lax.scan): fewer Python dispatches, same updates.
STEPS_PER_CALL = 32

_HPARAMS = (
    "vector_size", "window", "min_count", "sample", "sg", "hs", "negative", "ns_exponent",
    "cbow_mean", "alpha", "min_alpha", "epochs", "seed", "max_vocab_size", "max_final_vocab",
    "chunk_size", "negative_group", "chunks_per_step",
)  # fmt: skip


class Word2Vec:
    """Skip-gram / CBOW with negative sampling and/or hierarchical softmax.

    Args (gensim names and defaults):
      sentences: iterable of token lists; when given, the vocabulary is built and the model trained.
      vector_size: dimension ``D``. window: maximum context distance ``W``.
      min_count, max_vocab_size, max_final_vocab: vocabulary pruning (see ``data.vocab``).
      sample: subsampling threshold (0 disables). sg: 1 skip-gram, 0 CBOW.
      hs: 1 for hierarchical softmax. negative: negatives per positive (0 disables).
      ns_exponent: exponent of the negative-sampling unigram distribution. cbow_mean: 1 mean, 0 sum.
      alpha, min_alpha: learning rate, decayed linearly over all epochs. epochs, seed.
      chunk_size: corpus tokens per chunk; one chunk's updates are computed from the same
        parameters and summed, so larger is faster but further from gensim's sequential SGD.
        ``None`` picks the largest power of two (256..16384) of tokens per step in which the most
        frequent word is expected to survive subsampling at most once (skip-gram) or 4 times
        (CBOW), divided over ``chunks_per_step`` (see ``_auto_chunk``).
      negative_group: consecutive inputs that share one draw of ``negative`` negatives.
      chunks_per_step: chunks per jitted step, split over ``devices`` (defaults to the device count).
      devices: devices of the data-parallel mesh (default: all).
      workers: accepted for gensim compatibility and ignored: parallelism comes from ``devices``
        and XLA's own threads.
    """

    def __init__(
        self,
        sentences: Iterable[list[str]] | None = None,
        vector_size: int = 100,
        window: int = 5,
        min_count: int = 5,
        sample: float = 1e-3,
        sg: int = 0,
        hs: int = 0,
        negative: int = 5,
        ns_exponent: float = 0.75,
        cbow_mean: int = 1,
        alpha: float = 0.025,
        min_alpha: float = 0.0001,
        epochs: int = 5,
        seed: int = 1,
        max_vocab_size: int | None = None,
        max_final_vocab: int | None = None,
        chunk_size: int | None = None,
        negative_group: int = 8,
        chunks_per_step: int | None = None,
        devices=None,
        progress: bool = False,
        workers: int | None = None,
    ):
        if vector_size < 1 or window < 1 or epochs < 1:
            raise ValueError(
                f"vector_size, window and epochs must be >= 1 (got {vector_size}, {window}, {epochs})"
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
        self.vector_size, self.window, self.min_count, self.sample = (
            vector_size,
            window,
            min_count,
            sample,
        )
        self.sg, self.hs, self.negative, self.ns_exponent = int(sg), int(hs), negative, ns_exponent
        self.cbow_mean, self.alpha, self.min_alpha = int(cbow_mean), alpha, min_alpha
        self.epochs, self.seed = epochs, seed
        self.max_vocab_size, self.max_final_vocab = max_vocab_size, max_final_vocab
        self._chunk_size_arg, self.chunk_size, self.negative_group = (
            chunk_size,
            chunk_size,
            negative_group,
        )
        self.mesh = step_lib.make_mesh(devices)
        n_dev = self.mesh.size
        self.chunks_per_step = chunks_per_step or n_dev
        if self.chunks_per_step % n_dev:
            raise ValueError(
                f"chunks_per_step={self.chunks_per_step} must divide over {n_dev} devices"
            )
        self.progress = progress
        del workers
        self.vocab: Vocab | None = None
        self.params: dict | None = None
        self.epochs_trained = 0
        self.train_seconds = 0.0
        self.words_per_second = 0.0
        if sentences is not None:
            sentences = _as_list(sentences)
            self.build_vocab(sentences)
            self.train(sentences, epochs=epochs)

    # ---------------------------------------------------------------- vocabulary and tables
    def build_vocab(self, sentences: Iterable[list[str]]) -> Word2Vec:
        """Counts words, prunes them, and initialises parameters and sampling tables."""
        self.vocab = build_vocab(
            sentences, self.min_count, self.max_vocab_size, self.max_final_vocab
        )
        self._make_tables()
        self.reset_params()
        return self

    def reset_params(self):
        """Fresh random input vectors and zero output vectors (vocabulary and tables kept)."""
        self.params = None  # free the old tables first
        self.params = step_lib.init_params(
            self.seed, len(self.vocab), self.vector_size, bool(self.negative),
            bool(self.hs), self.mesh,
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
        self.tables = step_lib.replicate(tables, self.mesh)
        cfg = step_lib.StepConfig(
            bool(self.sg),
            bool(self.hs),
            self.negative,
            self.window,
            bool(self.cbow_mean),
            self.chunk_size,
            self.negative_group,
            self._capacity(tables["keep"], counts),
        )
        self._step = step_lib.make_train_step(cfg, self.mesh)

    def _auto_chunk(self, keep: np.ndarray, counts: np.ndarray) -> int:
        """Chunk size bounding how often one word's updates pile up in a single step.

        Updates inside a chunk are computed from the same parameters and summed; a word present
        ``n`` times gets ``n`` unsaturated updates at once where sequential SGD would see each
        one react to the last. The chunk is the largest power of two (256..16384) in which the
        most frequent surviving word is expected at most once (skip-gram, whose every occurrence
        is the input and output of up to ``2W`` pairs) or 4 times (CBOW: one example per
        occurrence). On PTB + Brown this gives 256 / 1024 tokens: skip-gram's SimLex-999 there is
        0.162 at 1024 and 0.167 at 256 (five seeds; gensim 0.173) for 12% less speed, while
        CBOW at 256 is no better than at 1024 and 30% slower.
        """
        max_repeats = 1 if self.sg else 4
        share = float((keep * counts).max() / counts.sum())  # kept occurrences per corpus token
        c = 16384
        while c > 256 and c * share > max_repeats:
            c //= 2
        c //= self.chunks_per_step  # all chunks of a step are summed together
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

    def train(
        self,
        sentences: Iterable[list[str]] | Corpus,
        epochs: int | None = None,
        start_alpha: float | None = None,
        end_alpha: float | None = None,
        callback=None,
    ) -> dict:
        """Trains ``epochs`` passes over ``sentences`` (token lists or an encoded ``Corpus``).

        The learning rate goes linearly from ``start_alpha`` (default ``alpha``) to ``end_alpha``
        (default ``min_alpha``) over all words of all epochs. ``callback(epoch, model)`` runs after
        each epoch. Returns timing statistics; raw words/second excludes vocabulary building.
        """
        if self.vocab is None:
            raise ValueError("call build_vocab(sentences) before train()")
        corpus = sentences if isinstance(sentences, Corpus) else self.encode(_as_list(sentences))
        epochs = self.epochs if epochs is None else epochs
        a0 = self.alpha if start_alpha is None else start_alpha
        a1 = self.min_alpha if end_alpha is None else end_alpha
        if len(corpus) == 0:
            raise ValueError("no in-vocabulary words to train on (empty corpus after encoding)")
        if len(corpus) <= self.window:
            raise ValueError(
                f"the corpus has {len(corpus)} in-vocabulary words, not more than window="
                f"{self.window}; use a larger corpus or a smaller window"
            )
        if np.bincount(corpus.sentence_ids).max() < 2:
            raise ValueError(
                "every sentence has fewer than 2 in-vocabulary words, so no word has a context; "
                "the corpus is smaller than one window"
            )
        c, g = self.chunk_size, self.chunks_per_step
        n_chunks = -(-len(corpus) // c)
        n_steps = -(-n_chunks // g)
        per_call = min(STEPS_PER_CALL, n_steps)
        n_calls = -(-n_steps // per_call)
        # Padding tokens get sentence id -1 and never train; the last chunk is all padding, and the
        # steps that fill up the last call train on it (with learning rate 0).
        pad = (n_steps * g + 1) * c - len(corpus)
        ids = np.concatenate([corpus.ids, np.zeros(pad, np.int32)])
        sids = np.concatenate([corpus.sentence_ids, np.full(pad, -1, np.int32)])
        empty_chunk = n_steps * g
        dev_ids, dev_sids = step_lib.replicate((ids, sids), self.mesh)
        key = jax.random.key(self.seed)
        total = epochs * n_steps * g
        stats = jnp.zeros(3)
        t0 = time.perf_counter()
        for e in range(epochs):
            # Keyed by the global epoch, so save -> load -> train continues the same stream.
            ekey = jax.random.fold_in(key, self.epochs_trained)
            chunk_index = np.full(n_calls * per_call * g, empty_chunk, np.int32)
            chunk_index[: n_steps * g] = np.arange(n_steps * g)
            done = (e * n_steps * g + chunk_index).astype(np.float32) / total
            alpha = np.where(chunk_index < empty_chunk, a0 - (a0 - a1) * done, 0).astype(np.float32)
            chunk_index, alpha = (a.reshape(n_calls, per_call, g) for a in (chunk_index, alpha))
            it = range(n_calls)
            if self.progress:
                from tqdm.auto import tqdm

                it = tqdm(it, desc=f"epoch {e + 1}/{epochs}", leave=False)
            for s in it:
                self.params, st = self._step(
                    self.params, self.tables, dev_ids, dev_sids, chunk_index[s], alpha[s], ekey
                )
                stats = stats + st  # stays on device (no host sync per step)
            self.epochs_trained += 1
            if callback is not None:
                callback(e, self)
        jax.block_until_ready(self.params)
        seconds = time.perf_counter() - t0
        self.train_seconds = seconds
        self.words_per_second = corpus.raw_words * epochs / seconds
        self._wv = None
        stats = np.asarray(stats)
        self.last_train_stats = {
            "kept_words": int(stats[0]), "trained_examples": int(stats[1]),
            "dropped_overflow_words": int(stats[2]),
        }  # fmt: skip
        return self.last_train_stats | {
            "seconds": seconds,
            "raw_words": corpus.raw_words * epochs,
            "words_per_second": self.words_per_second,
            "effective_words": len(corpus) * epochs,
        }

    # ---------------------------------------------------------------- vectors
    @property
    def wv(self) -> KeyedVectors:
        """Trained input vectors as :class:`KeyedVectors` (rebuilt lazily after training)."""
        if self.params is None:
            raise ValueError("the model has no vocabulary yet; call build_vocab() and train()")
        if getattr(self, "_wv", None) is None:
            self._wv = KeyedVectors(
                self.vocab.words, np.asarray(self.params["syn0"]), counts=self.vocab.counts
            )
        return self._wv

    # ---------------------------------------------------------------- persistence
    def hparams(self) -> dict:
        return {k: getattr(self, k) for k in _HPARAMS}

    def save(self, path: str | os.PathLike) -> None:
        """Saves hyper-parameters, vocabulary and all tables (Orbax) so training can continue."""
        import orbax.checkpoint as ocp

        path = pathlib.Path(path).absolute()
        path.mkdir(parents=True, exist_ok=True)
        meta = {
            "hparams": self.hparams(),
            "epochs_trained": self.epochs_trained,
            "vocab": {
                "words": self.vocab.words,
                "counts": self.vocab.counts.tolist(),
                "raw_words": self.vocab.raw_words,
                "num_sentences": self.vocab.num_sentences,
            },
        }
        (path / "word2vec.json").write_text(json.dumps(meta))
        params = jax.tree.map(np.asarray, self.params)
        with ocp.StandardCheckpointer() as ckptr:
            ckptr.save(path / "params", params, force=True)

    @classmethod
    def load(cls, path: str | os.PathLike, devices=None) -> Word2Vec:
        """Restores a model written by :meth:`save` (on any devices)."""
        import orbax.checkpoint as ocp

        path = pathlib.Path(path).absolute()
        meta_file = path / "word2vec.json"
        if not meta_file.is_file():
            raise FileNotFoundError(f"{path} is not a saved Word2Vec model (no word2vec.json)")
        meta = json.loads(meta_file.read_text())
        if devices is None:  # as many devices as the saved chunks_per_step can be split over
            import math

            n = math.gcd(meta["hparams"]["chunks_per_step"], jax.device_count())
            devices = jax.devices()[:n]
        model = cls(devices=devices, **meta["hparams"])
        voc = meta["vocab"]
        model.vocab = Vocab(
            voc["words"], np.asarray(voc["counts"]), voc["raw_words"], voc["num_sentences"]
        )
        model._make_tables()
        model.reset_params()
        target = jax.tree.map(
            lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), model.params
        )
        with ocp.StandardCheckpointer() as ckptr:
            model.params = ckptr.restore(path / "params", target)
        model.epochs_trained = meta["epochs_trained"]
        return model


def _as_list(sentences) -> list[list[str]]:
    if isinstance(sentences, str):
        raise TypeError("sentences must be an iterable of token lists, not a string")
    return sentences if isinstance(sentences, list) else list(sentences)
