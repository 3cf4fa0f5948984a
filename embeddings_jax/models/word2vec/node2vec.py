"""node2vec (Grover & Leskovec, 2016) and DeepWalk (Perozzi et al., 2014) on the word2vec engine.

    >>> graph, labels = karate_club()
    >>> n2v = Node2Vec(graph, dimensions=16, walk_length=20, num_walks=10, p=1.0, q=0.5).fit()
    >>> n2v.wv.most_similar("0")          # nodes are keyed by name

``num_walks`` rounds each walk once from every node (a fresh node order per round, as in the
paper), ``batch_walks`` walks at a time on device (:mod:`embeddings_jax.ops.walks`), split over
the workers' devices (the graph replicated on each), with the same walks as on one device. The
walks go straight into word2vec's encoded :class:`~embeddings_jax.data.vocab.Corpus` (one sentence
a walk, no Python lists of strings), and a skip-gram :class:`Word2Vec` trains on them. ``p = q = 1``
is DeepWalk (first-order walks, weighted by the edge weights).
"""

from __future__ import annotations

import warnings

import jax
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from embeddings_jax.data.graphs import Graph
from embeddings_jax.data.vocab import Corpus, pack_tokens
from embeddings_jax.index.base import check_positive_int
from embeddings_jax.models.word2vec.model import Word2Vec
from embeddings_jax.ops.walks import check_return_params, random_walks, walk_tables
from embeddings_jax.train.sharding import DATA_AXIS, make_mesh, replicated, worker_devices
from embeddings_jax.vectors import KeyedVectors


class Node2Vec:
    """Node embeddings from random walks (names of the ``node2vec`` package and pecanpy).

    Args:
      graph: a :class:`~embeddings_jax.data.graphs.Graph`.
      dimensions: vector size ``D``. walk_length: nodes per walk (80 means 80 nodes).
      num_walks: walks started from every node. p: return parameter (weight ``1/p`` for stepping
        back). q: in-out parameter (``1/q`` for moving away from the previous node; ``q < 1``
        explores outward, ``q > 1`` stays local).
      window, min_count, sg, negative, hs, epochs, alpha, seed, workers: :class:`Word2Vec`'s
        (``dimensions`` is its ``vector_size``; ``workers`` are its training devices). Other
        gensim arguments pass through ``word2vec_kwargs``; ``sample`` keeps gensim's 1e-3, as the
        ``node2vec`` package and pecanpy do.
      batch_walks: walks generated together (one compiled shape), rounded up to a multiple of
        the device count.
    """

    def __init__(self, graph: Graph, dimensions: int = 128, walk_length: int = 80,
                 num_walks: int = 10, p: float = 1.0, q: float = 1.0, window: int = 10,
                 min_count: int = 1, sg: int = 1, negative: int = 5, hs: int = 0, epochs: int = 1,
                 alpha: float = 0.025, seed: int = 1, workers: int = 1, batch_walks: int = 8192,
                 **word2vec_kwargs):
        if not isinstance(graph, Graph):
            raise TypeError(f"graph must be an embeddings_jax.data.graphs.Graph (build one with "
                            f"Graph.from_edges or Graph.from_networkx), got {type(graph).__name__}")
        for name, v in (("walk_length", walk_length), ("num_walks", num_walks),
                        ("batch_walks", batch_walks)):
            check_positive_int(v, name)
        check_return_params(p, q)
        self.graph, self.walk_length, self.num_walks = graph, int(walk_length), int(num_walks)
        self.p, self.q, self.seed, self.batch_walks = float(p), float(q), seed, int(batch_walks)
        self.word2vec_kwargs = dict(vector_size=dimensions, window=window, min_count=min_count,
                                    sg=sg, negative=negative, hs=hs, epochs=epochs, alpha=alpha,
                                    seed=seed, workers=workers, **word2vec_kwargs)
        devices = word2vec_kwargs.get("devices")
        self.mesh = make_mesh(worker_devices(workers) if devices is None else devices)
        tables = walk_tables(graph.indptr, graph.indices, graph.weights)
        arrays = {k: v for k, v in tables._asdict().items() if k != "max_degree"}  # a host int
        self.tables = tables._replace(**jax.device_put(arrays, replicated(self.mesh)))
        self.model: Word2Vec | None = None
        isolated = graph.isolated()
        if isolated.size:
            warnings.warn(f"{isolated.size} nodes have no edges (e.g. {graph.nodes[isolated[0]]!r}); their "
                          "walks are the node alone, so their vectors stay at word2vec's random start. "
                          "Drop them or add edges", stacklevel=2)

    def walks(self) -> np.ndarray:
        """``[num_walks * N, walk_length] int32`` node ids, ``-1`` after a dead end; rows
        ``r * N .. (r + 1) * N - 1`` start once from every node, in round ``r``'s random order."""
        n, length = self.graph.num_nodes, self.walk_length
        order = np.random.default_rng(self.seed)  # the start orders: host work, seeded alike
        starts = np.concatenate([order.permutation(n) for _ in range(self.num_walks)])
        d = self.mesh.size
        b = -(-min(self.batch_walks, starts.size) // d) * d
        sharded = NamedSharding(self.mesh, P(DATA_AXIS))
        keys = jax.random.split(jax.random.key(self.seed), -(-starts.size // b))
        out = np.empty((starts.size, length), np.int32)
        for i, lo in enumerate(range(0, starts.size, b)):
            batch = starts[lo:lo + b]
            padded = np.pad(batch, (0, b - batch.size))  # one compiled shape for every batch
            walks = random_walks(self.tables, padded, length, self.p, self.q, keys[i], sharded)
            out[lo:lo + batch.size] = np.asarray(walks)[: batch.size]
        return out

    def fit(self, **word2vec_kwargs) -> Node2Vec:
        """Generates the walks and trains word2vec on them; keyword arguments override the
        constructor's :class:`Word2Vec` arguments for this fit. Returns ``self``."""
        return self.fit_walks(self.walks(), **word2vec_kwargs)

    def fit_walks(self, walks: np.ndarray, **word2vec_kwargs) -> Node2Vec:
        """Trains word2vec on given walks ``[W, L]`` (node ids, ``-1`` padded, as from
        :meth:`walks`); keyword arguments as in :meth:`fit`. Returns ``self``."""
        walks = np.asarray(walks)
        if walks.ndim != 2 or not np.issubdtype(walks.dtype, np.integer):
            raise ValueError(f"walks must be a [W, L] integer array of node ids, got shape "
                             f"{walks.shape} and dtype {walks.dtype}")
        if walks.size and walks.max() >= self.graph.num_nodes:
            raise ValueError(f"walks hold node id {walks.max()}, outside the graph's "
                             f"{self.graph.num_nodes} nodes")
        counts = np.bincount(walks[walks >= 0], minlength=self.graph.num_nodes)
        model = Word2Vec(**{**self.word2vec_kwargs, **word2vec_kwargs})
        model.build_vocab_from_freq(dict(zip(self.graph.nodes, counts.tolist())),
                                    corpus_count=walks.shape[0])
        model.train(walk_corpus(walks, node_word_ids(self.graph.nodes, model.vocab.index)))
        self.model = model
        return self

    def node_vectors(self, output: bool = False) -> np.ndarray:
        """``[N, D]`` float32 vectors in graph node order: input vectors (``wv``), or with
        ``output=True`` the context vectors ``syn1neg``. Nodes outside the vocabulary get zeros."""
        if self.model is None:
            raise ValueError("the embedding is not trained yet; call fit() first")
        table = self.model.syn1neg if output else self.model.wv.vectors
        ids = node_word_ids(self.graph.nodes, self.model.vocab.index)
        return np.where((ids >= 0)[:, None], table[np.maximum(ids, 0)], 0.0).astype(np.float32)

    @property
    def wv(self) -> KeyedVectors:
        """The node vectors, keyed by node name."""
        if self.model is None:
            raise ValueError("the embedding is not trained yet; call fit() first")
        return self.model.wv


def node_word_ids(nodes: list[str], index: dict[str, int]) -> np.ndarray:
    """``[N] int32`` vocabulary id of each node, ``-1`` for nodes outside the vocabulary."""
    return np.array([index.get(name, -1) for name in nodes], np.int32)


def walk_corpus(walks: np.ndarray, node_to_word: np.ndarray) -> Corpus:
    """Walks ``[W, L]`` (``-1`` padded) as word2vec's encoded corpus, one sentence a walk: node ids
    become word ids by one take; padding and nodes outside the vocabulary are dropped."""
    valid = walks >= 0
    ids = np.take(node_to_word, np.where(valid, walks, 0))
    keep = valid & (ids >= 0)
    rows = np.nonzero(keep)[0]
    return Corpus(pack_tokens(ids[keep], rows), int(valid.sum()), walks.shape[0])
