"""Node (or any item) classification from frozen vectors: stratified folds, F1, cross-validation.

The protocol of node-embedding papers (DeepWalk, node2vec): a linear classifier on the vectors,
scored by macro-F1 (the mean of per-class F1, so small classes count as much as large ones) and
micro-F1 (accuracy, for single-label data) on held-out nodes.
"""

from __future__ import annotations

import numpy as np

from embeddings_jax.eval.linear_probe import linear_probe_predict


def macro_f1(y_true, y_pred, num_classes: int | None = None) -> float:
    """Mean over classes of ``2 TP / (2 TP + FP + FN)``; a class absent from both ``y_true`` and
    ``y_pred`` is skipped (scikit-learn's ``f1_score(average="macro")`` over the present labels)."""
    y_true, y_pred = np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(f"y_true and y_pred must be 1-D of one length, got {y_true.shape} and {y_pred.shape}")
    k = int(max(y_true.max(initial=-1), y_pred.max(initial=-1)) + 1) if num_classes is None else num_classes
    tp = np.bincount(y_true[y_true == y_pred], minlength=k).astype(np.float64)
    true, pred = np.bincount(y_true, minlength=k), np.bincount(y_pred, minlength=k)
    present = (true + pred) > 0
    return float(np.mean(2 * tp[present] / (true + pred)[present]))


def stratified_folds(labels, k: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` (train ids, test ids) pairs; each class's members are shuffled and dealt round-robin
    over the folds (offset per class), so every fold holds each class in proportion, +-1.

    Raises:
      ValueError: ``k < 2``, or a class with fewer than ``k`` members.
    """
    labels = np.asarray(labels)
    if not isinstance(k, (int, np.integer)) or k < 2:
        raise ValueError(f"k must be an integer >= 2, got {k!r}")
    classes, counts = np.unique(labels, return_counts=True)
    if counts.min() < k:
        raise ValueError(f"class {classes[counts.argmin()].item()!r} has {counts.min()} members, fewer than "
                         f"the {k} folds; use fewer folds")
    rng = np.random.default_rng(seed)
    fold = np.empty(labels.size, np.int64)
    offset = 0
    for c in classes:
        members = rng.permutation(np.flatnonzero(labels == c))
        fold[members] = (offset + np.arange(members.size)) % k
        offset += members.size
    return [(np.flatnonzero(fold != f), np.flatnonzero(fold == f)) for f in range(k)]


def cross_validate(vectors, labels, folds: int = 5, seed: int = 0, steps: int = 300,
                   l2: float = 1e-4) -> dict[str, list[float]]:
    """Stratified ``folds``-fold cross-validation of a linear probe on ``vectors [N, D]`` for
    ``labels [N]`` (ints from 0): ``{"accuracy": [...], "macro_f1": [...]}``, one value a fold."""
    x, y = np.asarray(vectors, np.float32), np.asarray(labels, np.int64)
    if x.ndim != 2 or x.shape[0] != y.size:
        raise ValueError(f"vectors must be [N, D] with one label each, got {x.shape} and {y.shape}")
    k = int(y.max()) + 1
    out = {"accuracy": [], "macro_f1": []}
    for train, test in stratified_folds(y, folds, seed):
        pred = linear_probe_predict(x[train], y[train], x[test], steps, l2, num_classes=k)
        out["accuracy"].append(float(np.mean(pred == y[test])))
        out["macro_f1"].append(macro_f1(y[test], pred, k))
    return out
