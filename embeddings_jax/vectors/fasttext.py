"""``FastTextKeyedVectors``: word vectors built from a word row and character n-gram rows, so any
word, seen in training or not, has a vector (gensim's ``FastTextKeyedVectors`` surface).

A vocabulary word's vector is the mean of its row of ``vectors_vocab`` and the rows of
``vectors_ngrams`` its n-grams hash to (:mod:`embeddings_jax.data.subwords`); a word outside the
vocabulary gets the mean of its n-gram rows (zeros if it has none). ``vectors`` holds the
vocabulary's full vectors, so every ``KeyedVectors`` query runs unchanged over them; queries may
name out-of-vocabulary words.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import numpy as np

from embeddings_jax.data.subwords import check_ngram_settings, ngram_buckets, subword_rows
from embeddings_jax.train.atomic import atomic_directory, resolve_directory
from embeddings_jax.vectors.keyed import KeyedVectors, _unitvec

_FORMAT = "embeddings_jax.FastTextKeyedVectors"
_META = "fasttext_keyed_vectors.json"
_BLOCK_ROWS = 1 << 20  # gathered n-gram rows per block when building ``vectors``


def word_vectors(words: Sequence[str], vectors_vocab: np.ndarray, vectors_ngrams: np.ndarray,
                 min_n: int, max_n: int, bucket: int) -> np.ndarray:
    """``[V, D]`` float32: each word's mean of its own row and its n-gram rows (fastText's
    ``getWordVector`` for vocabulary words), built in blocks with no ``[rows, D]`` temporary of
    the whole vocabulary."""
    v, d = vectors_vocab.shape
    if not bucket:  # every word's only row is its own
        return vectors_vocab.copy()
    starts, rows = subword_rows(words, min_n, max_n, bucket)
    out = np.empty((v, d), np.float32)
    lo = 0
    while lo < v:
        hi = int(np.searchsorted(starts, starts[lo] + _BLOCK_ROWS, side="right")) - 1
        hi = min(max(hi, lo + 1), v)
        first = starts[lo:hi] - starts[lo]  # each word's own row opens its segment
        gathered = vectors_ngrams[np.maximum(rows[starts[lo] : starts[hi]] - v, 0)]
        gathered[first] = vectors_vocab[lo:hi]
        sums = np.add.reduceat(gathered, first, axis=0)
        out[lo:hi] = sums / np.diff(starts[lo : hi + 1])[:, None]
        lo = hi
    return out


class FastTextKeyedVectors(KeyedVectors):
    """Vocabulary vectors plus hashed n-gram vectors (gensim's attribute names).

    Args:
      index_to_key: the vocabulary, most frequent first. vectors_vocab: ``[V, D]`` word rows.
      vectors_ngrams: ``[bucket, D]`` n-gram rows. min_n, max_n, bucket: the n-gram settings the
        rows were trained with. counts: ``[V]`` word counts.
    """

    def __init__(self, index_to_key: Sequence[str], vectors_vocab, vectors_ngrams, min_n: int,
                 max_n: int, bucket: int, counts=None):
        check_ngram_settings(min_n, max_n, bucket)
        vectors_vocab = np.asarray(vectors_vocab, np.float32)
        vectors_ngrams = np.asarray(vectors_ngrams, np.float32)
        if vectors_ngrams.shape != (bucket, vectors_vocab.shape[1]):
            raise ValueError(f"vectors_ngrams must be [bucket={bucket}, {vectors_vocab.shape[1]}], "
                             f"got {vectors_ngrams.shape}")
        self.min_n, self.max_n, self.bucket = int(min_n), int(max_n), int(bucket)
        self.vectors_vocab, self.vectors_ngrams = vectors_vocab, vectors_ngrams
        words = list(index_to_key)
        if len(words) != vectors_vocab.shape[0]:
            raise ValueError(f"vectors_vocab must be [len(keys)={len(words)}, D], got {vectors_vocab.shape}")
        super().__init__(words, word_vectors(words, vectors_vocab, vectors_ngrams, min_n, max_n, bucket),
                         counts)  # fmt: skip

    def ngram_buckets(self, word: str) -> list[int]:
        """The rows of ``vectors_ngrams`` that ``word``'s n-grams hash to."""
        return ngram_buckets(word, self.min_n, self.max_n, self.bucket)

    def __contains__(self, key) -> bool:
        """gensim's rule: with n-grams every word has a vector; ``has_index_for`` tells whether it
        is in the vocabulary."""
        return isinstance(key, str) and (key in self.key_to_index or self.bucket > 0)

    def get_vector(self, key, norm: bool = False) -> np.ndarray:
        """The ``[D]`` vector of any word: its vocabulary vector, or the mean of its n-gram rows
        (zeros when none hash, as in fastText). Raises ``KeyError`` only without n-grams."""
        if key in self.key_to_index or not isinstance(key, str):
            return super().get_vector(key, norm)
        if not self.bucket or self.max_n < self.min_n:
            raise KeyError(f"word {key!r} is not in the vocabulary and the model has no n-grams")
        rows = self.ngram_buckets(key)
        v = self.vectors_ngrams[rows].mean(0) if rows else np.zeros(self.vector_size, np.float32)
        v = _unitvec(v) if norm else v
        v.setflags(write=False)
        return v

    def _query_items(self, positive, negative, what: str = "most_similar"):
        """As ``KeyedVectors``, with out-of-vocabulary words replaced by their unit vectors (so
        they enter the mean as vocabulary words do, and are not excluded from the answer)."""
        items = super()._query_items(positive, negative, what)
        return [(self.get_vector(w, norm=True) if isinstance(w, str) and w not in self.key_to_index else w, wt)
                for w, wt in items]  # fmt: skip

    # ---------------------------------------------------------------- native save / load
    def save(self, fname: str | os.PathLike) -> None:
        """Writes the directory ``fname``: the vocabulary and n-gram rows (``.npy``), counts and
        the n-gram settings (JSON). Atomic, like ``KeyedVectors.save``."""
        with atomic_directory(fname) as tmp:
            np.save(tmp / "vectors_vocab.npy", self.vectors_vocab, allow_pickle=False)
            np.save(tmp / "vectors_ngrams.npy", self.vectors_ngrams, allow_pickle=False)
            counts = None if self.counts is None else self.counts.tolist()
            meta = {"format": _FORMAT, "version": 1, "index_to_key": self.index_to_key, "counts": counts,
                    "min_n": self.min_n, "max_n": self.max_n, "bucket": self.bucket}  # fmt: skip
            with open(tmp / _META, "w", encoding="utf-8") as f:
                json.dump(meta, f)

    @classmethod
    def load(cls, fname: str | os.PathLike, mmap: str | None = None) -> FastTextKeyedVectors:
        """Reads a directory written by :meth:`save` (``mmap`` memory-maps the n-gram rows)."""
        path = resolve_directory(fname)
        meta_path = path / _META
        if not meta_path.is_file():
            raise FileNotFoundError(f"{path} has no {_META}: not saved by FastTextKeyedVectors.save")
        with open(meta_path, encoding="utf-8") as f:
            meta = json.load(f)
        if meta.get("format") != _FORMAT or meta.get("version") != 1:
            raise ValueError(f"{meta_path}: unknown format {meta.get('format')!r} v{meta.get('version')}")
        return cls(meta["index_to_key"], np.load(path / "vectors_vocab.npy", allow_pickle=False),
                   np.load(path / "vectors_ngrams.npy", mmap_mode=mmap, allow_pickle=False),
                   meta["min_n"], meta["max_n"], meta["bucket"], meta["counts"])  # fmt: skip
