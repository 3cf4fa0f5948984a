"""Graphs for node embeddings: a CSR :class:`Graph`, readers, generators and a link-prediction split.

Rules every constructor applies (one place, :func:`_csr`):

* self-loops are dropped (a walk that stays put adds no context; pecanpy's default too);
* duplicate edges have their weights summed (for undirected graphs ``u v`` and ``v u`` are the
  same edge);
* undirected graphs store both directions, each row sorted by neighbour id;
* weights must be finite and > 0, and a graph needs at least one edge; isolated nodes are kept
  (their walks are the node alone, so word2vec leaves them at their random initial vectors;
  :class:`~embeddings_jax.models.word2vec.Node2Vec` warns).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np


@dataclasses.dataclass
class Graph:
    """A graph in CSR form.

    Attributes:
      indptr: ``[N + 1] int64`` row offsets: node ``u``'s out-edges are slots
        ``indptr[u]:indptr[u + 1]``.
      indices: ``[E] int32`` neighbour of each slot, strictly increasing within a row.
      weights: ``[E] float32`` positive weight of each slot.
      nodes: the ``N`` node names (strings; word2vec keys).
      directed: undirected graphs hold every edge in both rows, so ``E`` is twice the edge count.
    """

    indptr: np.ndarray
    indices: np.ndarray
    weights: np.ndarray
    nodes: list[str]
    directed: bool = False

    def __post_init__(self):
        self.indptr = np.asarray(self.indptr, np.int64)
        self.indices = np.asarray(self.indices, np.int32)
        self.weights = np.asarray(self.weights, np.float32)
        self.nodes = [str(v) for v in self.nodes]
        n, e = len(self.nodes), self.indices.size
        if n == 0:
            raise ValueError("the graph is empty: it has no nodes")
        if e == 0:
            raise ValueError("the graph has no edges; node embeddings need at least one edge")
        if self.indptr.shape != (n + 1,) or self.indptr[0] != 0 or self.indptr[-1] != e:
            raise ValueError(f"indptr must have N + 1 = {n + 1} offsets from 0 to E = {e}")
        if (np.diff(self.indptr) < 0).any():
            raise ValueError("indptr must be non-decreasing")
        if self.weights.shape != (e,):
            raise ValueError(f"weights must have one value per edge slot ({e}), got {self.weights.shape}")
        _check_weights(self.weights)
        if self.indices.min() < 0 or self.indices.max() >= n:
            raise ValueError(f"indices must be node ids in [0, {n})")
        row_start = np.zeros(e, bool)
        row_start[self.indptr[:-1][np.diff(self.indptr) > 0]] = True
        if ((np.diff(self.indices) <= 0) & ~row_start[1:]).any():
            raise ValueError("each row's indices must be strictly increasing (no duplicate edges); "
                             "build the graph with Graph.from_edges, which sorts and merges them")
        if len(set(self.nodes)) != n:
            raise ValueError("node names must be distinct as strings (e.g. 1 and '1' collide)")

    # ---------------------------------------------------------------- views
    @property
    def num_nodes(self) -> int:
        return len(self.nodes)

    @property
    def num_edges(self) -> int:
        """Edges, each undirected edge counted once."""
        return int(self.indices.size if self.directed else self.indices.size // 2)

    @property
    def degrees(self) -> np.ndarray:
        """``[N] int64`` out-degree (the degree, for undirected graphs)."""
        return np.diff(self.indptr)

    def isolated(self) -> np.ndarray:
        """``[K] int64`` ids of nodes with no edge in or out."""
        in_deg = np.bincount(self.indices, minlength=self.num_nodes)
        return np.flatnonzero((self.degrees == 0) & (in_deg == 0))

    def edge_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(src [E], dst [E], weight [E])`` of every slot, in CSR order."""
        src = np.repeat(np.arange(self.num_nodes, dtype=np.int64), self.degrees)
        return src, self.indices.astype(np.int64), self.weights

    # ---------------------------------------------------------------- constructors
    @classmethod
    def from_edges(cls, edges, weights=None, directed: bool = False,
                   nodes: Sequence | None = None) -> Graph:
        """A graph from ``(u, v)`` or ``(u, v, w)`` rows (an ``[E, 2|3]`` array or any iterable).

        Node names may be any hashables (stored as ``str``); without ``nodes`` they are numbered
        in order of first appearance, with ``nodes`` in that order (which may add isolated nodes).
        ``weights [E]`` gives the weights of ``(u, v)`` rows.
        """
        flat, w = _edge_rows(edges, weights)
        ids, names = _node_ids(flat, nodes)
        ids = ids.reshape(-1, 2)
        return _csr(ids[:, 0], ids[:, 1], w, names, directed)

    @classmethod
    def from_networkx(cls, g, weight: str | None = "weight") -> Graph:
        """A networkx graph (duck-typed: ``nodes()``, ``edges(data=...)``, ``is_directed()``);
        edges without the ``weight`` attribute weigh 1, ``weight=None`` ignores weights and
        multigraph parallel edges are summed."""
        nodes = list(g.nodes())
        rows = g.edges(data=weight, default=1.0) if weight else g.edges()
        return cls.from_edges(rows, directed=bool(g.is_directed()), nodes=nodes)

    @classmethod
    def from_scipy(cls, matrix, nodes: Sequence | None = None, directed: bool | None = None) -> Graph:
        """An adjacency matrix (scipy sparse, duck-typed by ``.tocsr()``); entry ``(u, v)`` is the
        weight of ``u -> v`` and stored zeros are not edges. ``directed=None`` treats a symmetric
        matrix as undirected; an undirected graph needs a symmetric matrix."""
        m = matrix.tocsr(copy=True)
        if hasattr(m, "sum_duplicates"):
            m.sum_duplicates()
        n = m.shape[0]
        if m.shape != (n, n):
            raise ValueError(f"an adjacency matrix must be square, got shape {m.shape}")
        src = np.repeat(np.arange(n, dtype=np.int64), np.diff(np.asarray(m.indptr)))
        dst = np.asarray(m.indices, np.int64)
        w = np.asarray(m.data, np.float64)
        stored = w != 0
        src, dst, w = src[stored], dst[stored], w[stored]
        symmetric = _is_symmetric(src, dst, w, n)
        directed = not symmetric if directed is None else bool(directed)
        if not directed:
            if not symmetric:
                raise ValueError("directed=False needs a symmetric matrix; pass directed=True or "
                                 "symmetrise it first (e.g. m.maximum(m.T))")
            upper = src <= dst
            src, dst, w = src[upper], dst[upper], w[upper]
        names = [str(i) for i in range(n)] if nodes is None else list(nodes)
        if len(names) != n:
            raise ValueError(f"nodes has {len(names)} names for a {n} x {n} matrix")
        return _csr(src, dst, w, names, directed)


def read_edgelist(path: str | os.PathLike, weighted: bool | None = None,
                  directed: bool = False) -> Graph:
    """A graph from a ``u v [w]`` text file (pecanpy's ``.edg``: tab or space separated).

    Text after ``#`` is a comment; blank lines are skipped. ``weighted=None`` reads weights when
    lines have three fields; ``weighted=False`` ignores a third field.
    """
    rows, with_w = [], []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            fields = line.split("#", 1)[0].split()
            if not fields:
                continue
            if len(fields) not in (2, 3):
                raise ValueError(f"{path}:{lineno}: expected 'u v' or 'u v weight', got "
                                 f"{len(fields)} fields")
            rows.append(fields)
            with_w.append(len(fields) == 3)
    if not rows:
        raise ValueError(f"{path} holds no edges (only comments or blank lines)")
    use_w = any(with_w) if weighted is None else bool(weighted)
    if use_w and not all(with_w):
        line = with_w.index(False)
        raise ValueError(f"{path}: edge {line + 1} ({' '.join(rows[line])}) has no weight but others "
                         "do; give every edge a weight, or pass weighted=False to ignore them")
    ends = np.array([r[:2] for r in rows])
    w = None
    if use_w:
        try:
            w = np.array([float(r[2]) for r in rows])
        except ValueError as err:
            raise ValueError(f"{path}: a weight is not a number ({err})") from None
    return Graph.from_edges(ends, weights=w, directed=directed)


# ---------------------------------------------------------------- the one CSR builder
def _check_weights(w: np.ndarray) -> None:
    if not np.isfinite(w).all():
        raise ValueError("edge weights must be finite numbers; replace or drop the NaN/inf weights")
    if (w <= 0).any():
        raise ValueError(f"edge weights must be > 0 (got {float(w.min())}); drop zero-weight edges "
                         "and shift or clip negative ones")


def _csr(src, dst, w, nodes: list, directed: bool) -> Graph:
    """The graph of node-id arrays: self-loops dropped, duplicates summed, both directions of an
    undirected edge stored, rows sorted."""
    n = len(nodes)
    if n == 0:
        raise ValueError("the graph is empty: it has no nodes")
    src, dst = np.asarray(src, np.int64), np.asarray(dst, np.int64)
    w = np.ones(src.size) if w is None else np.asarray(w, np.float64)
    _check_weights(w)
    loop = src == dst
    src, dst, w = src[~loop], dst[~loop], w[~loop]
    if src.size == 0:
        raise ValueError("the graph has no edges (self-loops are dropped); node embeddings need "
                         "at least one edge between two nodes")
    if not directed:
        src, dst, w = np.concatenate([src, dst]), np.concatenate([dst, src]), np.concatenate([w, w])
    keys, inverse = np.unique(src * n + dst, return_inverse=True)
    summed = np.bincount(inverse.ravel(), weights=w)
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(keys // n, minlength=n), out=indptr[1:])
    return Graph(indptr, (keys % n).astype(np.int32), summed.astype(np.float32), nodes, directed)


def _edge_rows(edges, weights) -> tuple[np.ndarray | list, np.ndarray | None]:
    """``(endpoints [2E], weights [E] or None)`` of ``from_edges``'s input, flattened
    ``u0, v0, u1, v1, ...``: a numpy array for array input, else a list of the names."""
    if isinstance(edges, np.ndarray):
        if edges.ndim != 2 or edges.shape[1] not in (2, 3):
            raise ValueError(f"edges must be (u, v) or (u, v, weight) rows, got shape {edges.shape}")
        flat, column = edges[:, :2].ravel(), (edges[:, 2] if edges.shape[1] == 3 else None)
        if flat.dtype.kind == "f" and np.isfinite(flat).all() and (flat == np.round(flat)).all():
            flat = flat.astype(np.int64)  # integer ids that shared a float array with weights
    else:
        rows = [tuple(r) for r in edges]
        widths = {len(r) for r in rows}
        if not widths <= {2, 3} or len(widths) > 1:
            raise ValueError("every edge must be (u, v), or every edge (u, v, weight); got "
                             f"rows of lengths {sorted(widths)}")
        flat = [x for r in rows for x in r[:2]]
        column = [r[2] for r in rows] if widths == {3} else None
    e = len(flat) // 2
    if e == 0:
        raise ValueError("no edges given; node embeddings need at least one edge")
    if column is not None:
        if weights is not None:
            raise ValueError("give weights either as a third column of edges or as weights=, not both")
        weights = column
    if weights is not None:
        try:
            weights = np.asarray(weights, np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise ValueError("edge weights must be numbers") from None
        if weights.size != e:
            raise ValueError(f"weights has {weights.size} values for {e} edges")
    return flat, weights


def _node_ids(flat, nodes) -> tuple[np.ndarray, list]:
    """``(ids [2E] int64, names)``: names of ``nodes`` order, or of first appearance."""
    size = len(flat)
    values = flat.tolist() if isinstance(flat, np.ndarray) else flat
    if nodes is not None:
        nodes = list(nodes)
        index = {v: i for i, v in enumerate(nodes)}
        if len(index) != len(nodes):
            raise ValueError("nodes lists a node twice")
        try:
            ids = np.fromiter((index[v] for v in values), np.int64, size)
        except KeyError as err:
            raise ValueError(f"edge endpoint {err.args[0]!r} is not in nodes; add it to nodes "
                             "or leave nodes=None") from None
        return ids, nodes
    if isinstance(flat, np.ndarray) and flat.dtype != object:
        uniq, first, inverse = np.unique(flat, return_index=True, return_inverse=True)
        order = np.argsort(first, kind="stable")
        rank = np.empty(order.size, np.int64)
        rank[order] = np.arange(order.size)
        return rank[inverse.ravel()], uniq[order].tolist()
    index: dict = {}
    ids = np.fromiter((index.setdefault(v, len(index)) for v in values), np.int64, size)
    return ids, list(index)


def _is_symmetric(src, dst, w, n: int) -> bool:
    a, b = np.argsort(src * n + dst), np.argsort(dst * n + src)
    return bool(np.array_equal((src * n + dst)[a], (dst * n + src)[b]) and np.allclose(w[a], w[b]))


# ---------------------------------------------------------------- named graphs
# Zachary, W. W. (1977). An information flow model for conflict and fission in small groups.
# Journal of Anthropological Research 33(4), 452-473: the 78 friendships of a karate club.
KARATE_EDGES = (
    (0, 1), (0, 2), (0, 3), (0, 4), (0, 5), (0, 6), (0, 7), (0, 8), (0, 10), (0, 11), (0, 12),
    (0, 13), (0, 17), (0, 19), (0, 21), (0, 31), (1, 2), (1, 3), (1, 7), (1, 13), (1, 17), (1, 19),
    (1, 21), (1, 30), (2, 3), (2, 7), (2, 8), (2, 9), (2, 13), (2, 27), (2, 28), (2, 32), (3, 7),
    (3, 12), (3, 13), (4, 6), (4, 10), (5, 6), (5, 10), (5, 16), (6, 16), (8, 30), (8, 32), (8, 33),
    (9, 33), (13, 33), (14, 32), (14, 33), (15, 32), (15, 33), (18, 32), (18, 33), (19, 33),
    (20, 32), (20, 33), (22, 32), (22, 33), (23, 25), (23, 27), (23, 29), (23, 32), (23, 33),
    (24, 25), (24, 27), (24, 31), (25, 31), (26, 29), (26, 33), (27, 33), (28, 31), (28, 33),
    (29, 32), (29, 33), (30, 32), (30, 33), (31, 32), (31, 33), (32, 33),
)  # fmt: skip
# Members who joined the officer's club after the split (networkx's club == "Officer").
KARATE_OFFICER = (9, 14, 15, 18, 20, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33)


def karate_club() -> tuple[Graph, np.ndarray]:
    """Zachary's karate club (unweighted, 34 nodes named ``"0"``..``"33"``, 78 edges) and the
    faction of each node, ``[34] int32``: 0 = "Mr. Hi", 1 = "Officer"."""
    graph = Graph.from_edges(np.array(KARATE_EDGES), nodes=range(34))
    labels = np.zeros(34, np.int32)
    labels[list(KARATE_OFFICER)] = 1
    return graph, labels


def planted_partition(n: int, k: int, p_in: float, p_out: float, seed: int = 0) -> tuple[Graph, np.ndarray]:
    """A stochastic block model: ``k`` blocks of (nearly) equal size over ``n`` nodes, each pair
    linked with probability ``p_in`` inside a block and ``p_out`` across.

    Each block pair draws its edge count from a binomial, then uniform endpoints; repeated pairs
    collapse into one edge (so counts run a little under the binomial's at high density). Memory
    and time are O(n + edges). Returns ``(graph, labels [n] int32)``; node ``i`` is named ``str(i)``
    and blocks are contiguous id ranges.
    """
    ints = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in (n, k))
    if not ints or not 1 <= k <= n:
        raise ValueError(f"need integers 1 <= k <= n, got n={n!r}, k={k!r}")
    for name, v in (("p_in", p_in), ("p_out", p_out)):
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"{name} is a probability and must lie in [0, 1], got {v!r}")
    rng = np.random.default_rng(seed)
    sizes = np.full(k, n // k, np.int64)
    sizes[: n % k] += 1
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    a, b = np.triu_indices(k)
    same = a == b
    pairs = np.where(same, sizes[a] * (sizes[a] - 1) // 2, sizes[a] * sizes[b])
    counts = rng.binomial(pairs, np.where(same, p_in, p_out))
    ba, bb = np.repeat(a, counts), np.repeat(b, counts)
    u = starts[ba] + (rng.random(ba.size) * sizes[ba]).astype(np.int64)
    v = starts[bb] + (rng.random(bb.size) * sizes[bb]).astype(np.int64)
    lo, hi = np.minimum(u, v), np.maximum(u, v)
    keys = np.unique((lo * n + hi)[lo != hi])
    labels = np.repeat(np.arange(k, dtype=np.int32), sizes)
    return _csr(keys // n, keys % n, None, [str(i) for i in range(n)], False), labels


def block_probabilities(n: int, k: int, mean_degree: float, mixing: float) -> tuple[float, float]:
    """``(p_in, p_out)`` of :func:`planted_partition` for an expected ``mean_degree`` of which a
    share ``mixing`` crosses blocks (0: disjoint blocks; ``(k - 1) / k``: no block structure)."""
    if not (isinstance(n, (int, np.integer)) and isinstance(k, (int, np.integer)) and 2 <= k < n):
        raise ValueError(f"need integers 2 <= k < n, got n={n!r}, k={k!r}")
    if not 0.0 <= mixing <= 1.0 or mean_degree <= 0:
        raise ValueError(f"need mean_degree > 0 and mixing in [0, 1], got {mean_degree!r}, {mixing!r}")
    size = n / k
    p_in, p_out = (1 - mixing) * mean_degree / (size - 1), mixing * mean_degree / (n - size)
    if max(p_in, p_out) > 1:
        raise ValueError(f"mean_degree {mean_degree} is too high for blocks of {size:.0f} nodes")
    return float(p_in), float(p_out)


# ---------------------------------------------------------------- link prediction
class EdgeSplit(NamedTuple):
    """A link-prediction split: ``train`` graph, held-out ``positive [M, 2]`` edges and
    ``negative [M, 2]`` non-edges (node ids of the original graph, int64)."""

    train: Graph
    positive: np.ndarray
    negative: np.ndarray


def split_edges(graph: Graph, fraction: float, seed: int = 0) -> EdgeSplit:
    """Holds out ``fraction`` of the edges (undirected edges counted once) for link prediction.

    Every node with an edge keeps one (a random edge of it is never held out), so the training graph
    has no new isolated nodes; as many non-edges as held-out edges are drawn uniformly among
    node pairs that are not edges of ``graph`` (no self-pairs, no repeats).

    Raises:
      ValueError: ``fraction`` outside (0, 1), or too large to keep every node connected.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction is the share of edges held out and must lie in (0, 1), got {fraction!r}")
    src, dst, w = graph.edge_arrays()
    if not graph.directed:
        once = src < dst
        src, dst, w = src[once], dst[once], w[once]
    e = src.size
    m = round(fraction * e)
    if m == 0:
        raise ValueError(f"fraction={fraction} of {e} edges holds out none; use a larger fraction")
    rng = np.random.default_rng(seed)
    ends = np.concatenate([src, dst])
    perm = rng.permutation(2 * e)
    _, first = np.unique(ends[perm], return_index=True)
    protected = np.zeros(e, bool)
    protected[perm[first] % e] = True  # one random edge of every node stays
    candidates = np.flatnonzero(~protected)
    if candidates.size < m:
        raise ValueError(f"only {candidates.size} of {e} edges can be held out while every node keeps "
                         f"an edge; use fraction <= {candidates.size / e:.3f}")
    held = rng.choice(candidates, m, replace=False)
    keep = np.ones(e, bool)
    keep[held] = False
    train = _csr(src[keep], dst[keep], w[keep], graph.nodes, graph.directed)
    positive = np.stack([src[held], dst[held]], axis=1)
    return EdgeSplit(train, positive, _non_edges(graph, m, rng))


def _non_edges(graph: Graph, m: int, rng: np.random.Generator) -> np.ndarray:
    """``[m, 2]`` distinct node pairs that are not edges (unordered pairs when undirected)."""
    n = graph.num_nodes
    src, dst, _ = graph.edge_arrays()
    edges = src * n + dst  # sorted: CSR order; undirected graphs hold both directions
    free = n * (n - 1) // (1 if graph.directed else 2) - graph.num_edges
    if free < m:
        raise ValueError(f"the graph has only {free} non-edges, fewer than the {m} negatives needed; "
                         "hold out fewer edges")
    found = np.zeros(0, np.int64)
    while found.size < m:
        u, v = rng.integers(0, n, (2, 2 * (m - found.size) + 16))
        if not graph.directed:
            u, v = np.minimum(u, v), np.maximum(u, v)
        keys = (u * n + v)[u != v]
        pos = np.minimum(np.searchsorted(edges, keys), edges.size - 1)
        keys = np.concatenate([found, keys[edges[pos] != keys]])
        _, first = np.unique(keys, return_index=True)
        found = keys[np.sort(first)][:m]
    return np.stack([found // n, found % n], axis=1)
