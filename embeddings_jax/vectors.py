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

Key = str


class KeyedVectors:
    """A vocabulary (``index_to_key``, most frequent first) and its ``[V, D]`` vectors."""

    def __init__(self, index_to_key: Sequence[str], vectors: np.ndarray, counts=None):
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(index_to_key):
            raise ValueError(
                f"vectors must be [len(keys), D]; got {vectors.shape} for {len(index_to_key)} keys"
            )
        self.index_to_key = list(index_to_key)
        self.key_to_index = {k: i for i, k in enumerate(self.index_to_key)}
        if len(self.key_to_index) != len(self.index_to_key):
            raise ValueError("duplicate keys in index_to_key")
        self.vectors = vectors
        self.counts = None if counts is None else np.asarray(counts, np.int64)
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
        return np.stack([self.get_vector(k) for k in keys])

    def get_normed_vectors(self) -> np.ndarray:
        """Unit-length rows ``[V, D]`` (zero rows stay zero)."""
        if self._norms is None or self._norms.shape[0] != len(self):
            norms = np.linalg.norm(self.vectors, axis=1, keepdims=True)
            self._norms = self.vectors / np.maximum(norms, 1e-12)
        return self._norms

    # ------------------------------------------------------------------ similarity queries
    def _weighted(self, positive, negative):
        positive = [positive] if isinstance(positive, (str, np.ndarray)) else list(positive or [])
        negative = [negative] if isinstance(negative, (str, np.ndarray)) else list(negative or [])
        items = [(w, 1.0) for w in positive] + [(w, -1.0) for w in negative]
        if not items:
            raise ValueError("most_similar needs at least one positive or negative word")
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

    def index(self, restrict_vocab: int | None = None) -> FlatIndex:
        """An exact inner-product ``FlatIndex`` of the unit vectors of the first ``restrict_vocab``
        words (ids = word indices), built once and reused until the vectors change."""
        normed = self.get_normed_vectors()
        limit = len(self) if restrict_vocab is None else min(restrict_vocab, len(self))
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
        items = self._weighted(positive, negative)
        normed = self.get_normed_vectors()
        limit = len(self) if restrict_vocab is None else min(restrict_vocab, len(self))
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
        """Writes the word2vec C format (``V D`` header, then one word and its vector per row)."""
        for k in self.index_to_key:
            if not k or any(ch.isspace() for ch in k):
                raise ValueError(
                    f"word {k!r} is empty or contains whitespace; the format cannot hold it"
                )
        with open(fname, "wb") as f:
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
        opener = __import__("gzip").open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            header = f.readline().decode(encoding, unicode_errors).split()
            try:
                v, d = int(header[0]), int(header[1])
            except (IndexError, ValueError):
                raise ValueError(f"{path}: first line must be '<vocab size> <dimension>'") from None
            if limit is not None:
                v = min(v, limit)
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
                    keys.append(word.decode(encoding, unicode_errors))
                    vecs[i] = np.frombuffer(raw, "<f4")
                else:
                    parts = f.readline().decode(encoding, unicode_errors).rstrip().split(" ")
                    if len(parts) != d + 1:
                        raise ValueError(
                            f"{path}: line {i + 2} has {len(parts) - 1} values, expected {d}"
                        )
                    keys.append(parts[0])
                    vecs[i] = np.asarray(parts[1:], np.float32)
        return cls(keys, vecs)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-12)
