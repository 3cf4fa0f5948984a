"""Ranking metrics against hand-computed values and a plain per-query reference."""

import math

import numpy as np
import pytest

from embeddings_jax.eval import retrieval as R

L2 = math.log2


def test_hand_computed_two_queries():
    ranked = np.array([[3, 1, 7], [2, 5, -1]])
    relevant = [{1, 7}, {9}]
    m = R.ranking_metrics(ranked, relevant, ks=(1, 3))
    # Query 0: hits at ranks 2 and 3 of 3; query 1: no hit.
    ndcg0 = (1 / L2(3) + 1 / L2(4)) / (1 + 1 / L2(3))
    assert m["precision@3"] == pytest.approx((2 / 3 + 0) / 2)
    assert m["recall@3"] == pytest.approx((1.0 + 0) / 2)
    assert m["ndcg@3"] == pytest.approx(ndcg0 / 2)
    assert m["map@3"] == pytest.approx(((1 / 2 + 2 / 3) / 2) / 2)
    assert m["hit_rate@3"] == pytest.approx(0.5)
    assert m["mrr@3"] == pytest.approx(0.25)
    for name in R.METRICS:
        assert m[f"{name}@1"] == 0.0


def test_hand_computed_more_relevant_than_k():
    ranked = np.array([[5, 0, 6, 1, 2]])
    rel = [[5, 6, 8, 9, 10]]
    k = 3
    assert R.precision_at_k(ranked, rel, k) == pytest.approx(2 / 3)
    assert R.recall_at_k(ranked, rel, k) == pytest.approx(2 / 5)  # denominator R_q, not min(R_q, k)
    # Ideal DCG over min(k, R_q) = 3 hits.
    assert R.ndcg_at_k(ranked, rel, k) == pytest.approx(1.5 / (1 + 1 / L2(3) + 0.5))
    assert R.map_at_k(ranked, rel, k) == pytest.approx((1 + 2 / 3) / 3)
    assert R.map_at_k(ranked, rel, k, map_denominator="all") == pytest.approx((1 + 2 / 3) / 5)
    assert R.hit_rate_at_k(ranked, rel, 1) == 1.0
    assert R.mrr_at_k(ranked, rel, 5) == 1.0
    assert R.recall_at_k(ranked, rel, 5) == pytest.approx(2 / 5)


def test_perfect_ranking_scores_one_and_padding_is_a_miss():
    ranked = np.array([[4, 2, 9, -1], [7, -1, -1, -1]])
    rel = [[2, 4, 9], [7]]
    m = R.ranking_metrics(ranked, rel, ks=(4,))
    assert m["ndcg@4"] == pytest.approx(1.0)
    assert m["map@4"] == pytest.approx(1.0)
    assert m["recall@4"] == pytest.approx(1.0)
    assert m["precision@4"] == pytest.approx((3 / 4 + 1 / 4) / 2)  # divides by k, as Spark does


def test_empty_queries_skip_zero_error():
    ranked = np.array([[1, 2], [3, 4]])
    rel = [[1], []]
    assert R.recall_at_k(ranked, rel, 2) == 1.0  # skipped
    assert R.recall_at_k(ranked, rel, 2, empty="zero") == 0.5
    with pytest.raises(ValueError, match="no relevant"):
        R.recall_at_k(ranked, rel, 2, empty="error")
    with pytest.raises(ValueError, match="nothing to evaluate"):
        R.recall_at_k(ranked, [[], []], 2)


def _reference(ranked, relevant, k):
    """Plain loops, written from the textbook definitions (Recommenders' binary top_k flavour)."""
    out = {m: [] for m in R.METRICS}
    for row, rel in zip(ranked, relevant):
        rel = {int(i) for i in rel}
        if not rel:
            continue
        hits = [1.0 if (int(i) in rel) else 0.0 for i in row[:k]]
        n = sum(hits)
        out["precision"].append(n / k)
        out["recall"].append(n / len(rel))
        dcg = sum(h / math.log2(j + 2) for j, h in enumerate(hits))
        idcg = sum(1 / math.log2(j + 2) for j in range(min(k, len(rel))))
        out["ndcg"].append(dcg / idcg)
        ap, c = 0.0, 0
        for j, h in enumerate(hits):
            if h:
                c += 1
                ap += c / (j + 1)
        out["map"].append(ap / min(len(rel), k))
        out["hit_rate"].append(float(n > 0))
        out["mrr"].append(next((1 / (j + 1) for j, h in enumerate(hits) if h), 0.0))
    return {f"{m}@{k}": float(np.mean(v)) for m, v in out.items()}


def test_matches_reference_on_random_rankings():
    rng = np.random.default_rng(0)
    q, n, kmax = 200, 60, 12
    ranked = np.stack([rng.permutation(n)[:kmax] for _ in range(q)])
    relevant = [rng.choice(n, size=rng.integers(0, 20), replace=False) for _ in range(q)]
    got = R.ranking_metrics(ranked, relevant, ks=(1, 5, 10, 12))
    for k in (1, 5, 10, 12):
        ref = _reference(ranked, relevant, k)
        for key, v in ref.items():
            assert got[key] == pytest.approx(v, abs=1e-12), key
    # A padded [Q, R] relevant array gives the same result as the list form.
    padded = R.pad_relevant(relevant)
    assert R.ranking_metrics(ranked, padded, ks=(10,)) == R.ranking_metrics(
        ranked, relevant, ks=(10,)
    )


def test_relevant_from_pairs_and_large_ids():
    rel = R.relevant_from_pairs(np.array([2, 0, 2, 2]), np.array([10**12, 5, 3, 3]), 3)
    assert [r.tolist() for r in rel] == [[5], [], [3, 10**12]]
    ranked = np.array([[5, 1], [0, 1], [10**12, 4]])
    assert R.recall_at_k(ranked, rel, 1) == pytest.approx((1 + 0.5) / 2)


def test_bad_input():
    with pytest.raises(ValueError, match="2-D"):
        R.ranking_metrics(np.arange(3), [[1]])
    with pytest.raises(ValueError, match="integers"):
        R.ranking_metrics(np.ones((1, 2)), [[1]])
    with pytest.raises(ValueError, match="repeats"):
        R.ranking_metrics(np.array([[1, 1]]), [[1]])
    with pytest.raises(ValueError, match="exceeds"):
        R.ranking_metrics(np.array([[1, 2]]), [[1]], ks=(3,))
    with pytest.raises(ValueError, match="queries"):
        R.ranking_metrics(np.array([[1, 2]]), [[1], [2]])
    with pytest.raises(ValueError, match="unknown metrics"):
        R.ranking_metrics(np.array([[1, 2]]), [[1]], metrics=("auc",))
    with pytest.raises(ValueError, match=">= 0"):
        R.ranking_metrics(np.array([[1, -3]]), [[1]])
