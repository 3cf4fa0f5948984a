"""``KeyedVectors``: words and their vectors, with gensim's query, attribute and file API.

A query scores ``vectors @ mean / norms`` on the host: one numpy matrix-vector product and an
``argpartition``, which is all a single query needs (the same arithmetic as gensim's, so the lists
agree). ``norms`` are computed once and reused until the vectors change; ``index()`` gives an exact
``FlatIndex`` of the unit vectors for batches of queries.

Files: ``save``/``load`` use our directory format (raw ``vectors.npy``, memory-mappable, beside a
JSON file of keys and attributes); ``load`` also reads gensim's native ``.kv`` pickles without gensim
installed; ``save_word2vec_format``/``load_word2vec_format`` handle the word2vec C text and binary
formats and GloVe's header-less text.
"""

from __future__ import annotations

import codecs
import json
import numbers
import os
import pathlib
import pickle
import warnings
from collections.abc import Iterable, Sequence

import numpy as np

from embeddings_jax.index.flat import FlatIndex
from embeddings_jax.train.atomic import atomic_directory, resolve_directory
from embeddings_jax.vectors.gensim_pickle import GensimUnpickler, Stub
from embeddings_jax.vectors.word2vec_format import (
    atomic_output,
    open_bytes,
    read_binary,
    read_fvocab,
    read_header,
    read_text,
    text_shape,
)

Key = str
_MMAP_MODES = (None, "r", "r+", "c")  # np.load's modes, less "w+" (which would truncate the file)
_FORMAT = "embeddings_jax.KeyedVectors"
_META = "keyed_vectors.json"
_NORM_ROWS = 1 << 16  # rows per block when computing norms (no [V, D] temporary)


class KeyedVectors:
    """A vocabulary (``index_to_key``, most frequent first) and its ``[V, D]`` vectors.

    ``expandos`` holds per-key attributes (``[V]`` arrays, gensim's ``get_vecattr``); ``counts`` is
    the ``"count"`` attribute. ``norms`` is ``None`` until ``fill_norms()`` (as gensim).
    """

    def __init__(self, index_to_key: Sequence[str], vectors: np.ndarray, counts=None, *,
                 dtype=np.float32):  # fmt: skip
        if isinstance(index_to_key, str):
            raise TypeError("index_to_key must be a list of words, got a single string")
        index_to_key = list(index_to_key)
        not_str = [k for k in index_to_key if not isinstance(k, str)]
        if not_str:
            raise ValueError(
                f"keys must be strings (words); got {len(not_str)} others, e.g. {not_str[:3]!r}: "
                "convert them with str() first"
            )
        dtype = _float_dtype(dtype)
        vectors = np.asarray(vectors)
        if np.iscomplexobj(vectors) or not np.issubdtype(vectors.dtype, np.number):
            raise ValueError(f"vectors must be a real numeric [len(keys), D] array, got dtype {vectors.dtype}")
        vectors = vectors.astype(dtype, copy=False)  # a memory map of the right dtype stays one
        if vectors.ndim != 2 or vectors.shape[0] != len(index_to_key):
            raise ValueError(
                f"vectors must be [len(keys), D]; got {vectors.shape} for {len(index_to_key)} keys"
            )
        self.index_to_key = index_to_key
        self.key_to_index = {k: i for i, k in enumerate(self.index_to_key)}
        if len(self.key_to_index) != len(self.index_to_key):
            raise ValueError(
                f"duplicate keys in index_to_key: {_duplicates(index_to_key)[:5]!r}; every word must appear once"
            )
        self._vectors = vectors
        self.expandos: dict[str, np.ndarray] = {}
        self.next_index = len(index_to_key)
        self._invalidate()
        self.counts = counts

    # ------------------------------------------------------------------ vectors, norms, attributes
    @property
    def vectors(self) -> np.ndarray:
        return self._vectors

    @vectors.setter
    def vectors(self, value):
        value = np.asarray(value)
        if value.ndim != 2 or value.shape[0] != len(self.index_to_key):
            raise ValueError(f"vectors must be [{len(self.index_to_key)}, D], got {value.shape}")
        self._vectors = value
        self._invalidate()

    @property
    def vector_size(self) -> int:
        return self._vectors.shape[1]

    @property
    def counts(self) -> np.ndarray | None:
        """Word counts ``[V]`` int64: the ``"count"`` attribute (``None`` when unset)."""
        return self.expandos.get("count")

    @counts.setter
    def counts(self, counts):
        if counts is None:
            self.expandos.pop("count", None)
            return
        counts = np.array(counts, np.int64)  # a copy: set_vecattr must not write into the caller's array
        if counts.shape != (len(self),):
            raise ValueError(f"counts must hold one count per key ({len(self)}), got shape {counts.shape}")
        self.expandos["count"] = counts

    def _invalidate(self) -> None:
        """Forgets everything computed from the vectors (after they change)."""
        self.norms = None
        self._normed = None  # (the norms it was computed from, unit rows)
        self._flat = None  # (unit rows, restrict_vocab, FlatIndex)

    def fill_norms(self, force: bool = False) -> None:
        """Computes ``norms`` ``[V]`` (L2 length of each vector) if unset, or again with ``force``
        (after changing ``vectors`` in place)."""
        if self.norms is None or force:
            x = self._vectors
            self.norms = np.concatenate(
                [np.linalg.norm(x[s : s + _NORM_ROWS], axis=1) for s in range(0, len(x), _NORM_ROWS)]
            ) if len(x) else np.zeros(0, x.dtype)  # fmt: skip

    def _divisor(self, start: int = 0, end: int | None = None) -> np.ndarray:
        self.fill_norms()
        n = self.norms[start:end]
        return np.where(n > 0, n, 1).astype(n.dtype, copy=False)  # zero vectors stay zero

    def _unit_row(self, i: int) -> np.ndarray:
        """Row ``i`` at unit length, alone (a memory-mapped matrix is not copied whole)."""
        return self._vectors[i] / self._divisor(i, i + 1)[0]

    def get_normed_vectors(self) -> np.ndarray:
        """Unit-length rows ``[V, D]`` (zero rows stay zero), computed once and read-only."""
        self.fill_norms()
        if self._normed is None or self._normed[0] is not self.norms:
            unit = self._vectors / self._divisor()[:, None]
            unit.setflags(write=False)
            self._normed = (self.norms, unit)
        return self._normed[1]

    def allocate_vecattrs(self, attrs=None, types=None) -> None:
        """Ensures a ``[V]`` array for each attribute (``int`` is int64, ``str`` object), growing
        existing ones with zeros to the vocabulary size (gensim's rule)."""
        if attrs is None:
            attrs = list(self.expandos)
            types = [self.expandos[a].dtype for a in attrs]
        for attr, t in zip(attrs, types):
            t = np.int64 if t is int else object if t is str else t
            have = self.expandos.get(attr)
            if have is None:
                self.expandos[attr] = np.zeros(len(self), dtype=t)
                continue
            if not np.issubdtype(t, have.dtype):
                raise TypeError(f"attribute {attr!r} holds {have.dtype} values; cannot store {t} in it")
            if len(have) != len(self):
                grown = np.zeros(len(self), have.dtype)
                grown[: min(len(have), len(self))] = have[: len(self)]
                self.expandos[attr] = grown

    def set_vecattr(self, key: Key, attr: str, val) -> None:
        """Stores ``val`` as attribute ``attr`` of ``key`` (``"count"`` is ``counts``)."""
        self.allocate_vecattrs([attr], [type(val)])
        self.expandos[attr][self.get_index(key)] = val

    def get_vecattr(self, key: Key, attr: str):
        """Attribute ``attr`` of ``key``; ``KeyError`` naming the attributes that exist."""
        if attr not in self.expandos:
            raise KeyError(f"no attribute {attr!r}; the vectors have {sorted(self.expandos)}")
        return self.expandos[attr][self.get_index(key)]

    # ------------------------------------------------------------------ basic access
    def __len__(self) -> int:
        return len(self.index_to_key)

    def __contains__(self, key: Key) -> bool:
        return key in self.key_to_index

    def __str__(self) -> str:
        return f"{type(self).__name__}<vector_size={self.vector_size}, {len(self)} keys>"

    __repr__ = __str__

    def has_index_for(self, key: Key) -> bool:
        return key in self.key_to_index

    def get_index(self, key: Key, default=None) -> int:
        try:
            return self.key_to_index[key]
        except (KeyError, TypeError):
            if default is not None:
                return default
            raise KeyError(f"word {key!r} is not in the vocabulary ({len(self)} words)") from None

    def get_vector(self, key: Key, norm: bool = False) -> np.ndarray:
        """The ``[D]`` vector of ``key`` (unit length with ``norm``), read-only."""
        i = self.get_index(key)
        v = self._unit_row(i) if norm else self._vectors[i].view()
        v.setflags(write=False)  # writing through it would leave norms and indexes stale
        return v

    def __getitem__(self, keys):
        if isinstance(keys, str):
            return self.get_vector(keys)
        if not isinstance(keys, Iterable):
            raise KeyError(f"look up a word or a list of words, got {keys!r}")
        return np.stack([self.get_vector(k) for k in keys])

    # ------------------------------------------------------------------ adding vectors
    def add_vectors(self, keys, weights, extras: dict | None = None, replace: bool = False) -> None:
        """Appends new ``keys`` with their ``weights [n, D]``; a key already present keeps its vector
        unless ``replace``. ``extras`` maps attribute names to ``[n]`` values for these keys."""
        if isinstance(keys, str):
            keys, weights = [keys], np.asarray(weights).reshape(1, -1)
        keys, weights = list(keys), np.asarray(weights)
        if weights.ndim == 1 and len(keys) == 1:
            weights = weights[None]
        if weights.shape != (len(keys), self.vector_size):
            raise ValueError(
                f"weights must be [len(keys), {self.vector_size}] = [{len(keys)}, {self.vector_size}], "
                f"got {weights.shape}"
            )
        bad = [k for k in keys if not isinstance(k, str)]
        if bad:
            raise ValueError(f"keys must be strings (words), got e.g. {bad[:3]!r}")
        if len(set(keys)) != len(keys):
            raise ValueError(f"keys to add repeat: {_duplicates(keys)[:5]!r}; give each word once")
        extras = {a: np.asarray(v) for a, v in (extras or {}).items()}
        for attr, values in extras.items():
            if values.shape != (len(keys),):
                raise ValueError(f"extras[{attr!r}] must hold one value per key ({len(keys)}), got {values.shape}")
        self.allocate_vecattrs(list(extras), [v.dtype for v in extras.values()])  # type clashes raise here
        old = np.array([self.key_to_index.get(k, -1) for k in keys], np.int64)
        new = np.flatnonzero(old < 0)
        vectors = np.concatenate([self._vectors, weights[new].astype(self._vectors.dtype)])
        for i in new.tolist():
            self.key_to_index[keys[i]] = len(self.index_to_key)
            self.index_to_key.append(keys[i])
        self.allocate_vecattrs()
        start = len(self) - len(new)
        for attr, values in extras.items():
            self.expandos[attr][start:] = values[new]
        if replace and (old >= 0).any():
            hit = old >= 0
            vectors[old[hit]] = weights[hit]
            for attr, values in extras.items():
                self.expandos[attr][old[hit]] = values[hit]
        self._vectors = vectors
        self.next_index = len(self)
        self._invalidate()

    def add_vector(self, key: Key, vector) -> int:
        """Adds one ``key`` (kept as is when present) and returns its index; ``add_vectors`` adds
        many at the cost of one copy of the matrix."""
        if key not in self.key_to_index:
            self.add_vectors([key], np.asarray(vector).reshape(1, -1))
        return self.key_to_index[key]

    def __setitem__(self, keys, weights):
        """``kv[key] = vector`` / ``kv[[k1, k2]] = [2, D]``: adds or replaces."""
        if not isinstance(keys, list):
            keys, weights = [keys], np.asarray(weights).reshape(1, -1)
        self.add_vectors(keys, weights, replace=True)

    def sort_by_descending_frequency(self) -> None:
        """Reorders keys, vectors and attributes by descending ``count`` (gensim's tie order)."""
        if not len(self):
            return
        if self.counts is None:
            raise ValueError("sorting by frequency needs counts: set counts or the 'count' attribute first")
        order = np.lexsort((-np.arange(len(self)), -self.counts))
        self.index_to_key = [self.index_to_key[i] for i in order]
        self.key_to_index = {k: i for i, k in enumerate(self.index_to_key)}
        self.expandos = {a: v[order] for a, v in self.expandos.items()}
        self._vectors = self._vectors[order]
        self._invalidate()

    def init_sims(self, replace: bool = False) -> None:
        """gensim 3 name: ``fill_norms()``; ``replace=True`` also makes the vectors unit length."""
        self.fill_norms()
        if replace:
            self.unit_normalize_all()

    def unit_normalize_all(self) -> None:
        """Replaces every vector by its unit vector (norms become 1; the originals are gone)."""
        self._vectors = np.array(self.get_normed_vectors())
        self._invalidate()
        self.fill_norms()

    def vectors_for_all(self, keys: Iterable[Key], allow_inference: bool = True,
                        copy_vecattrs: bool = False) -> KeyedVectors:  # fmt: skip
        """A new ``KeyedVectors`` of the known ``keys`` (deduplicated, in the given order; plain
        vectors infer none, so ``allow_inference`` changes nothing)."""
        vocab = [k for k in dict.fromkeys(keys) if k in self.key_to_index]
        kv = KeyedVectors(vocab, self[vocab] if vocab else np.zeros((0, self.vector_size)),
                          counts=len(vocab) - np.arange(len(vocab)), dtype=self._vectors.dtype)  # fmt: skip
        if copy_vecattrs:
            rows = [self.key_to_index[k] for k in vocab]
            kv.expandos.update({a: v[rows] for a, v in self.expandos.items()})
        return kv

    # ------------------------------------------------------------------ query helpers
    def _query_items(self, positive, negative, what: str = "most_similar"):
        """``[(word or [D] vector, weight)]`` from gensim's forms: a word, a vector, a ``[n, D]``
        matrix or a list of them, each optionally a ``(item, weight)`` pair."""
        items = _as_items(positive, 1.0) + _as_items(negative, -1.0)
        if not items:
            raise ValueError(f"{what} needs at least one positive or negative word")
        for w, _ in items:
            if not isinstance(w, str) and np.shape(w) != (self.vector_size,):
                raise ValueError(f"{what} takes words (str) or [{self.vector_size}] vectors, got {w!r}")
        missing = [w for w, _ in items if isinstance(w, str) and w not in self]
        if missing:
            raise KeyError(f"words not in the vocabulary: {missing}")
        return items

    def _scores(self, unit_query: np.ndarray, start: int = 0, end: int | None = None) -> np.ndarray:
        """Cosine of ``unit_query`` with the vectors ``[start:end]``: ``[end - start]``."""
        scores = self._vectors[start:end] @ unit_query.astype(self._vectors.dtype, copy=False)
        scores /= self._divisor(start, end)
        return scores

    def _best(self, scores: np.ndarray, topn: int, exclude=(), offset: int = 0):
        """``[(key, score)]`` of the ``topn`` best scores, best first, skipping indices in ``exclude``."""
        k = min(topn + len(exclude), len(scores))
        if k <= 0:
            return []
        cut = len(scores) - k
        top = np.argpartition(scores, cut)[cut:] if cut else np.arange(len(scores))
        top = top[np.argsort(-scores[top], kind="stable")]
        hits = [(self.index_to_key[i + offset], float(scores[i])) for i in top.tolist()
                if i + offset not in exclude]  # fmt: skip
        return hits[:topn]

    def _limit(self, restrict_vocab) -> int:
        """How many of the most frequent words a query may return (``None``: all)."""
        if restrict_vocab is None:
            return len(self)
        if isinstance(restrict_vocab, bool) or not isinstance(restrict_vocab, (int, np.integer)) \
                or restrict_vocab <= 0:
            raise ValueError(
                f"restrict_vocab must be a positive integer (search the first n words) or None "
                f"(all {len(self)} words), got {restrict_vocab!r}"
            )
        return min(int(restrict_vocab), len(self))

    def _clip(self, clip_start, clip_end, restrict_vocab) -> tuple[int, int]:
        """The searched rows ``[start, end)``: ``restrict_vocab`` overrides the clip (gensim)."""
        if restrict_vocab is not None:
            return 0, self._limit(restrict_vocab)
        end = len(self) if not clip_end else clip_end
        for name, v in (("clip_start", clip_start), ("clip_end", end)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= v <= len(self):
                raise ValueError(f"{name} must be an integer in [0, {len(self)}], got {v!r}")
        if clip_start > end:
            raise ValueError(f"clip_start ({clip_start}) is past clip_end ({end})")
        return int(clip_start), int(end)

    @staticmethod
    def _check_topn(topn):
        if topn is None:
            return None
        if isinstance(topn, bool) or not isinstance(topn, (int, np.integer)) or topn < 0:
            raise ValueError(f"topn must be a non-negative integer or None (all similarities), got {topn!r}")
        return int(topn)

    def index(self, restrict_vocab: int | None = None) -> FlatIndex:
        """An exact inner-product ``FlatIndex`` of the unit vectors of the first ``restrict_vocab``
        words (ids = word indices) for batched queries, built once and reused until the vectors change."""
        normed = self.get_normed_vectors()
        limit = self._limit(restrict_vocab)
        if self._flat is None or self._flat[0] is not normed or self._flat[1] != limit:
            index = FlatIndex(self.vector_size, "ip")
            index.add(normed[:limit])
            self._flat = (normed, limit, index)
        return self._flat[2]

    # ------------------------------------------------------------------ similarity queries
    def get_mean_vector(self, keys, weights=None, pre_normalize: bool = True,
                        post_normalize: bool = False, ignore_missing: bool = True) -> np.ndarray:  # fmt: skip
        """Weighted mean ``sum w_i v_i / sum |w_i|`` ``[D]`` of words (unit vectors with
        ``pre_normalize``) and raw ``[D]`` arrays; unknown words are skipped unless ``ignore_missing``
        is False. Zeros when nothing is known."""
        if len(keys) == 0:
            raise ValueError("get_mean_vector needs at least one key")
        weights = np.ones(len(keys)) if weights is None else np.asarray(weights, np.float64)
        if weights.shape != (len(keys),):
            raise ValueError(f"weights must hold one weight per key ({len(keys)}), got shape {weights.shape}")
        mean, total = np.zeros(self.vector_size, self._vectors.dtype), 0.0
        for key, w in zip(keys, weights.tolist()):
            if isinstance(key, np.ndarray):
                v = key
            elif key in self.key_to_index:
                v = self.get_vector(key, norm=pre_normalize)
            elif not ignore_missing:
                raise KeyError(f"word {key!r} is not in the vocabulary ({len(self)} words)")
            else:
                continue
            mean += w * v
            total += abs(w)
        if total > 0:
            mean /= total
        return _unitvec(mean) if post_normalize else mean

    def most_similar(self, positive=None, negative=None, topn: int | None = 10, clip_start: int = 0,
                     clip_end: int | None = None, restrict_vocab: int | None = None, indexer=None):  # fmt: skip
        """Words closest (cosine) to the weighted mean of the unit vectors of ``positive`` (weight +1)
        and ``negative`` (-1) words; raw ``[D]`` vectors enter the mean as given (gensim's rule).

        Items may be ``(word, weight)`` pairs. Input words are excluded from the answer (3CosAdd).
        Returns ``[(word, similarity)]`` best first, or with ``topn=None`` the similarities ``[n]`` of
        all searched words (the first ``restrict_vocab``, else ``[clip_start:clip_end]``). ``indexer``
        answers instead when given: an object with ``most_similar(unit_mean, topn)`` (gensim's
        ``AnnoyIndexer``), or any vector index with ``search(q, k) -> (D, I)`` (ours, or FAISS's)
        over these unit vectors, ids = row numbers (``index()`` builds the exact one). Raises ``KeyError`` for unknown words.
        """
        topn = self._check_topn(topn)
        items = self._query_items(positive, negative)
        start, end = self._clip(clip_start, clip_end, restrict_vocab)
        if topn == 0:
            return []
        mean = self.get_mean_vector([w for w, _ in items], [wt for _, wt in items],
                                    post_normalize=True, ignore_missing=False)  # fmt: skip
        exclude = {self.key_to_index[w] for w, _ in items if isinstance(w, str)}
        if indexer is not None and topn is not None:
            if hasattr(indexer, "most_similar"):
                return indexer.most_similar(mean, topn)
            return self._search_index(indexer, mean, topn, exclude)
        scores = self._scores(mean, start, end)
        if topn is None:
            return scores
        return self._best(scores, topn, exclude, offset=start)

    def _search_index(self, index, unit_query: np.ndarray, topn: int, exclude: set) -> list:
        """``most_similar`` answered by a vector index (ours or FAISS's ``search -> (D, I)``) built
        over these unit vectors with row numbers as ids: inner-product scores are cosines, squared
        L2 distances ``d`` between unit vectors are ``2 - 2 cos``."""
        d, i = index.search(unit_query[None].astype(np.float32), topn + len(exclude))
        metric = getattr(index, "metric", "ip")
        metric = {0: "ip", 1: "l2"}.get(metric, metric)  # faiss's METRIC_INNER_PRODUCT / METRIC_L2
        cos = np.asarray(d[0], np.float64) if metric in ("ip", "cosine") else 1.0 - np.asarray(d[0]) / 2.0
        found = [(self.index_to_key[int(r)], float(c)) for r, c in zip(np.asarray(i[0]), cos)
                 if r >= 0 and int(r) not in exclude]
        return found[:topn]

    def similar_by_key(self, key: Key, topn: int | None = 10, restrict_vocab: int | None = None):
        """``most_similar(positive=[key], ...)``."""
        return self.most_similar(positive=[key], topn=topn, restrict_vocab=restrict_vocab)

    similar_by_word = similar_by_key

    def similar_by_vector(self, vector, topn: int | None = 10, restrict_vocab: int | None = None):
        """Words closest (cosine) to a ``[D]`` vector; ``topn=None`` gives all similarities."""
        return self.most_similar(positive=[np.asarray(vector)], topn=topn, restrict_vocab=restrict_vocab)

    def most_similar_cosmul(self, positive=None, negative=None, topn: int | None = 10,
                            restrict_vocab: int | None = None):  # fmt: skip
        """3CosMul (Levy & Goldberg, 2014): ``prod (1+cos(x,p))/2 / (prod (1+cos(x,n))/2 + 1e-6)``.

        Words and ``[D]`` vectors (by their direction) are accepted; ``topn=None`` gives the scores
        ``[n]`` of the first ``restrict_vocab`` (all) words."""
        topn = self._check_topn(topn)
        items = self._query_items(positive, negative, "most_similar_cosmul")
        limit = self._limit(restrict_vocab)
        if topn == 0:
            return []
        num, den = np.ones(limit, self._vectors.dtype), np.ones(limit, self._vectors.dtype)
        for w, wt in items:
            v = self.get_vector(w, norm=True) if isinstance(w, str) else _unitvec(np.asarray(w))
            sim = (1.0 + self._scores(v, 0, limit)) / 2.0
            if wt > 0:
                num *= sim
            else:
                den *= sim
        scores = num / (den + 1e-6)
        if topn is None:
            return scores
        return self._best(scores, topn, {self.key_to_index[w] for w, _ in items if isinstance(w, str)})

    @staticmethod
    def cosine_similarities(vector_1, vectors_all) -> np.ndarray:
        """Cosine of ``vector_1 [D]`` with each row of ``vectors_all [n, D]``: ``[n]``."""
        vectors_all = np.asarray(vectors_all)
        return vectors_all @ np.asarray(vector_1) / (
            np.linalg.norm(vector_1) * np.linalg.norm(vectors_all, axis=1)
        )

    def distances(self, word_or_vector, other_words: Sequence[Key] = ()) -> np.ndarray:
        """Cosine distances ``1 - cos`` from a word or ``[D]`` vector to ``other_words`` (default:
        every word, itself included): ``[n]``."""
        if isinstance(word_or_vector, str):
            v = self.get_vector(word_or_vector)
        else:
            v = np.asarray(word_or_vector)
            if v.shape != (self.vector_size,):
                raise ValueError(f"distances takes a word or a [{self.vector_size}] vector, got shape {v.shape}")
        u = _unitvec(v)
        if not other_words:
            return 1 - self._scores(u)
        rows = [self.get_index(w) for w in other_words]
        return 1 - (self._vectors[rows] @ u.astype(self._vectors.dtype)) / self._divisor()[rows]

    def distance(self, w1: Key, w2: Key) -> float:
        return 1.0 - self.similarity(w1, w2)

    def similarity(self, w1: Key, w2: Key) -> float:
        """Cosine similarity of two words."""
        return float(self.get_vector(w1, norm=True) @ self.get_vector(w2, norm=True))

    def n_similarity(self, ws1: Sequence[Key], ws2: Sequence[Key]) -> float:
        """Cosine similarity of the means of two word sets."""
        if not ws1 or not ws2:
            raise ValueError("n_similarity needs two non-empty word lists")
        return float(_unitvec(self[ws1].mean(0)) @ _unitvec(self[ws2].mean(0)))

    def closer_than(self, key1: Key, key2: Key) -> list[Key]:
        """Every word closer (cosine) to ``key1`` than ``key2`` is, ``key1`` itself left out."""
        i1, i2 = self.get_index(key1), self.get_index(key2)
        d = 1 - self._scores(self._unit_row(i1))
        return [self.index_to_key[i] for i in np.flatnonzero(d < d[i2]).tolist() if i != i1]

    words_closer_than = closer_than

    def rank(self, key1: Key, key2: Key) -> int:
        """Position of ``key2`` among the neighbours of ``key1`` (1 = nearest)."""
        return len(self.closer_than(key1, key2)) + 1

    def most_similar_to_given(self, key1: Key, keys_list: Sequence[Key]) -> Key:
        """The word of ``keys_list`` most similar to ``key1``."""
        return keys_list[int(np.argmax([self.similarity(key1, k) for k in keys_list]))]

    def relative_cosine_similarity(self, wa: Key, wb: Key, topn: int = 10) -> float:
        """``cos(wa, wb)`` over the summed similarities of ``wa``'s ``topn`` neighbours
        (Leeuwenberg et al., 2016)."""
        sims = self.similar_by_word(wa, topn)
        if not sims:
            raise ValueError("relative_cosine_similarity needs topn >= 1 neighbours of wa")
        return self.similarity(wa, wb) / sum(s for _, s in sims)

    def rank_by_centrality(self, words: Sequence[Key], use_norm: bool = True):
        """``[(similarity, word)]`` of the known ``words`` to their mean, most central first."""
        known = [w for w in words if w in self.key_to_index]
        if not known:
            raise ValueError(f"none of {list(words)} is in the vocabulary")
        vecs = np.stack([self.get_vector(w, norm=use_norm) for w in known])
        return sorted(zip((vecs @ _unitvec(vecs.mean(0))).tolist(), known), reverse=True)

    def doesnt_match(self, words: Sequence[Key]) -> Key:
        """The word furthest from the mean of the (known) words; unknown words are ignored."""
        return self.rank_by_centrality(words)[-1][1]

    def sentence_vector(self, words: Sequence[Key], pooling: str = "mean", norm: bool = False):
        """Pooled vector of the in-vocabulary ``words`` (``mean``, ``sum`` or ``max``), ``[D]``.

        ``norm=True`` pools unit-normalised word vectors. Returns zeros when no word is known.
        """
        if pooling not in ("mean", "sum", "max"):
            raise ValueError(f"pooling must be 'mean', 'sum' or 'max', got {pooling!r}")
        idx = [self.key_to_index[w] for w in words if w in self.key_to_index]
        if not idx:
            return np.zeros(self.vector_size, np.float32)
        vecs = (self.get_normed_vectors() if norm else self._vectors)[idx]
        return {"mean": vecs.mean, "sum": vecs.sum, "max": vecs.max}[pooling](0)

    # ------------------------------------------------------------------ evaluation
    def evaluate_word_analogies(
        self, analogies, restrict_vocab: int = 300_000, case_insensitive: bool = True,
        dummy4unknown: bool = False, similarity_function: str = "most_similar",
    ):  # fmt: skip
        """gensim's analogy accuracy: ``(score, sections)``, sections as gensim's (see ``eval.analogy``)."""
        from embeddings_jax.eval.analogy import evaluate_word_analogies

        if similarity_function != "most_similar":
            raise ValueError(f"similarity_function must be 'most_similar' (3CosAdd), got {similarity_function!r}")
        limit = len(self) if restrict_vocab is None else restrict_vocab
        res = evaluate_word_analogies(self, analogies, limit, case_insensitive, dummy4unknown)
        return res.accuracy, res.sections

    def evaluate_word_pairs(
        self, pairs, delimiter: str = "\t", encoding: str = "utf8", restrict_vocab: int = 300_000,
        case_insensitive: bool = True, dummy4unknown: bool = False,
    ):  # fmt: skip
        """gensim's word-pair evaluation: ``(pearson, spearman, oov_ratio)``.

        ``pearson`` is ``scipy.stats.pearsonr(human, model)`` (a ``(statistic, pvalue)`` tuple),
        ``spearman`` is ``scipy.stats.spearmanr(human, model)`` (``.statistic``/``.correlation``,
        ``.pvalue``), ``oov_ratio`` the percentage of pairs with a word outside the first
        ``restrict_vocab`` words (scored 0 and kept when ``dummy4unknown``).
        """
        from scipy import stats

        from embeddings_jax.eval.word_similarity import pair_similarities, read_word_pairs

        if codecs.lookup(encoding).name != "utf-8":
            raise ValueError(f"word-pair files are read as utf-8; convert the file from {encoding} first")
        rows = read_word_pairs(pairs, delimiter)
        model, human, oov = pair_similarities(self, rows, restrict_vocab, case_insensitive, dummy4unknown, pairs)
        return stats.pearsonr(human, model), stats.spearmanr(human, model), 100.0 * oov / len(rows)

    # ------------------------------------------------------------------ native save / load
    def save(self, fname: str | os.PathLike) -> None:
        """Writes the directory ``fname``: ``vectors.npy`` (raw, memory-mappable by ``load(mmap='r')``),
        attribute ``.npy`` files and ``keyed_vectors.json`` (keys, attribute names). Atomic: an
        interrupted save leaves the previous version whole."""
        with atomic_directory(fname) as tmp:
            np.save(tmp / "vectors.npy", np.ascontiguousarray(self._vectors), allow_pickle=False)
            attrs = {}
            for j, (attr, values) in enumerate(self.expandos.items()):
                if values.dtype == object:
                    attrs[attr] = {"values": values.tolist()}
                else:
                    np.save(tmp / f"vecattr-{j}.npy", values, allow_pickle=False)
                    attrs[attr] = {"file": f"vecattr-{j}.npy"}
            meta = {"format": _FORMAT, "version": 1, "index_to_key": self.index_to_key, "vecattrs": attrs}
            with open(tmp / _META, "w", encoding="utf-8") as f:
                json.dump(meta, f)

    @classmethod
    def load(cls, fname: str | os.PathLike, mmap: str | None = None) -> KeyedVectors:
        """Reads a ``save``d directory, or a gensim ``KeyedVectors.save`` / ``Word2Vec.save`` file
        (without needing gensim: its pickle is read by a restricted unpickler that runs no code).

        ``mmap='r'`` memory-maps the vectors (ours, and gensim's when stored in a separate
        ``fname.vectors.npy``) instead of reading them into memory.
        """
        if mmap not in _MMAP_MODES:
            raise ValueError(
                f"mmap must be None (read into memory), 'r' (read-only memory map), 'c' (copy-on-write) "
                f"or 'r+' (writable map), got {mmap!r}"
            )
        path = resolve_directory(fname)
        if path.is_dir():
            return cls._load_native(path, mmap)
        if not path.is_file():
            raise FileNotFoundError(f"no saved vectors at {path}")
        return cls._load_gensim(path, mmap)

    @classmethod
    def _load_native(cls, path: pathlib.Path, mmap) -> KeyedVectors:
        meta_path = path / _META
        if not meta_path.is_file():
            hint = " (FastTextKeyedVectors.save wrote it: load it with FastTextKeyedVectors.load)" \
                if (path / "fasttext_keyed_vectors.json").is_file() else ""
            raise ValueError(f"{path} is a directory without {_META}: not saved by KeyedVectors.save{hint}")
        with open(meta_path, encoding="utf-8") as f:
            meta = json.load(f)
        if meta.get("format") != _FORMAT or meta.get("version") != 1:
            raise ValueError(f"{meta_path}: unknown format {meta.get('format')!r} v{meta.get('version')}")
        vectors = np.load(path / "vectors.npy", mmap_mode=mmap, allow_pickle=False)
        kv = cls(meta["index_to_key"], vectors, dtype=vectors.dtype)
        for attr, spec in meta["vecattrs"].items():
            values = np.array(spec["values"], object) if "values" in spec else \
                np.load(path / spec["file"], allow_pickle=False)
            if values.shape != (len(kv),):
                raise ValueError(f"{path}: attribute {attr!r} has shape {values.shape}, expected ({len(kv)},)")
            kv.expandos[attr] = values
        return kv

    @classmethod
    def _load_gensim(cls, path: pathlib.Path, mmap) -> KeyedVectors:
        compressed = path.suffix in (".gz", ".bz2")
        if compressed and mmap:
            raise ValueError(f"{path} is compressed and cannot be memory-mapped: load it with mmap=None")
        with open_bytes(path) as f:
            head = f.peek(2)[:2] if hasattr(f, "peek") else b""
            if head[:1] != b"\x80":
                raise ValueError(
                    f"{path} is neither a KeyedVectors.save directory nor a gensim .kv pickle; "
                    "word2vec/GloVe files load with KeyedVectors.load_word2vec_format"
                )
            try:
                obj = GensimUnpickler(f).load()
            except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as e:
                raise ValueError(f"{path}: not a readable gensim pickle ({e})") from None
        prefix = str(path)
        if isinstance(obj, Stub) and "wv" in vars(obj).get("__recursive_saveloads", ()):
            obj, prefix = obj.wv, f"{path}.wv"  # a whole model (Word2Vec.save): take its vectors
        state = vars(obj) if isinstance(obj, Stub) else {}
        name = getattr(type(obj), "gensim_name", type(obj).__name__)
        if "FastText" in name:
            raise ValueError(
                f"{path} holds gensim's {name}, whose word vectors gensim rebuilds from n-grams: load it "
                "with gensim and write model.wv.save_word2vec_format(...), then load_word2vec_format"
            )
        keys = state.get("index_to_key", state.get("index2word", state.get("index2entity")))
        vocab = state.get("vocab") if isinstance(state.get("vocab"), dict) else None  # gensim < 4
        if vocab is not None:  # {word: Vocab(index=, count=)}
            if keys is None:
                keys = sorted(vocab, key=lambda k: vars(vocab[k]).get("index", 0))
            counts = [vars(vocab[k]).get("count", 0) if k in vocab else 0 for k in keys]
            state.setdefault("expandos", {"count": np.array(counts, np.int64)})
        for attr in ("vectors", "syn0"):
            if attr in state.get("__numpys", ()):
                array_file = f"{prefix}.{attr}.npz" if compressed else f"{prefix}.{attr}.npy"
                if not os.path.isfile(array_file):
                    raise FileNotFoundError(f"{path} keeps its vectors in {array_file}, which is missing")
                if compressed:
                    with np.load(array_file, allow_pickle=False) as z:
                        state[attr] = z["val"]
                else:
                    state[attr] = np.load(array_file, mmap_mode=mmap, allow_pickle=False)
        vectors = state.get("vectors", state.get("syn0"))
        if keys is None or not isinstance(vectors, np.ndarray):
            raise ValueError(f"{path} holds a {name}, not gensim KeyedVectors (or a model with .wv)")
        kv = cls(list(keys), vectors, dtype=vectors.dtype if vectors.dtype.kind == "f" else np.float32)
        for attr, values in (state.get("expandos") or {}).items():
            values = np.asarray(values)
            if values.shape == (len(kv),):
                kv.expandos[attr] = values.astype(np.int64) if attr == "count" else values
        return kv

    # ------------------------------------------------------------------ word2vec C format
    def save_word2vec_format(
        self, fname: str | os.PathLike, fvocab: str | os.PathLike | None = None, binary: bool = False,
        total_vec: int | None = None, write_header: bool = True, prefix: str = "", append: bool = False,
        sort_attr: str = "count",
    ):  # fmt: skip
        """Writes the word2vec C format (``V D`` header unless ``write_header=False``, GloVe's layout;
        then one word and its vector per row), rows by descending ``sort_attr`` when set (else index
        order). ``fvocab`` also writes ``word count`` lines; ``append`` adds to an existing file.
        Atomic: an interrupted save leaves the previous file."""
        if isinstance(fvocab, bool):
            raise TypeError("the second argument is fvocab (a vocabulary file), as in gensim: pass binary= by name")
        if sort_attr in self.expandos:
            order = np.argsort(-self.expandos[sort_attr].astype(np.float64), kind="stable")
        elif fvocab is not None:
            raise ValueError(f"cannot write a vocabulary file: there is no {sort_attr!r} attribute")
        else:
            order = np.arange(len(self))
        words = [prefix + self.index_to_key[i] for i in order.tolist()]
        for k in words:
            if not k or any(ch.isspace() for ch in k):
                raise ValueError(f"word {k!r} is empty or contains whitespace; the format cannot hold it")
        if fvocab is not None:
            values = self.expandos[sort_attr][order]
            with atomic_output(fvocab, append) as f:
                for k, c in zip(words, values.tolist()):
                    f.write(f"{k} {c}\n".encode())
        with atomic_output(fname, append) as f:
            if write_header:
                f.write(f"{len(self) if total_vec is None else total_vec} {self.vector_size}\n".encode())
            for k, i in zip(words, order.tolist()):
                v = self._vectors[i]
                if binary:
                    f.write(k.encode("utf-8") + b" " + v.astype("<f4").tobytes() + b"\n")
                else:
                    f.write((k + " " + " ".join(map(str, v)) + "\n").encode("utf-8"))

    @classmethod
    def load_word2vec_format(
        cls, fname: str | os.PathLike, fvocab: str | os.PathLike | None = None, binary: bool = False,
        encoding: str = "utf8", unicode_errors: str = "strict", limit: int | None = None,
        datatype=np.float32, no_header: bool = False,
    ) -> KeyedVectors:  # fmt: skip
        """Reads a word2vec C text or binary file (gensim's, the original tool's, fastText's ``.vec``),
        or with ``no_header`` a GloVe text file (counted first for its shape).

        ``fvocab`` reads counts from ``word count`` lines; without it counts are made up descending
        (``V - index``, as gensim). A repeated word keeps its first vector, with a warning.
        """
        if isinstance(fvocab, bool):
            raise TypeError("the second argument is fvocab (a vocabulary file), as in gensim: pass binary= by name")
        path = pathlib.Path(fname)
        if not path.is_file():
            raise FileNotFoundError(f"vector file {path} does not exist")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 0):
            raise ValueError(f"limit must be a non-negative integer or None (all words), got {limit!r}")
        if no_header and binary:
            raise ValueError("no_header=True reads GloVe-style text files only; binary files have a header")
        datatype = _float_dtype(datatype)
        vocab_counts = read_fvocab(fvocab, unicode_errors) if fvocab is not None else None
        first = 1
        if no_header:
            with open_bytes(path) as f:
                v, d = text_shape(f, path, encoding, unicode_errors)
        with open_bytes(path) as f:
            if not no_header:
                v, d = read_header(f, path, encoding, unicode_errors)
                first = 2
            if limit is not None:
                v = min(v, int(limit))
            smallest = v * (4 * d if binary else 2 * d)  # bytes the entries need at least
            # a wrong header must not allocate a huge array; small files fail entry by entry below
            if path.suffix not in (".gz", ".bz2") and 4 * v * d > 1 << 26 and smallest > path.stat().st_size:
                raise ValueError(
                    f"{path}: the header announces {v} vectors of dimension {d}, more than its "
                    f"{path.stat().st_size} bytes can hold: the file is truncated or the header is wrong"
                )
            if binary:
                keys, vecs = read_binary(f, path, v, d, encoding, unicode_errors)
            else:
                keys, vecs = read_text(f, path, v, d, datatype, encoding, unicode_errors, first)
        n_read = v
        if len(set(keys)) != len(keys):
            first_of = {}
            for i, k in enumerate(keys):
                first_of.setdefault(k, i)
            warnings.warn(f"{path}: {len(keys) - len(first_of)} repeated words (e.g. "
                          f"{_duplicates(keys)[:3]!r}); kept the first vector of each", stacklevel=2)
            rows = list(first_of.values())
            keys, vecs = [keys[i] for i in rows], vecs[rows]
        if vocab_counts is None:
            counts = n_read - np.arange(len(keys))
        else:
            missing = [k for k in keys if k not in vocab_counts]
            if missing:
                warnings.warn(f"{fvocab}: no count for {len(missing)} words (e.g. {missing[:3]!r}); "
                              "they get count 0", stacklevel=2)
            counts = [vocab_counts.get(k, 0) for k in keys]
        return cls(keys, vecs, counts=counts, dtype=datatype)


def _float_dtype(dtype) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise ValueError(f"vectors are stored as a float dtype (float16/32/64), got {dtype}")
    return dtype


def _duplicates(keys) -> list:
    seen, dup = set(), []
    for k in keys:
        (dup.append if k in seen else seen.add)(k)
    return dup


def _unitvec(v: np.ndarray) -> np.ndarray:
    """``v / |v|`` (zeros stay zeros), the norm taken in float64."""
    v = np.asarray(v)
    n = float(np.sqrt(np.dot(v.astype(np.float64), v.astype(np.float64))))
    return v / n if n > 0 else v


def _as_items(value, sign: float) -> list:
    """gensim's ``positive``/``negative`` forms as ``[(item, weight)]``."""
    if value is None:
        return []
    if isinstance(value, str) or np.isscalar(value) or (isinstance(value, np.ndarray) and value.ndim == 1):
        return [(value, sign)]
    if isinstance(value, np.ndarray) and value.ndim == 2:
        return [(row, sign) for row in value]
    items = []
    for item in value:
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], numbers.Real) \
                and not isinstance(item[1], bool) and isinstance(item[0], (str, np.ndarray)):
            items.append((item[0], float(item[1])))  # (word, weight): the weight replaces the sign
        else:
            items.append((item, sign))
    return items
