"""``KeyedVectors``: words and their vectors, with gensim's query and file API.

Nearest neighbours use cosine similarity on unit-normalised vectors: ``most_similar`` searches a
``FlatIndex(metric="ip")`` of them (the project's blockwise exact top-k; ``index`` exposes it for
batched queries), the other rankings use ``jax.lax.top_k``; files are the word2vec C text/binary
formats, readable and writable by gensim.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from embeddings_jax.index.flat import FlatIndex
from embeddings_jax.ops.similarity import l2_normalize
from embeddings_jax.train.atomic import atomic_write

Key = str


class KeyedVectors:
    """A vocabulary (``index_to_key``, most frequent first) and its ``[V, D]`` vectors."""

    def __init__(self, index_to_key: Sequence[str], vectors: np.ndarray, counts=None):
        if isinstance(index_to_key, str):
            raise TypeError("index_to_key must be a list of words, got a single string")
        index_to_key = list(index_to_key)
        not_str = [k for k in index_to_key if not isinstance(k, str)]
        if not_str:
            raise ValueError(
                f"keys must be strings (words); got {len(not_str)} others, e.g. {not_str[:3]!r}: "
                "convert them with str() first"
            )
        vectors = np.asarray(vectors)
        if np.iscomplexobj(vectors) or not np.issubdtype(vectors.dtype, np.number):
            raise ValueError(f"vectors must be a real numeric [len(keys), D] array, got dtype {vectors.dtype}")
        vectors = vectors.astype(np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(index_to_key):
            raise ValueError(
                f"vectors must be [len(keys), D]; got {vectors.shape} for {len(index_to_key)} keys"
            )
        self.index_to_key = index_to_key
        self.key_to_index = {k: i for i, k in enumerate(self.index_to_key)}
        if len(self.key_to_index) != len(self.index_to_key):
            seen, dup = set(), []
            for k in self.index_to_key:
                (dup.append if k in seen else seen.add)(k)
            raise ValueError(f"duplicate keys in index_to_key: {dup[:5]!r}; every word must appear once")
        self.vectors = vectors
        self.counts = None if counts is None else np.asarray(counts, np.int64)
        if self.counts is not None and self.counts.shape != (len(self),):
            raise ValueError(f"counts must hold one count per key ({len(self)}), got shape {self.counts.shape}")
        self._norms = None
        self._flat = None

    # ------------------------------------------------------------------ basic access
    @property
    def vector_size(self) -> int:
        return self.vectors.shape[1]

    def __len__(self) -> int:
        return len(self.index_to_key)

    def __contains__(self, key: Key) -> bool:
        return key in self.key_to_index

    def has_index_for(self, key: Key) -> bool:
        return key in self.key_to_index

    def get_index(self, key: Key) -> int:
        try:
            return self.key_to_index[key]
        except KeyError:
            raise KeyError(f"word {key!r} is not in the vocabulary ({len(self)} words)") from None

    def get_vector(self, key: Key, norm: bool = False) -> np.ndarray:
        i = self.get_index(key)
        return self.get_normed_vectors()[i] if norm else self.vectors[i]

    def __getitem__(self, keys):
        if isinstance(keys, str):
            return self.get_vector(keys)
        if not isinstance(keys, Iterable):
            raise KeyError(f"look up a word or a list of words, got {keys!r}")
        return np.stack([self.get_vector(k) for k in keys])

    def get_normed_vectors(self) -> np.ndarray:
        """Unit-length rows ``[V, D]`` (zero rows stay zero)."""
        if self._norms is None or self._norms.shape[0] != len(self):
            self._norms = l2_normalize(self.vectors)
        return self._norms

    # ------------------------------------------------------------------ similarity queries
    def _weighted(self, positive, negative):
        positive = [positive] if isinstance(positive, (str, np.ndarray)) or np.isscalar(positive) \
            else list(positive or [])
        negative = [negative] if isinstance(negative, (str, np.ndarray)) or np.isscalar(negative) \
            else list(negative or [])
        items = [(w, 1.0) for w in positive] + [(w, -1.0) for w in negative]
        if not items:
            raise ValueError("most_similar needs at least one positive or negative word")
        for w, _ in items:
            if not isinstance(w, str) and np.shape(w) != (self.vector_size,):
                raise ValueError(
                    f"most_similar takes words (str) or [{self.vector_size}] vectors, got {w!r}"
                )
        missing = [w for w, _ in items if isinstance(w, str) and w not in self.key_to_index]
        if missing:
            raise KeyError(f"words not in the vocabulary: {missing}")
        return items

    def _top(self, scores: np.ndarray, topn: int, exclude: Iterable[int]):
        scores = np.array(scores, dtype=np.float32)
        for i in exclude:
            scores[i] = -np.inf
        k = min(topn, scores.shape[0])
        vals, idx = jax.lax.top_k(jnp.asarray(scores), k)
        return [
            (self.index_to_key[int(i)], float(v))
            for v, i in zip(np.asarray(vals), np.asarray(idx))
            if np.isfinite(v)
        ]

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

    @staticmethod
    def _check_topn(topn) -> int:
        if isinstance(topn, bool) or not isinstance(topn, (int, np.integer)) or topn < 0:
            raise ValueError(f"topn must be a non-negative integer, got {topn!r}")
        return int(topn)

    def index(self, restrict_vocab: int | None = None) -> FlatIndex:
        """An exact inner-product ``FlatIndex`` of the unit vectors of the first ``restrict_vocab``
        words (ids = word indices), built once and reused until the vectors change."""
        normed = self.get_normed_vectors()
        limit = self._limit(restrict_vocab)
        if self._flat is None or self._flat[0] is not normed or self._flat[1] != limit:
            index = FlatIndex(self.vector_size, "ip")
            index.add(normed[:limit])
            self._flat = (normed, limit, index)
        return self._flat[2]

    def most_similar(self, positive=None, negative=None, topn: int = 10, restrict_vocab=None):
        """Words closest (cosine) to the mean of the unit vectors of ``positive`` minus ``negative``.

        Words (or raw vectors) may be given; input words are excluded from the answer (3CosAdd).
        Returns ``[(word, similarity)]``, best first. Raises ``KeyError`` for unknown words.
        """
        topn = self._check_topn(topn)
        items = self._weighted(positive, negative)
        normed = self.get_normed_vectors()
        vecs = [
            normed[self.key_to_index[w]] if isinstance(w, str) else _unit(np.asarray(w, np.float32))
            for w, _ in items
        ]
        query = _unit(np.mean([wt * v for v, (_, wt) in zip(vecs, items)], axis=0))
        index = self.index(restrict_vocab)
        exclude = {self.key_to_index[w] for w, _ in items if isinstance(w, str)}
        k = min(len(index), topn + len(exclude))
        if k <= 0:
            return []
        scores, ids = index.search(query[None], k)
        hits = [(self.index_to_key[i], float(v)) for v, i in zip(scores[0], ids[0])
                if i >= 0 and i not in exclude and np.isfinite(v)]
        return hits[:topn]

    def most_similar_cosmul(
        self, positive=None, negative=None, topn: int = 10, restrict_vocab=None
    ):
        """3CosMul (Levy & Goldberg, 2014): ``prod (1+cos(x,p))/2 / (prod (1+cos(x,n))/2 + 1e-6)``."""
        topn = self._check_topn(topn)
        items = self._weighted(positive, negative)
        normed = self.get_normed_vectors()
        limit = self._limit(restrict_vocab)
        num, den = np.ones(limit, np.float32), np.ones(limit, np.float32)
        for w, wt in items:
            v = (
                normed[self.key_to_index[w]]
                if isinstance(w, str)
                else _unit(np.asarray(w, np.float32))
            )
            sim = (1.0 + normed[:limit] @ v) / 2.0
            if wt > 0:
                num *= sim
            else:
                den *= sim
        exclude = [self.key_to_index[w] for w, _ in items if isinstance(w, str)]
        return self._top(num / (den + 1e-6), topn, [i for i in exclude if i < limit])

    def similar_by_vector(self, vector, topn: int = 10, restrict_vocab=None):
        return self.most_similar(
            positive=[np.asarray(vector)], topn=topn, restrict_vocab=restrict_vocab
        )

    def similarity(self, w1: Key, w2: Key) -> float:
        """Cosine similarity of two words."""
        return float(self.get_vector(w1, norm=True) @ self.get_vector(w2, norm=True))

    def n_similarity(self, ws1: Sequence[Key], ws2: Sequence[Key]) -> float:
        """Cosine similarity of the means of two word sets."""
        if not ws1 or not ws2:
            raise ValueError("n_similarity needs two non-empty word lists")
        return float(_unit(self[ws1].mean(0)) @ _unit(self[ws2].mean(0)))

    def distance(self, w1: Key, w2: Key) -> float:
        return 1.0 - self.similarity(w1, w2)

    def doesnt_match(self, words: Sequence[Key]) -> Key:
        """The word furthest from the mean of the (known) words; unknown words are ignored."""
        known = [w for w in words if w in self.key_to_index]
        if not known:
            raise ValueError(f"none of {list(words)} is in the vocabulary")
        vecs = np.stack([self.get_vector(w, norm=True) for w in known])
        return known[int(np.argmin(vecs @ _unit(vecs.mean(0))))]

    def sentence_vector(self, words: Sequence[Key], pooling: str = "mean", norm: bool = False):
        """Pooled vector of the in-vocabulary ``words`` (``mean``, ``sum`` or ``max``), ``[D]``.

        ``norm=True`` pools unit-normalised word vectors. Returns zeros when no word is known.
        """
        if pooling not in ("mean", "sum", "max"):
            raise ValueError(f"pooling must be 'mean', 'sum' or 'max', got {pooling!r}")
        idx = [self.key_to_index[w] for w in words if w in self.key_to_index]
        if not idx:
            return np.zeros(self.vector_size, np.float32)
        vecs = (self.get_normed_vectors() if norm else self.vectors)[idx]
        return {"mean": vecs.mean, "sum": vecs.sum, "max": vecs.max}[pooling](0)

    def get_mean_vector(self, keys: Sequence[Key], pre_normalize: bool = True) -> np.ndarray:
        """gensim name: mean of the (unit) vectors of the known ``keys``."""
        return self.sentence_vector(keys, "mean", norm=pre_normalize)

    # ------------------------------------------------------------------ evaluation
    def evaluate_word_analogies(
        self, analogies, restrict_vocab: int = 300_000, case_insensitive: bool = True,
        dummy4unknown: bool = False,
    ):  # fmt: skip
        """gensim-compatible analogy accuracy: ``(score, sections)`` (see ``eval.analogy``)."""
        from embeddings_jax.eval.analogy import evaluate_word_analogies

        res = evaluate_word_analogies(
            self, analogies, restrict_vocab, case_insensitive, dummy4unknown
        )
        return res.accuracy, res.sections

    def evaluate_word_pairs(
        self, pairs, delimiter: str = "\t", restrict_vocab: int = 300_000,
        case_insensitive: bool = True, dummy4unknown: bool = False,
    ):  # fmt: skip
        """``(pearson, spearman, oov_ratio_percent)`` on a word-pair similarity file."""
        from embeddings_jax.eval.word_similarity import evaluate_word_pairs

        r = evaluate_word_pairs(
            self, pairs, delimiter, restrict_vocab, case_insensitive, dummy4unknown
        )
        return r.pearson, r.spearman, r.oov_ratio

    # ------------------------------------------------------------------ word2vec C format
    def save_word2vec_format(
        self, fname: str | os.PathLike, binary: bool = False, write_header: bool = True
    ):
        """Writes the word2vec C format (``V D`` header, then one word and its vector per row),
        atomically: an interrupted save leaves the previous file."""
        for k in self.index_to_key:
            if not k or any(ch.isspace() for ch in k):
                raise ValueError(
                    f"word {k!r} is empty or contains whitespace; the format cannot hold it"
                )
        with atomic_write(fname, "wb") as f:
            if write_header:
                f.write(f"{len(self)} {self.vector_size}\n".encode())
            if binary:
                for k, v in zip(self.index_to_key, self.vectors.astype("<f4")):
                    f.write(k.encode("utf-8") + b" " + v.tobytes() + b"\n")
            else:
                for k, v in zip(self.index_to_key, self.vectors):
                    f.write((k + " " + " ".join(repr(float(x)) for x in v) + "\n").encode("utf-8"))

    @classmethod
    def load_word2vec_format(
        cls, fname: str | os.PathLike, binary: bool = False, limit: int | None = None,
        encoding: str = "utf8", unicode_errors: str = "strict",
    ) -> KeyedVectors:  # fmt: skip
        """Reads a word2vec C text or binary file (as written by gensim or the original tool)."""
        path = pathlib.Path(fname)
        if not path.is_file():
            raise FileNotFoundError(f"vector file {path} does not exist")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 0):
            raise ValueError(f"limit must be a non-negative integer or None (all words), got {limit!r}")
        opener = __import__("gzip").open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            try:
                line = f.readline(200)
                header = line.decode(encoding, unicode_errors).split()
                v, d = int(header[0]), int(header[1])
                if not line.endswith(b"\n") or len(header) != 2:
                    raise ValueError
            except (IndexError, ValueError):
                raise ValueError(f"{path}: first line must be '<vocab size> <dimension>'") from None
            if v < 0 or d <= 0:
                raise ValueError(f"{path}: header '{v} {d}' needs a vocabulary size >= 0 and a dimension > 0")
            if limit is not None:
                v = min(v, int(limit))
            smallest = v * (4 * d if binary else 2 * d)  # bytes the entries need at least
            # a wrong header must not allocate a huge array; small files fail entry by entry below
            if path.suffix != ".gz" and 4 * v * d > 1 << 26 and smallest > path.stat().st_size:
                raise ValueError(
                    f"{path}: the header announces {v} vectors of dimension {d}, more than its "
                    f"{path.stat().st_size} bytes can hold: the file is truncated or the header is wrong"
                )
            keys, vecs = [], np.empty((v, d), np.float32)
            for i in range(v):
                if binary:
                    word = bytearray()
                    while (ch := f.read(1)) != b" ":
                        if not ch:
                            raise ValueError(f"{path}: file ends in the middle of entry {i}")
                        if ch != b"\n":  # the original tool ends every vector with a newline
                            word += ch
                    raw = f.read(4 * d)
                    if len(raw) != 4 * d:
                        raise ValueError(f"{path}: truncated vector for entry {i}")
                    if i == 0 and _looks_like_text(raw):
                        raise ValueError(
                            f"{path} is in the word2vec text format (its first vector is written as "
                            "digits), not binary: load it with binary=False"
                        )
                    keys.append(_decode(word, encoding, unicode_errors, path, i, binary))
                    vecs[i] = np.frombuffer(raw, "<f4")
                else:
                    line = f.readline()
                    parts = _decode(line, encoding, unicode_errors, path, i, binary).rstrip().split(" ")
                    if len(parts) != d + 1:
                        raise ValueError(
                            f"{path}: line {i + 2} has {len(parts) - 1} values, expected {d}"
                            + (" (if the file is binary, load it with binary=True)" if i == 0 else "")
                        )
                    keys.append(parts[0])
                    try:
                        vecs[i] = np.asarray(parts[1:], np.float32)
                    except ValueError as e:
                        raise ValueError(f"{path}: line {i + 2}: {e}") from None
        return cls(keys, vecs)


def _looks_like_text(raw: bytes) -> bool:
    """Whether the bytes read as one binary vector are decimal numbers (a text file read as binary)."""
    return not raw.translate(None, b"0123456789.-+eE \n")


def _decode(raw: bytes, encoding: str, errors: str, path, i: int, binary: bool) -> str:
    try:
        return raw.decode(encoding, errors)
    except UnicodeDecodeError:
        hint = "" if binary else " (a binary file read as text? load it with binary=True)"
        raise ValueError(
            f"{path}: entry {i} is not valid {encoding}{hint}; pass encoding= or "
            "unicode_errors='replace' for another encoding"
        ) from None


def _unit(v: np.ndarray) -> np.ndarray:
    return l2_normalize(np.asarray(v))
