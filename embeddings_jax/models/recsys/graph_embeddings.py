"""Recommendation from node2vec on the user-item graph (the ratings as a bipartite graph).

Skip-gram with negative sampling fits ``in(u) . out(i) ~ PMI(u, i) - log k`` over walk co-occurrences
(Levy & Goldberg, 2014), so ranking items for a user by ``log P(i | u) = in(u) . out(i) + log p(i)
+ const`` uses the user's input vector, the item's context vector and the item's share of the walk
tokens. That score is one inner product of augmented vectors, ``[in(u), 1] . [out(i), log p(i)]``,
so the embeddings serve through any inner-product vector index.
"""

from __future__ import annotations

import warnings

import numpy as np

from embeddings_jax.data.graphs import Graph
from embeddings_jax.models.recsys.two_tower_training import Embeddings
from embeddings_jax.models.word2vec.node2vec import Node2Vec, node_word_ids


def ratings_graph(users, items, num_users: int, num_items: int) -> Graph:
    """The undirected user-item graph of interaction pairs ``users [R]``, ``items [R]``: node
    ``u`` is user ``u``, node ``num_users + i`` is item ``i`` (names ``"0"``.. in that order);
    repeated pairs are one edge. Users and items without an interaction are isolated nodes."""
    users, items = np.asarray(users, np.int64), np.asarray(items, np.int64)
    if users.shape != items.shape or users.ndim != 1:
        raise ValueError(f"users and items must be 1-D arrays of one pair each, got shapes "
                         f"{users.shape} and {items.shape}")
    for name, ids, n in (("user", users, num_users), ("item", items, num_items)):
        if ids.size and (ids.min() < 0 or ids.max() >= n):
            raise ValueError(f"{name} ids must lie in [0, {n}), got {ids.min()}..{ids.max()}")
    return Graph.from_edges(np.stack([users, num_users + items], 1), nodes=range(num_users + num_items))


def node2vec_embeddings(users, items, num_users: int, num_items: int, **node2vec_kwargs) -> Embeddings:
    """node2vec on :func:`ratings_graph`; returns user ``[U, D + 1]`` and item ``[I, D + 1]``
    vectors whose inner product is ``log P(i | u)`` up to a per-user constant (module docstring).
    ``node2vec_kwargs`` go to :class:`Node2Vec`; ``negative`` must stay > 0."""
    graph = ratings_graph(users, items, num_users, num_items)
    with warnings.catch_warnings():  # items never rated in training are isolated: expected here
        warnings.filterwarnings("ignore", message=".*nodes have no edges.*")
        model = Node2Vec(graph, **node2vec_kwargs).fit()
    vin, vout = model.node_vectors(), model.node_vectors(output=True)
    tokens = np.asarray(model.model.vocab.counts, np.float64)  # walk tokens of each word
    ids = node_word_ids(graph.nodes, model.model.vocab.index)[num_users:]
    counts = np.where(ids >= 0, tokens[np.maximum(ids, 0)], 0.0)
    log_p = np.log(np.maximum(counts, 1.0) / tokens.sum())
    user_vecs = np.concatenate([vin[:num_users], np.ones((num_users, 1), np.float32)], 1)
    item_vecs = np.concatenate([vout[num_users:], log_p[:, None].astype(np.float32)], 1)
    return Embeddings(user_vecs, item_vecs)
