"""Ranking metrics for retrieval and recommendation: precision, recall, nDCG, MAP, hit rate, MRR at k.

Inputs are the same for every metric:

* ``ranked``: int array ``[Q, K]``, row ``q`` the ids returned for query ``q``, best first.
  ``-1`` marks an empty slot (as FAISS returns when fewer than ``K`` candidates exist); it is
  never relevant. Ids inside a row must be distinct.
* ``relevant``: the relevant ids of each query, either a sequence of ``Q`` iterables (sets,
  lists, arrays) or an int array ``[Q, R]`` padded with ``-1``. Relevance is binary.

Definitions (``hit_j`` = 1 when the id at rank ``j = 1..k`` is relevant, ``R_q`` = number of
relevant ids of query ``q``); each metric is the mean over queries of:

============  =====================================================================
precision@k   ``sum_j hit_j / k`` (divides by ``k`` even if a row has fewer ids)
recall@k      ``sum_j hit_j / R_q`` (the denominator is ``R_q``, not ``min(R_q, k)``)
ndcg@k        ``DCG / IDCG`` with ``DCG = sum_j hit_j / log2(j + 1)`` and the ideal DCG over
              ``min(k, R_q)`` hits at the top ranks
map@k         ``sum_j hit_j * precision@j / min(R_q, k)`` (``map_denominator="min"``) or
              ``/ R_q`` (``"all"``)
hit_rate@k    1 when any of the first ``k`` ids is relevant (= recall@k for one relevant id)
mrr@k         ``1 / rank`` of the first relevant id within ``k``, else 0
============  =====================================================================

These match ``recommenders.evaluation.python_evaluation`` (Microsoft Recommenders) for
``relevancy_method="top_k"`` and binary relevance: its ``precision_at_k``, ``recall_at_k``,
``ndcg_at_k`` (the log base cancels in the ratio) and ``map_at_k`` (``/ min(R_q, k)``; its
``map`` is our ``map_denominator="all"``). As there, queries without relevant ids are left out
of the mean (``empty="skip"``); pass ``empty="zero"`` to count them as 0 or ``"error"`` to refuse.

Example::

    ranked = np.array([[3, 1, 7], [2, 5, -1]])
    ranking_metrics(ranked, [{1, 7}, {9}], ks=(1, 3))
    # {'precision@1': 0.0, 'recall@1': 0.0, ..., 'ndcg@3': 0.3467..., ...}
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from embeddings_jax.index.flat import FlatIndex

METRICS = ("precision", "recall", "ndcg", "map", "hit_rate", "mrr")


def pad_relevant(relevant: Sequence[Iterable[int]] | np.ndarray) -> np.ndarray:
    """Per-query relevant ids as an int64 array ``[Q, R]`` padded with -1 (duplicates removed)."""
    if isinstance(relevant, np.ndarray) and relevant.ndim == 2:
        rel = relevant.astype(np.int64, copy=False)
        if rel.size and rel.min() < -1:
            raise ValueError("relevant ids must be >= 0 (-1 marks padding)")
        # Duplicates inside a padded row would inflate R_q: drop them.
        srt = np.sort(rel, axis=1)
        dup = np.zeros_like(srt, dtype=bool)
        dup[:, 1:] = srt[:, 1:] == srt[:, :-1]
        if (dup & (srt >= 0)).any():
            srt = np.where(dup, -1, srt)
            return -np.sort(-srt, axis=1)
        return rel
    rows = [np.unique(np.fromiter((int(i) for i in r), dtype=np.int64)) for r in relevant]
    width = max((len(r) for r in rows), default=0)
    out = np.full((len(rows), max(width, 1)), -1, dtype=np.int64)
    for q, r in enumerate(rows):
        if r.size and r[0] < 0:
            raise ValueError(f"relevant ids of query {q} contain negative values {r[r < 0][:3]}")
        out[q, : len(r)] = r
    return out


def hits_matrix(ranked: np.ndarray, relevant: Sequence[Iterable[int]] | np.ndarray) -> np.ndarray:
    """Bool ``[Q, K]``: whether ``ranked[q, j]`` is among the relevant ids of query ``q``.

    Vectorised over all queries: ids are made unique per query as ``q * M + id`` and looked up
    with one ``np.isin``, so the cost is ``O((Q K + sum R) log)`` whatever the id range.
    """
    ranked = _check_ranked(ranked)
    rel = pad_relevant(relevant)
    if rel.shape[0] != ranked.shape[0]:
        raise ValueError(
            f"ranked has {ranked.shape[0]} queries but relevant has {rel.shape[0]}; "
            "give one set of relevant ids per query"
        )
    m = int(max(ranked.max(initial=0), rel.max(initial=0))) + 1
    q = np.arange(ranked.shape[0], dtype=np.int64)[:, None]
    rel_keys = (q * m + rel)[rel >= 0]
    keys = q * m + ranked
    return np.isin(keys, rel_keys) & (ranked >= 0)


def per_query_metrics(
    ranked: np.ndarray,
    relevant: Sequence[Iterable[int]] | np.ndarray,
    k: int,
    *,
    metrics: Sequence[str] = METRICS,
    map_denominator: str = "min",
) -> dict[str, np.ndarray]:
    """Each metric at cutoff ``k`` for each query: ``{name: float64 [Q]}``.

    Queries with no relevant ids get NaN for recall, nDCG and MAP, 0 for the others.
    """
    ranked = _check_ranked(ranked)
    _check_k(k, ranked.shape[1])
    unknown = set(metrics) - set(METRICS)
    if unknown:
        raise ValueError(f"unknown metrics {sorted(unknown)}; choose from {METRICS}")
    if map_denominator not in ("min", "all"):
        raise ValueError(f"map_denominator must be 'min' or 'all', got {map_denominator!r}")
    rel = pad_relevant(relevant)
    n_rel = (rel >= 0).sum(axis=1).astype(np.float64)
    hits = hits_matrix(ranked[:, :k], rel).astype(np.float64)  # [Q, k]
    n_hits = hits.sum(axis=1)
    ranks = np.arange(1, k + 1, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = {}
        if "precision" in metrics:
            out["precision"] = n_hits / k
        if "recall" in metrics:
            out["recall"] = np.where(n_rel > 0, n_hits / n_rel, np.nan)
        if "ndcg" in metrics:
            disc = 1.0 / np.log2(ranks + 1.0)
            idcg = np.concatenate([[0.0], np.cumsum(disc)])[np.minimum(n_rel, k).astype(int)]
            out["ndcg"] = np.where(n_rel > 0, hits @ disc / idcg, np.nan)
        if "map" in metrics:
            ap = (hits * np.cumsum(hits, axis=1) / ranks).sum(axis=1)
            denom = np.minimum(n_rel, k) if map_denominator == "min" else n_rel
            out["map"] = np.where(n_rel > 0, ap / denom, np.nan)
        if "hit_rate" in metrics:
            out["hit_rate"] = (n_hits > 0).astype(np.float64)
        if "mrr" in metrics:
            first = np.where(n_hits > 0, hits.argmax(axis=1) + 1.0, np.inf)
            out["mrr"] = 1.0 / first
    return out


def ranking_metrics(
    ranked: np.ndarray,
    relevant: Sequence[Iterable[int]] | np.ndarray,
    ks: Iterable[int] = (1, 5, 10),
    *,
    metrics: Sequence[str] = METRICS,
    map_denominator: str = "min",
    empty: str = "skip",
) -> dict[str, float]:
    """Mean of each metric over queries at each cutoff: ``{"ndcg@10": ..., "recall@1": ...}``.

    Args:
      ranked: int ``[Q, K]`` ranked ids per query, best first; -1 = empty slot.
      relevant: per-query relevant ids (sequence of iterables, or int ``[Q, R]`` padded with -1).
      ks: cutoffs, each ``1 <= k <= K``.
      metrics: subset of ``METRICS``.
      map_denominator: ``"min"`` divides AP@k by ``min(R_q, k)``, ``"all"`` by ``R_q``.
      empty: queries without relevant ids are ``"skip"``-ped (left out of every mean, as
        Recommenders and BEIR do), counted as ``"zero"``, or raise (``"error"``).
    """
    ranked = _check_ranked(ranked)
    if empty not in ("skip", "zero", "error"):
        raise ValueError(f"empty must be 'skip', 'zero' or 'error', got {empty!r}")
    rel = pad_relevant(relevant)
    if rel.shape[0] != ranked.shape[0]:
        raise ValueError(
            f"ranked has {ranked.shape[0]} queries but relevant has {rel.shape[0]}; "
            "give one set of relevant ids per query"
        )
    has_rel = (rel >= 0).any(axis=1)
    if empty == "error" and not has_rel.all():
        raise ValueError(f"{int((~has_rel).sum())} queries have no relevant ids")
    keep = has_rel if empty == "skip" else np.ones_like(has_rel)
    if not keep.any():
        raise ValueError("no query has any relevant id: nothing to evaluate")
    out = {}
    for k in ks:
        per_q = per_query_metrics(
            ranked[keep], rel[keep], k, metrics=metrics, map_denominator=map_denominator
        )
        for name in metrics:
            out[f"{name}@{k}"] = float(np.nan_to_num(per_q[name], nan=0.0).mean())
    return out


def _metric_at_k(name: str, doc: str):
    """``<name>_at_k(ranked, relevant, k, **kw) -> float``: one metric of `ranking_metrics` at one k."""

    def metric_at_k(ranked, relevant, k: int, **kw) -> float:
        return ranking_metrics(ranked, relevant, (k,), metrics=(name,), **kw)[f"{name}@{k}"]

    metric_at_k.__name__ = metric_at_k.__qualname__ = f"{name}_at_k"
    metric_at_k.__doc__ = doc
    return metric_at_k


precision_at_k = _metric_at_k("precision", "Mean precision@k (see module docstring); keyword "
                              "arguments as in `ranking_metrics`.")
recall_at_k = _metric_at_k("recall", "Mean recall@k = hits in the top k / number of relevant ids.")
ndcg_at_k = _metric_at_k("ndcg", "Mean binary nDCG@k with log2 discount and ideal DCG over "
                         "``min(k, R_q)`` hits.")
map_at_k = _metric_at_k("map", "Mean average precision at k (``map_denominator`` = \"min\" or "
                        "\"all\").")
hit_rate_at_k = _metric_at_k("hit_rate", "Fraction of queries with at least one relevant id in "
                             "the top k.")
mrr_at_k = _metric_at_k("mrr", "Mean reciprocal rank of the first relevant id within the top k "
                        "(0 when none).")


def relevant_from_pairs(
    query_ids: np.ndarray, item_ids: np.ndarray, num_queries: int
) -> list[np.ndarray]:
    """Groups (query, item) pairs, e.g. a test split, into per-query relevant id arrays."""
    query_ids = np.asarray(query_ids, dtype=np.int64)
    item_ids = np.asarray(item_ids, dtype=np.int64)
    if query_ids.shape != item_ids.shape or query_ids.ndim != 1:
        raise ValueError(
            f"query_ids and item_ids must be 1-D of equal length, got {query_ids.shape} "
            f"and {item_ids.shape}"
        )
    if query_ids.size and (query_ids.min() < 0 or query_ids.max() >= num_queries):
        raise ValueError(f"query ids must lie in [0, {num_queries}), got "
                         f"[{query_ids.min()}, {query_ids.max()}]")
    order = np.argsort(query_ids, kind="stable")
    bounds = np.searchsorted(query_ids[order], np.arange(num_queries + 1))
    items = item_ids[order]
    return [np.unique(items[bounds[q] : bounds[q + 1]]) for q in range(num_queries)]


def _check_ranked(ranked) -> np.ndarray:
    ranked = np.asarray(ranked)
    if ranked.ndim != 2:
        raise ValueError(f"ranked ids must be a 2-D array [queries, k], got shape {ranked.shape}")
    if not np.issubdtype(ranked.dtype, np.integer):
        raise ValueError(f"ranked ids must be integers, got dtype {ranked.dtype}")
    ranked = ranked.astype(np.int64, copy=False)
    if ranked.size and ranked.min() < -1:
        raise ValueError("ranked ids must be >= 0, or -1 for an empty slot")
    srt = np.sort(ranked, axis=1)
    if ((srt[:, 1:] == srt[:, :-1]) & (srt[:, 1:] >= 0)).any():
        raise ValueError("a row of ranked ids repeats an id; each id may appear once per query")
    return ranked


def _check_k(k: int, width: int) -> None:
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if k > width:
        raise ValueError(f"k={k} exceeds the {width} ranked ids given per query")


def self_retrieval_metrics(vectors: np.ndarray, relevant: Sequence[Iterable[int]] | np.ndarray,
                           ks: Iterable[int] = (1, 5, 10), metrics: Sequence[str] = ("recall", "ndcg")
                           ) -> dict[str, float]:
    """Each row of ``vectors [N, D]`` queries all the others by exact cosine similarity (the
    query left out of its own list); :func:`ranking_metrics` of the rankings against
    ``relevant[i]``, the ids that count as hits for row ``i`` (e.g. the other captions of an image)."""
    x = np.asarray(vectors, np.float32)
    if x.ndim != 2 or x.shape[0] != len(relevant):
        raise ValueError(f"vectors must be [N, D] with one relevant list each, got {x.shape} and {len(relevant)}")
    ks = tuple(ks)
    k = max(ks)
    index = FlatIndex(x.shape[1], "cosine")
    index.add(x)
    _, ids = index.search(x, k + 1)
    ranked = np.array([row[row != q][:k] for q, row in enumerate(ids)])
    return ranking_metrics(ranked, relevant, ks, metrics=metrics)
