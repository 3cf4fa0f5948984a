"""Cross-lingual word mapping: a linear map from one language's word vectors onto another's.

    >>> m = CrossLingualMapping(en.wv, fr.wv, method="procrustes").fit(train_pairs, refine=5)
    >>> m.translate(["one", "house"], topn=5)        # [[("un", 0.41), ...], ...]
    >>> m.evaluate(test_pairs)                       # {"precision@1": ..., "coverage": ...}
    >>> m = CrossLingualMapping(en.wv, fr.wv, method="vecmap").fit_unsupervised()

Methods (:mod:`embeddings_jax.ops.alignment`): ``least_squares`` (Mikolov et al., 2013's translation
matrix), ``procrustes`` (orthogonal), ``vecmap`` (whitening, orthogonal map, re-weighting,
de-whitening; Artetxe et al., 2018). Retrieval is nearest neighbour (``"nn"``) or CSLS
(``"csls"``, Conneau et al., 2018). Refinement and the unsupervised mode are one self-learning
loop: fit the map on a dictionary, induce a new dictionary among the ``vocab`` most frequent
words of each side (CSLS, both directions), repeat until the mean CSLS score stops improving.
The unsupervised mode starts from the dictionary matching each word's sorted similarity
distribution (VecMap), with stochastic dictionary induction.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from embeddings_jax.eval.retrieval import ranking_metrics
from embeddings_jax.ops import alignment
from embeddings_jax.ops.similarity import l2_normalize
from embeddings_jax.vectors import KeyedVectors

METHODS = ("least_squares", "procrustes", "vecmap")
RETRIEVALS = ("nn", "csls")


@dataclasses.dataclass
class SelfLearning:
    """Settings of the self-learning loop (refinement and the unsupervised mode)."""

    vocab: int = 20000  # most frequent words of each side that the induced dictionaries use
    max_iterations: int = 100
    threshold: float = 1e-6  # stop when the objective improves by less
    keep_prob: float = 1.0  # initial stochastic keep probability (VecMap: 0.1 unsupervised)
    patience: int = 50  # iterations without improvement before keep_prob doubles


class CrossLingualMapping:
    """A map of ``source`` vectors into ``target``'s space, fitted on a dictionary or without one.

    Args:
      source, target: the two languages' :class:`KeyedVectors` (most frequent words first).
      method: one of :data:`METHODS`. retrieval: ``"csls"`` (default) or ``"nn"``.
      csls_k: neighbourhood size of CSLS. seed: PRNG seed of stochastic dictionary induction.
    """

    def __init__(self, source: KeyedVectors, target: KeyedVectors, method: str = "procrustes",
                 retrieval: str = "csls", csls_k: int = 10, seed: int = 0):
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        if retrieval not in RETRIEVALS:
            raise ValueError(f"retrieval must be one of {RETRIEVALS}, got {retrieval!r}")
        if method != "least_squares" and source.vector_size != target.vector_size:
            raise ValueError(f"method {method!r} maps between equal dimensions; the vectors have "
                             f"{source.vector_size} and {target.vector_size}: use 'least_squares'")
        if csls_k < 1 or csls_k > min(len(source), len(target)):
            raise ValueError(f"csls_k must be in [1, {min(len(source), len(target))}], got {csls_k}")
        self.source, self.target = source, target
        self.method, self.retrieval, self.csls_k, self.seed = method, retrieval, csls_k, seed
        self.x = alignment.normalize_embeddings(jnp.asarray(source.vectors))
        self.z = alignment.normalize_embeddings(jnp.asarray(target.vectors))
        self.wx = self.wz = None
        self.dictionary = None  # (src ids, trg ids) the last map was fitted on
        self.history: list[float] = []  # self-learning objective per iteration

    # ---------------------------------------------------------------- fitting
    def dictionary_ids(self, pairs: Sequence[tuple[str, str]]) -> tuple[np.ndarray, np.ndarray]:
        """``(src ids, trg ids)`` of the pairs with both words in the vocabularies."""
        s, t = self.source.key_to_index, self.target.key_to_index
        kept = [(s[a], t[b]) for a, b in pairs if a in s and b in t]
        if not kept:
            raise ValueError(f"no pair of the dictionary ({len(pairs)} pairs) has its source word in the "
                             "source vocabulary and its target word in the target vocabulary: check the "
                             "direction and the casing of the dictionary")
        src, trg = np.array(kept, np.int32).T
        return src, trg

    def fit(self, pairs: Sequence[tuple[str, str]], refine: int = 0,
            self_learning: SelfLearning | None = None) -> CrossLingualMapping:
        """Fits the map on ``pairs`` (``(source word, target word)``); with ``refine > 0``, up to
        ``refine`` self-learning iterations follow, each on the seed pairs plus the induced ones."""
        src, trg = self.dictionary_ids(pairs)
        self._solve(src, trg)
        if refine:
            sl = dataclasses.replace(self_learning or SelfLearning(), max_iterations=refine)
            self._self_learn(sl, seed_pairs=(src, trg))
        return self

    def fit_unsupervised(self, init_vocab: int = 4000,
                         self_learning: SelfLearning | None = None) -> CrossLingualMapping:
        """Fits the map without a dictionary: the first dictionary matches the sorted similarity
        distributions of the ``init_vocab`` most frequent words of each side (CSLS, both
        directions), then self-learning with stochastic induction (``keep_prob`` 0.1 by default)."""
        n = min(init_vocab, len(self.source), len(self.target))
        if n < 2 * self.csls_k:
            raise ValueError(f"init_vocab={init_vocab} leaves {n} words; need at least {2 * self.csls_k}")
        xs = alignment.similarity_distribution(self.x, n)
        zs = alignment.similarity_distribution(self.z, n)
        fwd, bwd, _ = alignment.induce_dictionary(xs, zs, jax.random.key(self.seed), 1.0, self.csls_k)
        src = np.concatenate([np.arange(n), np.asarray(bwd)]).astype(np.int32)
        trg = np.concatenate([np.asarray(fwd), np.arange(n)]).astype(np.int32)
        self._solve(src, trg)
        self._self_learn(self_learning or SelfLearning(keep_prob=0.1))
        return self

    def _solve(self, src: np.ndarray, trg: np.ndarray) -> None:
        x, z = self.x[src], self.z[trg]
        if self.method == "least_squares":
            self.wx, self.wz = alignment.least_squares_map(x, z), None
        elif self.method == "procrustes":
            self.wx, self.wz = alignment.procrustes(x, z), None
        else:
            self.wx, self.wz = alignment.vecmap_maps(x, z)
        self.dictionary = (src, trg)

    def _self_learn(self, sl: SelfLearning, seed_pairs=None) -> None:
        n = min(sl.vocab, len(self.source), len(self.target))
        key = jax.random.key(self.seed)
        keep, best, since = sl.keep_prob, -np.inf, 0
        for it in range(sl.max_iterations):
            xw, zw = self._mapped()
            fwd, bwd, objective = alignment.induce_dictionary(
                xw[:n], zw[:n], jax.random.fold_in(key, it), keep, self.csls_k
            )
            objective = float(objective)
            self.history.append(objective)
            src = [np.arange(n), np.asarray(bwd)]
            trg = [np.asarray(fwd), np.arange(n)]
            if seed_pairs is not None:
                src.append(seed_pairs[0])
                trg.append(seed_pairs[1])
            self._solve(np.concatenate(src).astype(np.int32), np.concatenate(trg).astype(np.int32))
            if objective - best >= sl.threshold:
                best, since = objective, 0
            else:
                since += 1
            if keep < 1.0 and since >= sl.patience:  # anneal: less noise, then measure afresh
                keep, best, since = min(1.0, 2.0 * keep), -np.inf, 0
            elif keep >= 1.0 and since > 0:
                break

    # ---------------------------------------------------------------- using the map
    def _mapped(self) -> tuple[jax.Array, jax.Array]:
        """Unit rows of both sides in the shared space."""
        if self.wx is None:
            raise ValueError("the mapping is not fitted: call fit(pairs) or fit_unsupervised() first")
        xw = self.x @ self.wx
        zw = self.z if self.wz is None else self.z @ self.wz
        return l2_normalize(xw), l2_normalize(zw)

    def ranked_ids(self, src_ids: np.ndarray, topn: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """``(ids [Q, topn], scores [Q, topn])`` of the target words retrieved for source ids."""
        xw, zw = self._mapped()
        q = xw[jnp.asarray(src_ids, jnp.int32)]
        topn = min(topn, len(self.target))
        if self.retrieval == "nn":
            scores, ids = alignment.nearest_topn(q, zw, topn)
        else:
            k = self.csls_k
            r_q = alignment.mean_topk_similarity(q, zw, k)
            r_z = alignment.mean_topk_similarity(zw, xw, k)
            scores, ids = alignment.csls_topn(q, zw, r_q, r_z, topn)
        return np.asarray(ids), np.asarray(scores)

    def translate(self, words: Sequence[str], topn: int = 10) -> list[list[tuple[str, float]]]:
        """The ``topn`` target words of each source word, best first, with their scores."""
        missing = [w for w in words if w not in self.source.key_to_index]
        if missing:
            raise KeyError(f"not in the source vocabulary: {missing[:5]!r}")
        ids, scores = self.ranked_ids(np.array([self.source.key_to_index[w] for w in words]), topn)
        keys = self.target.index_to_key
        return [[(keys[i], float(s)) for i, s in zip(row, srow)] for row, srow in zip(ids, scores)]

    def evaluate(self, pairs: Sequence[tuple[str, str]], ks: Sequence[int] = (1, 5, 10)) -> dict:
        """Bilingual lexicon induction: ``precision@k`` = share of the source words (with a
        translation in the target vocabulary) whose top ``k`` holds one of their translations,
        ``coverage`` = share of the dictionary's source words that could be evaluated."""
        src, trg = self.dictionary_ids(pairs)
        gold: dict[int, set[int]] = {}
        for s, t in zip(src.tolist(), trg.tolist()):
            gold.setdefault(s, set()).add(t)
        queries = np.array(sorted(gold), np.int32)
        ids, _ = self.ranked_ids(queries, max(ks))
        hits = ranking_metrics(ids, [gold[q] for q in queries.tolist()], ks, metrics=("hit_rate",))
        out = {f"precision@{k}": hits[f"hit_rate@{k}"] for k in ks}
        out["coverage"] = len(gold) / len({a for a, _ in pairs})
        out["words"] = len(gold)
        return out
