"""``SQ8Index``: 8-bit scalar quantization (FAISS IndexScalarQuantizer QT_8bit), optional exact re-scoring."""

from __future__ import annotations

import numpy as np

from embeddings_jax.index.base import (
    as_matrix,
    check_positive_int,
    pad_results,
    training_matrix,
)
from embeddings_jax.index.flat import BlockScanIndex, ip_score, l2_score
from embeddings_jax.ops import quantize, similarity


def sq8_vec_ip(q_state, block):
    """Per-vector scales: ``(q . codes_n) * s_n + sum(q) * o_n``."""
    q, q_sum = q_state
    codes, scale, offset = block[:3]
    return similarity.dot(q, codes) * scale[None, :] + q_sum[:, None] * offset[None, :]


def sq8_vec_l2(q_state, block):
    return sq8_vec_ip(q_state, block) - block[3][None, :]


def rescore(q: np.ndarray, x: np.ndarray, positions: np.ndarray, metric: str, k: int, batch: int = 256):
    """Exact higher-is-better scores (``q.x`` or ``q.x - ||x||^2/2``) of shortlisted ``positions [Q, K]``
    (``-1`` = none) against stored vectors ``x``; returns the best ``k`` ``(scores, positions)``, ties
    to the lower position."""
    out_s = np.empty((len(q), k), np.float32)
    out_p = np.empty((len(q), k), np.int64)
    for start in range(0, len(q), batch):
        pos = positions[start:start + batch]
        cand = x[np.maximum(pos, 0)]  # [b, K, D]
        s = np.einsum("bd,bkd->bk", q[start:start + batch], cand)
        if metric == "l2":
            s = s - 0.5 * np.einsum("bkd,bkd->bk", cand, cand)
        s = np.where(pos < 0, -np.inf, s).astype(np.float32)
        order = np.lexsort((np.where(pos < 0, np.iinfo(np.int64).max, pos), -s), axis=-1)[:, :k]
        out_s[start:start + batch] = np.take_along_axis(s, order, 1)
        out_p[start:start + batch] = np.take_along_axis(pos, order, 1)
    return out_s, out_p


class SQ8Index(BlockScanIndex):
    """8-bit scalar quantization: uint8 codes (4x smaller than float32) searched blockwise like ``FlatIndex``.

    Args:
      dim, metric: as ``FlatIndex``.
      scales: ``"dimension"`` (per-dimension [min, max] learned by ``train``) or ``"vector"`` (per-vector
        min/max at ``add`` time; ``train`` is then a no-op).
      rescore: ``0`` = return quantized scores; ``r > 0`` = take ``r * k`` candidates from the codes and
        re-score them exactly against float32 vectors kept on the host (like FAISS IndexRefineFlat).
    """

    requires_training = True

    def __init__(self, dim: int, metric: str = "l2", *, scales: str = "dimension", rescore: int = 0, **kwargs):
        if scales not in ("dimension", "vector"):
            raise ValueError(f"scales must be 'dimension' or 'vector', got {scales!r}")
        self.scales = scales
        self.requires_training = scales == "dimension"
        super().__init__(dim, metric, **kwargs)
        self.rescore = 0 if rescore == 0 else check_positive_int(rescore, "rescore (0 or the shortlist factor)")
        self._codes = np.zeros((0, self.dim), np.uint8)
        self._vec_scale = np.zeros((0,), np.float32)  # per-vector mode
        self._vec_offset = np.zeros((0,), np.float32)
        self._x = np.zeros((0, self.dim), np.float32)  # exact vectors for re-scoring
        self.scale = self.offset = None
        self._device = None

    def train(self, x) -> None:
        """Learns per-dimension ranges (no-op with ``scales="vector"``)."""
        x = training_matrix(x, self.dim) if self.scales == "dimension" else as_matrix(x, self.dim, "training vectors")
        if self.scales == "dimension":
            x = self._unit_if_cosine(x)
            self.scale, self.offset = quantize.train_sq8(x)
        self._trained = True

    def add(self, x, ids=None) -> None:
        x, ids = self._prepare_add(x, ids)
        if self.scales == "dimension":
            codes = quantize.encode_sq8(x, self.scale, self.offset)
        else:
            codes, s, o = quantize.encode_sq8_per_vector(x)
            self._vec_scale = np.concatenate([self._vec_scale, s[:, 0]])
            self._vec_offset = np.concatenate([self._vec_offset, o[:, 0]])
        self._ids = np.concatenate([self._ids, ids])
        self._codes = np.concatenate([self._codes, codes])
        if self.rescore:
            self._x = np.concatenate([self._x, x])
        self._device = None

    def _remove_rows(self, keep):
        self._codes = self._codes[keep]
        if self.scales == "vector":
            self._vec_scale, self._vec_offset = self._vec_scale[keep], self._vec_offset[keep]
        if self.rescore:
            self._x = self._x[keep]
        self._device = None

    def decode(self, positions: np.ndarray | None = None) -> np.ndarray:
        """Reconstructed vectors ``[ntotal, dim]`` (or ``[len(positions), dim]``)."""
        rows = slice(None) if positions is None else positions
        if self.scales == "dimension":
            return quantize.decode_sq8(self._codes[rows], self.scale, self.offset)
        return quantize.decode_sq8(self._codes[rows], self._vec_scale[rows, None], self._vec_offset[rows, None])

    def _vectors(self, positions):
        """The vectors distances are reported to: exact with re-scoring, else decoded."""
        return self._x[positions] if self.rescore else self.decode(positions)

    @property
    def code_bytes(self) -> int:
        """Bytes of the searched codes (excluding the float32 re-scoring store)."""
        return self._codes.nbytes + self._vec_scale.nbytes + self._vec_offset.nbytes

    def _tree(self, positions=None):
        rows = slice(None) if positions is None else positions
        tree = (self._codes[rows],)
        if self.scales == "vector":
            tree = tree + (self._vec_scale[rows], self._vec_offset[rows])
        if self.metric == "l2":
            xhat = self.decode(positions)
            tree = tree + (0.5 * np.sum(xhat * xhat, axis=1),)
        return tree

    def _search(self, q, k, allowed, params):
        n = self.ntotal if allowed is None else int(allowed.sum())
        metric = self.kernel_metric
        shortlist = min(n, k * self.rescore) if self.rescore else k
        if self.scales == "dimension":
            # Per-dimension scales folded into the query: the flat scores of ``q * scale`` against
            # the codes (the ``q . offset`` term is per query and added back on the host).
            fn = l2_score if metric == "l2" else ip_score
            state = (q * self.scale,)
        else:
            fn = sq8_vec_l2 if metric == "l2" else sq8_vec_ip
            state = (q, q.sum(axis=1))
        scores, pos = self._scan(fn, state, max(shortlist, 1), allowed)
        if self.scales == "dimension":
            scores = scores + (q @ self.offset)[:, None]
        if self.rescore:
            scores, pos = rescore(q, self._x, pos, metric, min(k, shortlist))
        return pad_results(scores, pos, k)  # k > ntotal with re-scoring

    def _config(self):
        return {**super()._config(), "scales": self.scales, "rescore": self.rescore}

    def _arrays(self):
        arrays = {"codes": self._codes, "vec_scale": self._vec_scale, "vec_offset": self._vec_offset, "x": self._x}
        if self.scale is not None:
            arrays.update(scale=self.scale, offset=self.offset)
        return arrays

    def _array_specs(self, n):
        per_vector = n if self.scales == "vector" else 0
        specs = {"codes": (np.uint8, (n, self.dim)), "vec_scale": (np.float32, (per_vector,)),
                 "vec_offset": (np.float32, (per_vector,)), "x": (np.float32, (n if self.rescore else 0, self.dim))}
        if self.scales == "dimension" and self._trained:
            specs.update(scale=(np.float32, (self.dim,)), offset=(np.float32, (self.dim,)))
        return specs

    def _restore(self, arrays):
        self._codes, self._x = arrays["codes"], arrays["x"]
        self._vec_scale, self._vec_offset = arrays["vec_scale"], arrays["vec_offset"]
        self.scale, self.offset = arrays.get("scale"), arrays.get("offset")
        self._device = None
