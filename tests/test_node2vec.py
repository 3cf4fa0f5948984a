"""node2vec / DeepWalk: CSR graphs, the on-device walker against exact transition probabilities,
and embeddings that recover known communities (karate club factions, planted blocks)."""

import jax
import numpy as np
import pytest

from embeddings_jax.data.graphs import (
    Graph,
    karate_club,
    planted_partition,
    read_edgelist,
    split_edges,
)
from embeddings_jax.data.vocab import Corpus
from embeddings_jax.eval.classification import cross_validate
from embeddings_jax.models.word2vec import Node2Vec, Word2Vec, walk_corpus
from embeddings_jax.ops.sampling import alias_probabilities
from embeddings_jax.ops.walks import (
    edge_alias_tables,
    random_walks,
    transition_probabilities,
    walk_tables,
)

ONE = {"devices": jax.devices()[:1]}  # one device: the fewest compilations

# A small weighted graph where, after 0 -> 1, node 1's neighbours are of all three node2vec
# kinds: 0 (return), 2 and 3 (neighbours of 0), 4 and 5 (farther). The directed twin has the
# same number of edge slots (20) and degree bound, so both share one compiled walker; node 6 is
# its sink.
UNDIRECTED = [(0, 1, 2.0), (0, 2, 1.0), (0, 3, 1.0), (1, 2, 3.0), (1, 3, 1.0), (1, 4, 2.0),
              (1, 5, 1.0), (4, 5, 1.0), (2, 6, 1.0), (5, 6, 1.0)]  # fmt: skip
DIRECTED = [(0, 1, 2.0), (0, 2, 1.0), (0, 3, 1.5), (1, 0, 1.0), (1, 2, 3.0), (1, 3, 1.0),
            (1, 4, 2.0), (1, 5, 1.0), (2, 1, 1.0), (2, 3, 1.0), (2, 6, 1.0), (3, 0, 1.0),
            (3, 1, 2.0), (3, 4, 1.0), (4, 5, 1.0), (4, 1, 1.0), (4, 3, 1.0), (5, 6, 2.0),
            (5, 4, 1.0), (5, 1, 1.0)]  # fmt: skip
FROM_0, FROM_2 = 60000, 2000  # walks started at 0 (conditioned on) and at 2 (may hit the sink)


def _adjacency(graph: Graph) -> np.ndarray:
    a = np.zeros((graph.num_nodes, graph.num_nodes), bool)
    src, dst, _ = graph.edge_arrays()
    a[src, dst] = True
    return a


@pytest.fixture(scope="module")
def karate():
    return karate_club()


@pytest.fixture(scope="module")
def karate_n2v(karate):
    """One second-order (q < 1) node2vec fit of the karate club, shared by the tests."""
    graph, _ = karate
    model = Node2Vec(graph, dimensions=8, walk_length=20, num_walks=20, q=0.5, window=3, epochs=5,
                     seed=0, **ONE)
    return model.fit()


@pytest.fixture(scope="module")
def small_graphs():
    graphs = {"undirected": Graph.from_edges(UNDIRECTED, nodes=range(7)),
              "directed": Graph.from_edges(DIRECTED, directed=True, nodes=range(7))}
    return {name: (g, walk_tables(g.indptr, g.indices, g.weights)) for name, g in graphs.items()}


# ---------------------------------------------------------------- graphs
def test_from_edges_applies_the_csr_rules():
    g = Graph.from_edges([("a", "b", 2.0), ("b", "a", 1.0), ("b", "c", 1.0), ("c", "c", 5.0)],
                         nodes=["a", "b", "c", "lonely"])
    assert g.nodes == ["a", "b", "c", "lonely"] and not g.directed
    np.testing.assert_array_equal(g.indptr, [0, 1, 3, 4, 4])  # both directions, rows sorted
    np.testing.assert_array_equal(g.indices, [1, 0, 2, 1])
    np.testing.assert_array_equal(g.weights, [3.0, 3.0, 1.0, 1.0])  # a-b listed twice: summed
    assert g.num_edges == 2 and g.isolated().tolist() == [3]  # self-loop c-c dropped
    d = Graph.from_edges(np.array([[10, 20], [20, 30], [10, 20]]), directed=True)
    assert d.nodes == ["10", "20", "30"] and d.num_edges == 2  # first-appearance order
    np.testing.assert_array_equal(d.weights, [2.0, 1.0])
    assert d.isolated().size == 0  # 30 is a sink, not isolated
    w = Graph.from_edges([(0, 1), (1, 2)], weights=[0.5, 4.0])
    np.testing.assert_array_equal(w.weights, [0.5, 0.5, 4.0, 4.0])


def test_networkx_and_scipy_give_the_same_graph(karate):
    nx = pytest.importorskip("networkx")
    graph, labels = karate
    weighted = Graph.from_networkx(nx.karate_club_graph())
    plain = Graph.from_networkx(nx.karate_club_graph(), weight=None)
    assert weighted.nodes == graph.nodes and weighted.num_edges == 78
    np.testing.assert_array_equal(plain.indptr, graph.indptr)
    np.testing.assert_array_equal(weighted.indices, graph.indices)
    assert weighted.weights.max() > 1  # networkx's karate graph carries interaction counts
    clubs = nx.get_node_attributes(nx.karate_club_graph(), "club")
    assert [int(clubs[i] == "Officer") for i in range(34)] == labels.tolist()
    matrix = nx.to_scipy_sparse_array(nx.karate_club_graph())
    from_matrix = Graph.from_scipy(matrix)  # symmetric: undirected
    assert not from_matrix.directed
    np.testing.assert_array_equal(from_matrix.indices, weighted.indices)
    np.testing.assert_allclose(from_matrix.weights, weighted.weights)
    digraph = nx.DiGraph([("x", "y"), ("y", "z")])
    d = Graph.from_networkx(digraph)
    assert d.directed and d.nodes == ["x", "y", "z"] and d.indices.tolist() == [1, 2]
    assert Graph.from_scipy(nx.to_scipy_sparse_array(digraph)).directed


def test_read_edgelist_reads_the_edg_format(tmp_path):
    path = tmp_path / "g.edg"
    path.write_text("# a comment\nn1\tn2\t0.5\nn2 n3 2  # trailing comment\n\nn3\tn1\t1\n")
    g = read_edgelist(path)
    assert g.nodes == ["n1", "n2", "n3"] and g.num_edges == 3
    np.testing.assert_array_equal(g.weights, [0.5, 1.0, 0.5, 2.0, 1.0, 2.0])
    assert (read_edgelist(path, weighted=False).weights == 1).all()
    assert read_edgelist(path, directed=True).num_edges == 3
    (tmp_path / "mixed.edg").write_text("a b 1\nb c\n")
    with pytest.raises(ValueError, match="has no weight but others do"):
        read_edgelist(tmp_path / "mixed.edg")
    (tmp_path / "wide.edg").write_text("a b 1 extra\n")
    with pytest.raises(ValueError, match=r"wide.edg:1: expected 'u v' or 'u v weight'"):
        read_edgelist(tmp_path / "wide.edg")
    (tmp_path / "empty.edg").write_text("# nothing\n")
    with pytest.raises(ValueError, match="holds no edges"):
        read_edgelist(tmp_path / "empty.edg")


def test_karate_club_is_zacharys(karate):
    graph, labels = karate
    assert graph.num_nodes == 34 and graph.num_edges == 78 and graph.indices.size == 156
    assert np.bincount(labels).tolist() == [17, 17]
    assert labels[0] == 0 and labels[33] == 1  # Mr. Hi and the officer lead the factions


def test_planted_partition_has_the_block_densities():
    graph, labels = planted_partition(100_000, 10, 2e-4, 2e-6, seed=0)
    assert graph.num_nodes == 100_000 and np.bincount(labels).tolist() == [10_000] * 10
    src, dst, _ = graph.edge_arrays()
    inside = labels[src] == labels[dst]
    expected_in, expected_out = 10 * 2e-4 * 10_000 * 9_999 / 2, 2e-6 * 45 * 10_000**2
    assert abs(inside.sum() / 2 - expected_in) < 5 * np.sqrt(expected_in)
    assert abs((~inside).sum() / 2 - expected_out) < 5 * np.sqrt(expected_out)
    again, _ = planted_partition(100_000, 10, 2e-4, 2e-6, seed=0)
    np.testing.assert_array_equal(again.indices, graph.indices)


def test_split_edges_keeps_every_node_and_samples_true_non_edges(karate):
    graph, _ = karate
    train, positive, negative = split_edges(graph, 0.3, seed=0)
    assert positive.shape == negative.shape == (23, 2)
    assert train.num_edges == 78 - 23 and train.isolated().size == 0 and (train.degrees > 0).all()
    full, kept = _adjacency(graph), _adjacency(train)
    assert full[positive[:, 0], positive[:, 1]].all() and not kept[positive[:, 0], positive[:, 1]].any()
    assert not full[negative[:, 0], negative[:, 1]].any() and (negative[:, 0] != negative[:, 1]).all()
    assert len({tuple(sorted(p)) for p in negative.tolist()}) == 23
    assert not (kept & ~full).any()  # the training graph is a subgraph
    with pytest.raises(ValueError, match="use fraction <="):
        split_edges(graph, 0.9, seed=0)


def test_bad_input_is_named(karate, small_graphs):
    for weights, message in (([0.0, 1.0], "must be > 0"), ([-1.0, 1.0], "must be > 0"),
                             ([np.nan, 1.0], "finite")):
        with pytest.raises(ValueError, match=message):
            Graph.from_edges([(0, 1), (1, 2)], weights=weights)
    with pytest.raises(ValueError, match="no edges given"):
        Graph.from_edges([])
    with pytest.raises(ValueError, match="no edges .self-loops are dropped"):
        Graph.from_edges([(0, 0)])
    with pytest.raises(ValueError, match="no nodes"):
        Graph(np.zeros(1), [], [], [])
    with pytest.raises(ValueError, match="has no edges"):
        Graph(np.zeros(3), [], [], ["a", "b"])
    with pytest.raises(ValueError, match="strictly increasing"):
        Graph([0, 2, 2, 2], [2, 1], [1.0, 1.0], ["a", "b", "c"], directed=True)
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        planted_partition(10, 2, 1.5, 0.1)
    with pytest.raises(ValueError, match="1 <= k <= n"):
        planted_partition(10, 20, 0.5, 0.1)
    with pytest.raises(ValueError, match="not in nodes"):
        Graph.from_edges([(0, 1)], nodes=[0])
    with pytest.raises(ValueError, match="collide"):
        Graph.from_edges([(1, "1")])
    with pytest.raises(ValueError, match="symmetric matrix"):
        sparse = pytest.importorskip("scipy.sparse")
        Graph.from_scipy(sparse.csr_array(np.array([[0.0, 1.0], [0.0, 0.0]])), directed=False)
    graph, _ = karate
    _, tables = small_graphs["undirected"]
    key = jax.random.key(0)
    for p, q in ((0.0, 1.0), (1.0, -2.0), (float("nan"), 1.0)):
        with pytest.raises(ValueError, match="finite number > 0"):
            random_walks(tables, np.zeros(4, int), 3, p, q, key)
        with pytest.raises(ValueError, match="finite number > 0"):
            Node2Vec(graph, p=p, q=q)
    with pytest.raises(ValueError, match="walk_length counts nodes"):
        random_walks(tables, np.zeros(4, int), 0, 1.0, 1.0, key)
    with pytest.raises(ValueError, match=r"start nodes must lie in \[0, 7\)"):
        random_walks(tables, np.array([7]), 3, 1.0, 1.0, key)
    with pytest.raises(TypeError, match="must be an embeddings_jax.data.graphs.Graph"):
        Node2Vec([(0, 1)])
    with pytest.raises(ValueError, match="call fit"):
        _ = Node2Vec(graph).wv
    with pytest.warns(UserWarning, match="1 nodes have no edges"):
        Node2Vec(Graph.from_edges([(0, 1)], nodes=[0, 1, 2]))


# ---------------------------------------------------------------- walker
def test_edge_alias_tables_sample_each_nodes_weights_exactly():
    rng = np.random.default_rng(0)
    degree = rng.integers(0, 40, 300)
    indptr = np.concatenate([[0], np.cumsum(degree)])
    weights = rng.pareto(1.0, indptr[-1]) + 1e-3  # heavy-tailed: many slots feed several others
    weights[rng.random(weights.size) < 0.2] = 1.0
    accept, alias = edge_alias_tables(indptr, weights)
    for u in np.flatnonzero(degree):
        lo, hi = indptr[u], indptr[u + 1]
        assert ((alias[lo:hi] >= lo) & (alias[lo:hi] < hi)).all()  # a node's own slots only
        probs = alias_probabilities(accept[lo:hi], alias[lo:hi] - lo)
        np.testing.assert_allclose(probs, weights[lo:hi] / weights[lo:hi].sum(), atol=1e-6)


def test_walks_are_deterministic_paths_from_every_node(karate, karate_n2v):
    graph, _ = karate
    walks = karate_n2v.walks()
    assert walks.shape == (20 * 34, 20) and walks.dtype == np.int32
    adjacency = _adjacency(graph)
    assert adjacency[walks[:, :-1], walks[:, 1:]].all()  # no dead ends in karate: no -1
    for r in range(20):  # each round starts once from every node, in its own order
        assert sorted(walks[r * 34:(r + 1) * 34, 0].tolist()) == list(range(34))
    assert not np.array_equal(walks[:34, 0], walks[34:68, 0])
    np.testing.assert_array_equal(karate_n2v.walks(), walks)
    starts = np.arange(walks.shape[0]) % 34  # the fit's batch shape: no new compilation
    key = jax.random.key(3)
    a = random_walks(karate_n2v.tables, starts, 20, 1.0, 0.5, key)
    np.testing.assert_array_equal(a, random_walks(karate_n2v.tables, starts, 20, 1.0, 0.5, key))
    assert not np.array_equal(a, random_walks(karate_n2v.tables, starts, 20, 1.0, 0.5, jax.random.key(4)))
    np.testing.assert_array_equal(np.asarray(a)[:, 0], starts)
    assert random_walks(karate_n2v.tables, starts, 1, 1.0, 0.5, key).shape == (680, 1)


def test_walks_split_over_devices_are_the_one_device_walks(karate):
    """Walks sharded over 4 simulated devices (tables replicated) equal the one-device walks."""
    graph, _ = karate
    kw = {"walk_length": 12, "num_walks": 3, "batch_walks": 64, "seed": 3}
    for p, q in ((1.0, 1.0), (1.0, 0.5)):
        one = Node2Vec(graph, p=p, q=q, devices=jax.devices()[:1], **kw).walks()
        four = Node2Vec(graph, p=p, q=q, devices=jax.devices()[:4], **kw)
        assert four.tables.indices.sharding.device_set == set(jax.devices()[:4])
        np.testing.assert_array_equal(four.walks(), one)


@pytest.mark.parametrize("kind", ["undirected", "directed"])
@pytest.mark.parametrize("p,q", [(1.0, 1.0), (0.25, 4.0), (4.0, 0.25)])
def test_walk_steps_follow_the_exact_node2vec_probabilities(small_graphs, kind, p, q):
    graph, tables = small_graphs[kind]
    starts = np.concatenate([np.zeros(FROM_0, np.int64), np.full(FROM_2, 2)])
    walks = np.asarray(random_walks(tables, starts, 3, p, q, jax.random.key(7)))
    adjacency = _adjacency(graph)
    live = walks[:, 2] >= 0
    assert adjacency[walks[:, 0], walks[:, 1]].all()
    assert adjacency[walks[live, 1], walks[live, 2]].all()
    # Only a walk at the directed sink (node 6) stops, and then it stays stopped.
    assert ((walks[:, 1] == 6) == ~live).all() if kind == "directed" else live.all()
    from_0 = walks[:FROM_0]
    first = np.bincount(from_0[:, 1], minlength=7) / FROM_0
    exact = transition_probabilities(graph.indptr, graph.indices, graph.weights, -1, 0, p, q)
    np.testing.assert_allclose(first, exact, atol=0.01)
    for cur in (1, 3):  # prev = 0 -> cur: the second-order step
        nxt = from_0[from_0[:, 1] == cur, 2]
        empirical = np.bincount(nxt, minlength=7) / nxt.size
        exact = transition_probabilities(graph.indptr, graph.indices, graph.weights, 0, cur, p, q)
        np.testing.assert_allclose(empirical, exact, atol=0.02)


def test_transition_reference_weighs_by_distance_to_the_previous_node(small_graphs):
    graph, _ = small_graphs["undirected"]
    probs = transition_probabilities(graph.indptr, graph.indices, graph.weights, 0, 1, 0.5, 2.0)
    unnormalised = np.array([2 * 2.0, 0, 3 * 1.0, 1 * 1.0, 2 * 0.5, 1 * 0.5, 0])  # w(1, x) * bias
    np.testing.assert_allclose(probs, unnormalised / unnormalised.sum())


# ---------------------------------------------------------------- embeddings
def test_walk_corpus_is_one_sentence_per_walk():
    walks = np.array([[0, 2, 1, -1], [3, 1, 0, 2], [-1, -1, -1, -1]], np.int32)
    corpus = walk_corpus(walks, np.array([5, -1, 0, 7], np.int32))  # node 1 outside the vocabulary
    assert isinstance(corpus, Corpus) and corpus.num_sentences == 3 and corpus.raw_words == 7
    np.testing.assert_array_equal(corpus.ids, [5, 0, 7, 5, 0])
    np.testing.assert_array_equal(corpus.sentence_ids, [0, 0, 1, 1, 1])


def test_node2vec_separates_the_karate_factions(karate, karate_n2v):
    graph, labels = karate
    vectors = karate_n2v.wv[graph.nodes]
    assert vectors.shape == (34, 8) and karate_n2v.wv.index_to_key[0] in graph.nodes
    assert karate_n2v.model.corpus_count == 20 * 34
    assert np.mean(cross_validate(vectors, labels, folds=5)["accuracy"]) >= 0.85


def test_deepwalk_recovers_planted_blocks():
    graph, labels = planted_partition(2000, 4, 0.02, 0.002, seed=0)
    model = Node2Vec(graph, dimensions=16, walk_length=20, num_walks=5, window=3, epochs=5, seed=0,
                     **ONE).fit()
    assert np.mean(cross_validate(model.node_vectors(), labels, folds=3)["macro_f1"]) >= 0.9


# ---------------------------------------------------------------- Word2Vec.build_vocab_from_freq
def test_build_vocab_from_freq_means_what_gensim_means():
    gensim = pytest.importorskip("gensim.models")
    freq = {"graph": 7, "node": 3, "edge": 9, "walk": 1, "path": 5}
    rule = lambda word, count, min_count: 2 if word == "walk" else 0
    cases = [({"min_count": 2}, {"corpus_count": 4}), ({"min_count": 1, "max_final_vocab": 3}, {}),
             ({"min_count": 2}, {"trim_rule": rule})]
    for kw, call in cases:
        ours = Word2Vec(vector_size=4, **kw, **ONE).build_vocab_from_freq(freq, **call)
        theirs = gensim.Word2Vec(vector_size=4, **kw)
        theirs.build_vocab_from_freq(freq, **call)
        assert ours.vocab.words == theirs.wv.index_to_key
        assert ours.vocab.counts.tolist() == [theirs.wv.get_vecattr(w, "count") for w in ours.vocab.words]
        assert ours.corpus_count == theirs.corpus_count
    more = {"node": 2, "vertex": 1, "arc": 4, "graph": 1}
    ours = Word2Vec(vector_size=4, min_count=1, **ONE).build_vocab_from_freq(freq)
    theirs = gensim.Word2Vec(vector_size=4, min_count=1)
    theirs.build_vocab_from_freq(freq)
    ours.build_vocab_from_freq(more, update=True)
    theirs.build_vocab_from_freq(more, update=True)
    assert ours.vocab.words == theirs.wv.index_to_key  # new words appended in dict order
    assert ours.vocab.counts.tolist() == [theirs.wv.get_vecattr(w, "count") for w in theirs.wv.index_to_key]
    with pytest.raises(ValueError, match="counts must be integers >= 0"):
        Word2Vec(**ONE).build_vocab_from_freq({"a": -1})
    with pytest.raises(ValueError, match="no word counts"):
        Word2Vec(**ONE).build_vocab_from_freq({})
