"""Huffman codes for hierarchical softmax: prefix-free and optimal."""

import heapq

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from embeddings_jax.ops.huffman import build_huffman


def _optimal_cost(counts) -> int:
    """Minimum weighted code length sum(c_i * len_i) via the classic merge cost identity."""
    h = list(counts)
    heapq.heapify(h)
    cost = 0
    while len(h) > 1:
        a, b = heapq.heappop(h), heapq.heappop(h)
        cost += a + b
        heapq.heappush(h, a + b)
    return cost


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 10_000), min_size=2, max_size=60))
def test_codes_prefix_free_and_optimal(counts):
    tree = build_huffman(np.sort(np.array(counts))[::-1])
    codes = [tree.code(w) for w in range(len(counts))]
    # Prefix-free: no code is a prefix of another (so decoding is unambiguous).
    for i, a in enumerate(codes):
        for j, b in enumerate(codes):
            if i != j:
                assert b[: len(a)] != a
    # Kraft equality for a full binary tree, and minimum expected length.
    assert abs(sum(2.0 ** -len(c) for c in codes) - 1.0) < 1e-9
    sorted_counts = np.sort(np.array(counts))[::-1]
    assert int((sorted_counts * tree.lengths).sum()) == _optimal_cost(counts)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 1000), min_size=2, max_size=40))
def test_points_are_inner_nodes_on_a_shared_root_path(counts):
    v = len(counts)
    tree = build_huffman(np.array(counts))
    assert tree.points.min() >= 0 and tree.points.max() <= v - 2
    root = tree.points[:, 0]
    assert (root == v - 2).all()  # every path starts at the root
    # Words with equal code prefixes visit the same inner nodes.
    for a in range(v):
        for b in range(v):
            la, lb = tree.lengths[a], tree.lengths[b]
            n = 0
            while n < min(la, lb) and tree.codes[a, n] == tree.codes[b, n]:
                n += 1
            assert (
                tree.points[a, : n + (n < min(la, lb))] == tree.points[b, : n + (n < min(la, lb))]
            ).all()


def test_frequent_words_get_shorter_codes_and_edge_cases():
    tree = build_huffman(np.array([100, 50, 20, 5, 1]))
    assert list(tree.lengths) == sorted(tree.lengths)
    one = build_huffman(np.array([7]))
    assert one.lengths.tolist() == [1]
    import pytest

    with pytest.raises(ValueError, match="empty"):
        build_huffman(np.array([], np.int64))
