"""fastText word vectors (Bojanowski et al., 2017) on the word2vec engine, with gensim's interface.

    >>> model = FastText(sentences, vector_size=100, window=5, min_count=5, min_n=3, max_n=6)
    >>> model.wv["unseenword"]                  # any word has a vector, from its n-grams
    >>> save_facebook_model(model, "model.bin")  # loads in the fasttext package, and back here

A token's input is the mean of its word row and the rows its character n-grams hash to (one
table of ``V + bucket`` rows, fastText's layout); every one of those rows gets the token's whole
gradient, and CBOW averages all rows of a window, as fastText and gensim train. Training only
ever touches the buckets of vocabulary words, so the device holds just those, packed most used
first (a few hundred thousand rows where fastText allocates two million: fewer cache and TLB
misses); the others keep their initial (or loaded) values on the host. Everything else
(subsampling, windows, negatives, Huffman trees, parallel workers, streaming corpora, the
learning-rate schedule) is :class:`~embeddings_jax.models.word2vec.Word2Vec`'s.
"""

from __future__ import annotations

import os

import jax
import numpy as np

from embeddings_jax.data.subwords import check_ngram_settings, subword_rows
from embeddings_jax.data.vocab import Vocab
from embeddings_jax.models.word2vec.model import Word2Vec, _initial_vectors, _replicate, init_params
from embeddings_jax.train.sharding import host_value
from embeddings_jax.vectors.fasttext import FastTextKeyedVectors
from embeddings_jax.vectors.fasttext_bin import FacebookModel, read_facebook_bin, write_facebook_bin

SLOT_MARGIN = 1.15  # row slots per chunk over the expected rows of its (already padded) capacity


class FastText(Word2Vec):
    """Skip-gram / CBOW over words and their character n-grams (gensim's names and defaults).

    Args: :class:`Word2Vec`'s, plus min_n, max_n: the n-gram lengths in characters of ``<word>``
    (``max_n < min_n`` disables n-grams); bucket: hashed n-gram rows; word_ngrams: only 1 (as in
    gensim: word n-grams belong to fastText's supervised classifier).
    """

    def __init__(self, sentences=None, corpus_file=None, sg: int = 0, hs: int = 0,
                 vector_size: int = 100, alpha: float = 0.025, window: int = 5, min_count: int = 5,
                 max_vocab_size=None, word_ngrams: int = 1, sample: float = 1e-3, seed: int = 1,
                 workers: int = 1, min_alpha: float = 0.0001, negative: int = 5,
                 ns_exponent: float = 0.75, cbow_mean: int = 1, hashfxn=hash, epochs: int = 5,
                 null_word: int = 0, min_n: int = 3, max_n: int = 6, sorted_vocab: int = 1,
                 bucket: int = 2_000_000, trim_rule=None, batch_words: int = 10000, callbacks=(),
                 max_final_vocab=None, shrink_windows: bool = True, **engine_kwargs):
        check_ngram_settings(min_n, max_n, bucket)
        if word_ngrams != 1:
            raise ValueError(f"word_ngrams={word_ngrams}: only 1 is supported (word n-grams are "
                             "features of fastText's supervised classifier, not of word vectors)")
        self.min_n, self.max_n, self.bucket, self.word_ngrams = int(min_n), int(max_n), int(bucket), 1
        super().__init__(sentences, corpus_file, vector_size=vector_size, alpha=alpha, window=window,
                         min_count=min_count, max_vocab_size=max_vocab_size, sample=sample, seed=seed,
                         workers=workers, min_alpha=min_alpha, sg=sg, hs=hs, negative=negative,
                         ns_exponent=ns_exponent, cbow_mean=cbow_mean, hashfxn=hashfxn, epochs=epochs,
                         null_word=null_word, trim_rule=trim_rule, sorted_vocab=sorted_vocab,
                         batch_words=batch_words, callbacks=callbacks, max_final_vocab=max_final_vocab,
                         shrink_windows=shrink_windows, **engine_kwargs)  # fmt: skip

    @property
    def _n_buckets(self) -> int:
        return self.bucket

    def _input_tables(self, keep: np.ndarray, counts: np.ndarray, capacity: int) -> tuple[dict, int]:
        """Each word's rows on the device and the slots a chunk needs.

        The device table is the ``V`` word rows, then the ``U`` buckets vocabulary words use,
        most used (by kept tokens) first: ``self.trained_buckets [U]`` says which. A chunk needs
        its capacity times the mean rows of a kept token, plus a margin and one longest word."""
        v = len(self.vocab)
        starts, rows = subword_rows(self.vocab.words, self.min_n, self.max_n, self.bucket)
        n_rows = np.diff(starts)
        if starts[-1] >= 2**31:
            raise ValueError(f"{starts[-1]} subword rows exceed the int32 range; lower max_n or the vocabulary")
        kept = keep.astype(np.float64) * counts
        is_ngram = rows >= v
        use = np.bincount(rows[is_ngram] - v, np.repeat(kept, n_rows)[is_ngram], self.bucket)
        used = np.flatnonzero(use)
        self.trained_buckets = used[np.argsort(-use[used], kind="stable")]
        position = np.zeros(max(self.bucket, 1), np.int32)
        position[self.trained_buckets] = np.arange(self.trained_buckets.size, dtype=np.int32)
        rows = np.where(is_ngram, v + position[np.maximum(rows - v, 0)], rows).astype(np.int32)
        mean_rows = float((kept * n_rows).sum() / max(kept.sum(), 1e-30))
        slots = int(np.ceil(SLOT_MARGIN * capacity * mean_rows)) + int(n_rows.max())
        tables = {"row_start": starts[:-1].astype(np.int32), "n_rows": n_rows.astype(np.int32),
                  "rows": rows}  # fmt: skip
        return tables, -(-slots // 128) * 128

    # ---------------------------------------------------------------- host layout <-> device rows
    def reset_params(self):
        """Fresh tables: the full ``V + bucket`` input table drawn as ``init_params`` draws a
        word table (so its word rows equal Word2Vec's), output vectors zero."""
        self.params = None
        v, d = len(self.vocab), self.vector_size
        params = init_params(self.seed, v, d, bool(self.negative), bool(self.hs), self.mesh)
        params["syn0"] = _initial_vectors(self.seed, v + self.bucket, d)
        self.params = self._device_params(params)
        self.epochs_trained = 0
        self._wv = None

    def _host_params(self) -> dict:
        params = {k: host_value(t) for k, t in self.params.items() if k != "syn0"}
        v, dev = len(self.vocab), host_value(self.params["syn0"])
        ngrams = self._ngram_base.copy()
        ngrams[self.trained_buckets] = dev[v:]
        params["syn0"] = np.concatenate([dev[:v], ngrams])
        return params

    def _device_params(self, host: dict) -> dict:
        """Keeps the host table's n-gram rows (the untrained ones are read from it) and puts the
        word rows and ``trained_buckets`` rows on the mesh."""
        v = len(self.vocab)
        self._ngram_base = np.asarray(host["syn0"])[v:]
        compact = np.concatenate([host["syn0"][:v], self._ngram_base[self.trained_buckets]])
        return {**{k: _replicate(t, self.mesh) for k, t in host.items() if k != "syn0"},
                "syn0": _replicate(compact, self.mesh)}  # fmt: skip

    def _restore_params(self, ckptr, path) -> dict:
        target = {k: jax.ShapeDtypeStruct(t.shape, t.dtype, sharding=t.sharding) for k, t in self.params.items()}
        syn0 = target["syn0"]
        target["syn0"] = jax.ShapeDtypeStruct((len(self.vocab) + self.bucket, syn0.shape[1]), syn0.dtype,
                                              sharding=syn0.sharding)  # fmt: skip
        return self._device_params({k: host_value(t) for k, t in ckptr.restore(path, target).items()})

    def hparams(self) -> dict:
        return {**super().hparams(), "min_n": self.min_n, "max_n": self.max_n, "bucket": self.bucket}

    @property
    def wv(self) -> FastTextKeyedVectors:
        """Vocabulary and n-gram vectors as :class:`FastTextKeyedVectors` (rebuilt lazily)."""
        if self.params is None:
            raise ValueError("the model has no vocabulary yet; call build_vocab() and train()")
        if getattr(self, "_wv", None) is None:
            syn0, v = self._host_params()["syn0"], len(self.vocab)
            self._wv = FastTextKeyedVectors(self.vocab.words, syn0[:v], syn0[v:], self.min_n,
                                            self.max_n, self.bucket, counts=self.vocab.counts)  # fmt: skip
        return self._wv

    # ---------------------------------------------------------------- fastText's .bin files
    def to_facebook(self, lr_update_rate: int = 100) -> FacebookModel:
        """The model as the ``fasttext`` package stores it (see :mod:`embeddings_jax.vectors.fasttext_bin`)."""
        if self.params is None:
            raise ValueError("nothing to save: call build_vocab() and train() first")
        if self.hs and self.negative:
            raise ValueError("fastText trains one loss: a model with hs=1 and negative > 0 has no .bin form")
        v = len(self.vocab)
        host = self._host_params()
        if self.hs:  # fastText's output matrix has a row per word; inner node i is row i
            syn1 = host["syn1"]
            output = np.concatenate([syn1, np.zeros((v - syn1.shape[0], self.vector_size), np.float32)])
        else:
            output = host["syn1neg"]
        ngrams = self.max_n >= self.min_n and self.bucket > 0
        args = {"dim": self.vector_size, "ws": self.window, "epoch": self.epochs, "minCount": self.min_count,
                "neg": self.negative, "wordNgrams": 1, "loss": "hs" if self.hs else "ns",
                "model": "sg" if self.sg else "cbow", "bucket": self.bucket,
                "minn": self.min_n if ngrams else 0, "maxn": self.max_n if ngrams else 0,
                "lrUpdateRate": lr_update_rate, "t": self.sample}  # fmt: skip
        return FacebookModel(args, list(self.vocab.words), self.vocab.counts, self.vocab.raw_words,
                             host["syn0"], output)  # fmt: skip

    @classmethod
    def from_facebook(cls, fb: FacebookModel, devices=None, **kwargs) -> FastText:
        """A trainable model from a fastText model's contents (its vectors exactly; negatives
        drawn from counts^0.5, fastText's distribution). ``kwargs`` override settings."""
        a = fb.args
        if a["model"] not in ("sg", "cbow") or a["loss"] not in ("ns", "hs"):
            raise ValueError(f"only skip-gram/CBOW models with loss ns or hs load as word vectors, got "
                             f"model={a['model']!r}, loss={a['loss']!r}")
        hs = a["loss"] == "hs"
        settings = {
            "vector_size": a["dim"], "window": a["ws"], "epochs": a["epoch"], "min_count": a["minCount"],
            "negative": 0 if hs else a["neg"], "hs": int(hs), "sg": int(a["model"] == "sg"),
            "bucket": a["bucket"], "min_n": max(a["minn"], 1), "max_n": a["maxn"], "sample": a["t"],
            "ns_exponent": 0.5, "alpha": 0.05, "devices": devices,
        }  # fmt: skip
        if a["maxn"] == 0:  # fastText's "no n-grams"
            settings["min_n"], settings["max_n"] = 1, 0
        model = cls(**{**settings, **kwargs})
        model._set_vocab(Vocab(list(fb.words), fb.counts, fb.ntokens, 0))
        params = {"syn0": fb.input}
        if hs:
            params["syn1"] = fb.output[: max(len(fb.words) - 1, 1)]
        else:
            params["syn1neg"] = fb.output
        model.params = None
        model.params = model._device_params({k: np.asarray(x, np.float32) for k, x in params.items()})
        return model


def load_facebook_model(path: str | os.PathLike, devices=None, **kwargs) -> FastText:
    """A fastText ``.bin`` model (from the ``fasttext`` package or :func:`save_facebook_model`) as
    a :class:`FastText` that can keep training (gensim's name)."""
    return FastText.from_facebook(read_facebook_bin(path), devices=devices, **kwargs)


def load_facebook_vectors(path: str | os.PathLike) -> FastTextKeyedVectors:
    """Only the vectors of a fastText ``.bin`` model (gensim's name): no training tables built."""
    fb = read_facebook_bin(path)
    v, a = len(fb.words), fb.args
    min_n, max_n = (1, 0) if a["maxn"] == 0 else (a["minn"], a["maxn"])
    return FastTextKeyedVectors(fb.words, fb.input[:v], fb.input[v:], min_n, max_n, a["bucket"], fb.counts)


def save_facebook_model(model: FastText, path: str | os.PathLike, encoding: str = "utf-8",
                        lr_update_rate: int = 100, word_ngrams: int = 1) -> None:
    """Writes ``model`` as a ``.bin`` that ``fasttext.load_model`` reads (gensim's signature;
    words are written as UTF-8). Atomic."""
    if encoding.lower().replace("_", "-") not in ("utf-8", "utf8"):
        raise ValueError(f"fastText files hold UTF-8 words; encoding={encoding!r} is not supported")
    if word_ngrams != 1:
        raise ValueError(f"word_ngrams={word_ngrams}: only 1 is supported")
    write_facebook_bin(path, model.to_facebook(lr_update_rate))
