"""Top-k recommendation with already-seen items removed: brute force, through a vector index,
and the popularity and random baselines; scored by `topk_metrics` (`embeddings_jax.eval.retrieval`).

``seen`` is a sequence (one per user) of item-id arrays to exclude, e.g. the training items
(`seen_lists`). Ties are broken by the lower item id, so rankings are deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from embeddings_jax.data.ratings import Ratings
from embeddings_jax.eval.retrieval import ranking_metrics, relevant_from_pairs


def seen_lists(ratings: Ratings, num_users: int) -> list[np.ndarray]:
    """The sorted distinct items of each user ``0..num_users-1`` in ``ratings``."""
    return relevant_from_pairs(ratings.user, ratings.item, num_users)


def _seen_mask(seen: Sequence[np.ndarray], num_users: int, num_items: int) -> np.ndarray:
    if len(seen) != num_users:
        raise ValueError(f"seen has {len(seen)} rows for {num_users} users")
    mask = np.zeros((num_users, num_items), bool)
    for u, items in enumerate(seen):
        items = np.asarray(items, np.int64)
        if items.size and (items.min() < 0 or items.max() >= num_items):
            raise ValueError(f"seen items of user row {u} fall outside [0, {num_items})")
        mask[u, items] = True
    return mask


def top_k_unseen(scores: np.ndarray, seen: Sequence[np.ndarray], k: int) -> np.ndarray:
    """Brute force: the ``k`` highest-scoring unseen items per row of ``scores [U, I]``: ``[U, k]``
    int64, padded with -1 where fewer than ``k`` unseen items exist."""
    scores = np.asarray(scores, np.float64)
    if scores.ndim != 2:
        raise ValueError(f"scores must be [users, items], got shape {scores.shape}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    mask = _seen_mask(seen, *scores.shape)
    masked = np.where(mask, -np.inf, scores)
    # Stable sort of -scores: equal scores keep ascending item order.
    order = np.argsort(-masked, axis=1, kind="stable")[:, :k]
    ok = np.take_along_axis(~mask, order, axis=1)
    return np.where(ok, order, -1)


def index_top_k_unseen(index, queries: np.ndarray, seen: Sequence[np.ndarray], k: int,
                       fetch: int | None = None) -> np.ndarray:
    """Top-k unseen items served from a vector index (``search(q, k) -> (D, I)``, FAISS style).

    Asks the index for ``fetch`` candidates (default ``k`` + the largest number of seen items,
    enough to guarantee ``k`` unseen ones from an exact index), then drops seen ids in order.
    """
    queries = np.asarray(queries, np.float32)
    if len(seen) != len(queries):
        raise ValueError(f"seen has {len(seen)} rows for {len(queries)} queries")
    fetch = fetch or k + max((len(s) for s in seen), default=0)
    fetch = min(fetch, len(index))
    _, ids = index.search(queries, fetch)
    out = np.full((len(queries), k), -1, np.int64)
    for u, row in enumerate(np.asarray(ids)):
        keep = row[(row >= 0) & ~np.isin(row, seen[u])][:k]
        out[u, : len(keep)] = keep
    return out


def serve_top_k_unseen(index, items: np.ndarray, users: np.ndarray, seen: Sequence[np.ndarray],
                       k: int) -> np.ndarray:
    """Trains (where it needs training) and fills an empty index with the item embeddings, then
    serves every user's top-k unseen items through it (`index_top_k_unseen`)."""
    index.train(items)
    index.add(items)
    return index_top_k_unseen(index, users, seen, k)


def agreement(served: np.ndarray, ranked: np.ndarray) -> dict[str, float]:
    """How well top-k lists ``served [U, k]`` (e.g. from an approximate index) reproduce
    ``ranked [U, k]`` (brute force): same lists, same sets, and recall@k of ``ranked``."""
    k = ranked.shape[1]
    return {
        "same_list_fraction": float(np.mean(np.all(served == ranked, axis=1))),
        "same_set_fraction": float(np.mean([set(a) == set(b) for a, b in zip(served, ranked)])),
        "recall": float(np.mean([len(np.intersect1d(a, b)) / k for a, b in zip(served, ranked)])),
    }


def log_popularity(train_items: np.ndarray, num_items: int) -> np.ndarray:
    """``log p(item)`` float64 ``[num_items]``, p = training frequency (unseen items count once)."""
    counts = np.bincount(np.asarray(train_items, np.int64), minlength=num_items).astype(np.float64)
    return np.log(np.maximum(counts, 1) / counts.sum())


def popularity_top_k(train_items: np.ndarray, num_items: int, seen: Sequence[np.ndarray],
                     k: int) -> np.ndarray:
    """Most-interacted training items not yet seen, the same list order for every user."""
    counts = np.bincount(np.asarray(train_items, np.int64), minlength=num_items).astype(float)
    return top_k_unseen(np.broadcast_to(counts, (len(seen), num_items)), seen, k)


def random_top_k(num_items: int, seen: Sequence[np.ndarray], k: int, seed: int = 0) -> np.ndarray:
    """``k`` unseen items drawn uniformly without replacement per user (seeded)."""
    scores = np.random.default_rng(seed).random((len(seen), num_items))
    return top_k_unseen(scores, seen, k)


def topk_metrics(ranked: np.ndarray, test: Ratings, users: np.ndarray | None = None,
                 k: int = 10) -> dict[str, float]:
    """Microsoft Recommenders' metrics at ``k`` of ``ranked [U, >=k]`` (row = user id) against the
    test items of each user, over the users of ``test`` (optionally only ``users``).

    Returns precision, recall, ndcg, map (AP / min(#relevant, k)) and map_all (AP / #relevant:
    Recommenders' ``map``, its older ``map_at_k``).
    """
    relevant = relevant_from_pairs(test.user, test.item, len(ranked))
    if users is not None:
        ranked, relevant = ranked[users], [relevant[u] for u in users]
    m = ranking_metrics(ranked, relevant, ks=(k,), metrics=("precision", "recall", "ndcg", "map"))
    out = {name.split("@")[0]: v for name, v in m.items()}
    out["map_all"] = ranking_metrics(ranked, relevant, ks=(k,), metrics=("map",),
                                     map_denominator="all")[f"map@{k}"]
    return out
