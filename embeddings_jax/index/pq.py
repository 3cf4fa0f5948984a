"""Compressed flat indexes: ``PQIndex`` (product quantization, ADC) and ``BinaryIndex`` (sign codes,
Hamming first stage, exact re-scoring)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from embeddings_jax.index.base import (
    check_positive_int,
    check_subquantizers,
    pad_results,
    training_matrix,
)
from embeddings_jax.index.flat import BlockScanIndex
from embeddings_jax.index.sq8 import rescore
from embeddings_jax.ops import quantize, similarity


def adc_score(q_state, block):
    """Asymmetric distance computation: ``sum_m lut[q, m, code_m]`` for a block of codes ``[B, M]``
    (tables query-major, ``[Q, M, ksub]``, as the query batches are cut along the first axis)."""
    (lut,) = q_state
    return quantize.adc_scores(lut, block[0])


def hamming_score(q_state, block):
    """Minus the Hamming distance between packed sign codes (higher is better)."""
    (q_bits,) = q_state
    return -similarity.hamming(q_bits, block[0]).astype(np.float32)


def hamming_shortlist(index, q, query_codes, k: int, allowed):
    """``(scores, positions)`` padded to ``k``: the best ``k * index.rescore`` rows of ``index`` (a
    block-scan index keeping raw vectors ``_x``) by Hamming distance to ``query_codes``, re-ranked
    by exact scores. BinaryIndex's search and LSHIndex's Hamming ranking."""
    n = index.ntotal if allowed is None else int(allowed.sum())
    shortlist = min(n, k * index.rescore)
    _, pos = index._scan(hamming_score, (query_codes,), shortlist, allowed)
    return pad_results(*rescore(q, index._x, pos, index.kernel_metric, min(k, shortlist)), k)


class _CodeIndex(BlockScanIndex):
    """Shared storage of per-vector codes searched blockwise."""

    requires_training = True

    def __init__(self, dim: int, metric: str = "l2", **kwargs):
        kwargs.setdefault("block_size", 1024)
        kwargs.setdefault("query_batch", 256)
        super().__init__(dim, metric, **kwargs)
        self._codes = None
        self._device = None

    def _encode(self, x) -> np.ndarray:
        raise NotImplementedError

    def add(self, x, ids=None) -> None:
        x, ids = self._prepare_add(x, ids)
        codes = self._encode(x)
        self._ids = np.concatenate([self._ids, ids])
        self._codes = codes if self._codes is None else np.concatenate([self._codes, codes])
        self._added(x)
        self._device = None

    def _added(self, x) -> None:
        pass

    def _remove_rows(self, keep) -> None:
        self._codes = self._codes[keep]
        self._device = None

    @property
    def code_bytes(self) -> int:
        return 0 if self._codes is None else self._codes.nbytes

    def _tree(self, positions=None):
        return (self._codes if positions is None else self._codes[positions],)


class PQIndex(_CodeIndex):
    """Product quantization (FAISS IndexPQ, 8 bits per subquantizer): ``m`` bytes per vector.

    Search scores codes against per-query lookup tables (asymmetric distances: the query is not
    quantized). ``D`` is the distance (l2) or inner product to the reconstructed vector.
    """

    def __init__(self, dim: int, metric: str = "l2", m: int = 8, *, iters: int = 20, seed: int = 0, **kwargs):
        super().__init__(dim, metric, **kwargs)
        self.m = check_subquantizers(m, self.dim)
        self.iters, self.seed = check_positive_int(iters, "iters"), int(seed)
        self.codebooks = None

    def train(self, x) -> None:
        x = self._unit_if_cosine(training_matrix(x, self.dim))
        self.codebooks = quantize.train_pq(x, self.m, iters=self.iters, seed=self.seed)
        self._trained = True

    def _encode(self, x):
        return quantize.encode_pq(x, self.codebooks)

    def _vectors(self, positions):
        return quantize.decode_pq(self._codes[positions], self.codebooks)

    def _search(self, q, k, allowed, params):
        metric = self.kernel_metric
        lut = np.asarray(jnp.swapaxes(quantize.pq_lut(jnp.asarray(q), jnp.asarray(self.codebooks), metric), 0, 1))
        scores, pos = self._scan(adc_score, (lut,), k, allowed)
        if metric == "l2":  # scores are -||q - x_hat||^2; _finish expects q.x - ||x||^2 / 2
            scores = 0.5 * (scores + np.sum(q * q, axis=1)[:, None])
        return scores, pos

    def _config(self):
        return {**super()._config(), "m": self.m, "iters": self.iters, "seed": self.seed}

    def _arrays(self):
        out = {"codes": self._codes if self._codes is not None else np.zeros((0, self.m), np.uint8)}
        if self.codebooks is not None:
            out["codebooks"] = self.codebooks
        return out

    def _array_specs(self, n):
        specs = {"codes": (np.uint8, (n, self.m))}
        if self._trained:
            specs["codebooks"] = (np.float32, (self.m, 256, self.dim // self.m))
        return specs

    def _restore(self, arrays):
        self._codes, self.codebooks = arrays["codes"], arrays.get("codebooks")


class BinaryIndex(_CodeIndex):
    """Sign codes of the centred vectors (1 bit per dimension, 32x smaller than float32) scanned by
    Hamming distance; the best ``rescore * k`` candidates are re-scored exactly against float32
    vectors kept on the host. ``train`` learns the centring mean."""

    def __init__(self, dim: int, metric: str = "l2", *, rescore: int = 10, **kwargs):
        super().__init__(dim, metric, **kwargs)
        if isinstance(rescore, bool) or not isinstance(rescore, (int, np.integer)) or rescore < 1:
            raise ValueError(f"rescore must be an integer >= 1 (Hamming is only a first stage), got {rescore!r}")
        self.rescore = int(rescore)
        self.mean = None
        self._x = np.zeros((0, self.dim), np.float32)

    def train(self, x) -> None:
        x = self._unit_if_cosine(training_matrix(x, self.dim))
        self.mean = x.mean(axis=0).astype(np.float32)
        self._trained = True

    def _encode(self, x):
        return quantize.binary_codes(x - self.mean)

    def _added(self, x) -> None:
        self._x = np.concatenate([self._x, x])

    def _remove_rows(self, keep) -> None:
        super()._remove_rows(keep)
        self._x = self._x[keep]

    def _vectors(self, positions):
        return self._x[positions]

    def _search(self, q, k, allowed, params):
        return hamming_shortlist(self, q, quantize.binary_codes(q - self.mean), k, allowed)

    def _config(self):
        return {**super()._config(), "rescore": self.rescore}

    def _arrays(self):
        out = {"codes": self._codes if self._codes is not None else np.zeros((0, -(-self.dim // 8)), np.uint8),
               "x": self._x}
        if self.mean is not None:
            out["mean"] = self.mean
        return out

    def _array_specs(self, n):
        specs = {"codes": (np.uint8, (n, -(-self.dim // 8))), "x": (np.float32, (n, self.dim))}
        if self._trained:
            specs["mean"] = (np.float32, (self.dim,))
        return specs

    def _restore(self, arrays):
        self._codes, self._x, self.mean = arrays["codes"], arrays["x"], arrays.get("mean")
