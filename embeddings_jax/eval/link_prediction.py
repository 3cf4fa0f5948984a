"""Link prediction from node vectors: score held-out edges against non-edges, report ROC AUC."""

from __future__ import annotations

import numpy as np


def roc_auc(positive_scores, negative_scores) -> float:
    """Area under the ROC curve: the probability that a random positive outscores a random
    negative, ties counting one half (the Mann-Whitney U statistic over ``P * N``), by one sort."""
    pos, neg = np.asarray(positive_scores, np.float64), np.asarray(negative_scores, np.float64)
    if pos.size == 0 or neg.size == 0:
        raise ValueError("roc_auc needs at least one positive and one negative score")
    if not (np.isfinite(pos).all() and np.isfinite(neg).all()):
        raise ValueError("scores must be finite")
    scores = np.concatenate([pos, neg])
    order = np.argsort(scores, kind="stable")
    ranks = np.empty(scores.size)
    sorted_scores = scores[order]
    # Average ranks (1-based) over runs of equal scores.
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    ends = np.r_[starts[1:], scores.size]
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    u = ranks[: pos.size].sum() - pos.size * (pos.size + 1) / 2.0
    return float(u / (pos.size * neg.size))


def cosine_link_scores(vectors, pairs) -> np.ndarray:
    """``[M]`` cosine similarity of the two endpoints of each ``pairs [M, 2]`` row of node ids."""
    v = np.asarray(vectors, np.float64)
    pairs = np.asarray(pairs, np.int64)
    if pairs.ndim != 2 or pairs.shape[1] != 2:
        raise ValueError(f"pairs must be [M, 2] node ids, got shape {pairs.shape}")
    if pairs.size and (pairs.min() < 0 or pairs.max() >= v.shape[0]):
        raise ValueError(f"pair node ids must lie in [0, {v.shape[0]})")
    unit = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    return np.einsum("md,md->m", unit[pairs[:, 0]], unit[pairs[:, 1]])


def link_prediction_auc(vectors, positive, negative) -> float:
    """ROC AUC of cosine scores of held-out edges ``positive [M, 2]`` against non-edges
    ``negative [M', 2]`` (e.g. :func:`embeddings_jax.data.graphs.split_edges`)."""
    return roc_auc(cosine_link_scores(vectors, positive), cosine_link_scores(vectors, negative))
