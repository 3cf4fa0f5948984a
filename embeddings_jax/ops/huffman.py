"""Huffman coding of a vocabulary for hierarchical softmax.

Word ``w`` is a leaf of a binary tree with ``V - 1`` inner nodes; its code is the sequence of
left/right turns (0/1) from the root and its points are the inner nodes visited, each owning one
output vector ``syn1[point]``. Built like gensim/word2vec: repeatedly merge the two least frequent
nodes, so frequent words get short codes (an optimal prefix code).
"""

from __future__ import annotations

import dataclasses
import heapq

import numpy as np


@dataclasses.dataclass(frozen=True)
class HuffmanTree:
    """Padded codes of a vocabulary.

    Attributes:
      codes: ``[V, L] int8`` turn at each depth (0/1), 0 beyond ``lengths``.
      points: ``[V, L] int32`` inner-node index at each depth (root = ``V - 2``), 0 beyond.
      lengths: ``[V] int32`` code length of each word.
    """

    codes: np.ndarray
    points: np.ndarray
    lengths: np.ndarray

    @property
    def max_length(self) -> int:
        return int(self.codes.shape[1])

    def code(self, w: int) -> tuple[int, ...]:
        return tuple(int(c) for c in self.codes[w, : self.lengths[w]])


def build_huffman(counts: np.ndarray) -> HuffmanTree:
    """Huffman tree of word counts ``[V]`` (``V >= 1``; a single word gets one inner node)."""
    counts = np.asarray(counts, dtype=np.int64)
    v = counts.size
    if v == 0:
        raise ValueError("cannot build a Huffman tree for an empty vocabulary")
    if v == 1:
        return HuffmanTree(
            np.zeros((1, 1), np.int8), np.zeros((1, 1), np.int32), np.ones(1, np.int32)
        )
    # Nodes 0..v-1 are leaves, v..2v-2 inner nodes; ties broken by node id for determinism.
    heap = [(int(c), i) for i, c in enumerate(counts)]
    heapq.heapify(heap)
    parent = np.zeros(2 * v - 1, np.int64)
    turn = np.zeros(2 * v - 1, np.int8)
    for node in range(v, 2 * v - 1):
        c1, a = heapq.heappop(heap)
        c2, b = heapq.heappop(heap)
        parent[a], turn[a] = node, 0
        parent[b], turn[b] = node, 1
        heapq.heappush(heap, (c1 + c2, node))
    root = 2 * v - 2
    parent[root] = root
    # Walk every leaf up to the root at once (vectorised over words, one step per depth).
    lengths = np.zeros(v, np.int32)
    cur = np.arange(v)
    while (cur != root).any():
        lengths += cur != root
        cur = parent[cur]
    max_len = int(lengths.max())
    codes = np.zeros((v, max_len), np.int8)
    points = np.zeros((v, max_len), np.int32)
    rows = np.arange(v)
    cur = np.arange(v)
    for s in range(max_len):  # s-th step up from the leaf fills depth lengths - 1 - s
        active = s < lengths
        d = lengths - 1 - s
        codes[rows[active], d[active]] = turn[cur[active]]
        points[rows[active], d[active]] = parent[cur[active]] - v
        cur = np.where(active, parent[cur], cur)
    return HuffmanTree(codes, points, lengths)
