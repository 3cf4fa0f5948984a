"""Evaluation of node vectors (stratified folds, macro-F1, ROC AUC), node2vec recommendation on a
user-item graph, and the node2vec experiment end to end."""

import jax
import numpy as np
import pytest

from embeddings_jax.data.graphs import block_probabilities, planted_partition
from embeddings_jax.eval.classification import cross_validate, macro_f1, stratified_folds
from embeddings_jax.eval.link_prediction import cosine_link_scores, link_prediction_auc, roc_auc
from embeddings_jax.models.recsys import node2vec_embeddings, ratings_graph
from embeddings_jax.models.word2vec import Node2Vec, Word2Vec

ONE = {"devices": jax.devices()[:1]}


def test_macro_f1_is_the_mean_of_per_class_f1():
    y_true = np.array([0, 0, 0, 1, 1, 2])
    y_pred = np.array([0, 0, 1, 1, 2, 2])
    # class 0: tp 2, fp 0, fn 1 -> 0.8; class 1: tp 1, fp 1, fn 1 -> 0.5; class 2: tp 1, fp 1 -> 2/3
    assert macro_f1(y_true, y_pred) == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert macro_f1(y_true, y_true) == 1.0
    # A class absent from both sides does not count (scikit-learn over the present labels).
    assert macro_f1(y_true, y_pred, num_classes=5) == pytest.approx(macro_f1(y_true, y_pred))
    sklearn = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 6, 300), rng.integers(0, 6, 300)
    assert macro_f1(a, b) == pytest.approx(sklearn.f1_score(a, b, average="macro"))
    with pytest.raises(ValueError, match="1-D of one length"):
        macro_f1(y_true, y_pred[:3])


def test_stratified_folds_partition_every_class_evenly():
    labels = np.repeat([0, 1, 2], [50, 30, 7])
    folds = stratified_folds(labels, 5, seed=1)
    tests = np.concatenate([t for _, t in folds])
    assert np.array_equal(np.sort(tests), np.arange(labels.size))  # each node tested once
    for train, test in folds:
        assert np.intersect1d(train, test).size == 0 and train.size + test.size == labels.size
        counts = np.bincount(labels[test], minlength=3)
        assert (np.abs(counts - np.array([10, 6, 1.4])) <= 1).all()
    assert [t.tolist() for _, t in folds] == [t.tolist() for _, t in stratified_folds(labels, 5, seed=1)]
    with pytest.raises(ValueError, match="class 2 has 7 members"):
        stratified_folds(labels, 8)
    with pytest.raises(ValueError, match="k must be an integer >= 2"):
        stratified_folds(labels, 1)


def test_cross_validate_separates_separable_classes():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 20)
    x = rng.normal(size=(60, 4)) * 0.1 + np.eye(3, 4)[y] * 3
    cv = cross_validate(x, y, folds=4, steps=100)
    assert len(cv["macro_f1"]) == 4 and min(cv["accuracy"]) == 1.0 and min(cv["macro_f1"]) == 1.0
    with pytest.raises(ValueError, match="one label each"):
        cross_validate(x[:10], y)


def test_roc_auc_is_the_pairwise_win_rate_with_ties_as_halves():
    rng = np.random.default_rng(0)
    pos, neg = rng.integers(0, 5, 40).astype(float), rng.integers(0, 4, 30).astype(float)
    brute = np.mean((pos[:, None] > neg[None]) + 0.5 * (pos[:, None] == neg[None]))
    assert roc_auc(pos, neg) == pytest.approx(brute)
    assert roc_auc([2.0, 3.0], [0.0, 1.0]) == 1.0 and roc_auc([0.0], [1.0]) == 0.0
    with pytest.raises(ValueError, match="at least one positive"):
        roc_auc([], [1.0])
    with pytest.raises(ValueError, match="finite"):
        roc_auc([np.nan], [1.0])


def test_link_prediction_scores_edges_by_cosine():
    vectors = np.array([[1.0, 0.0], [2.0, 0.1], [0.0, 1.0], [0.1, 3.0]])
    assert cosine_link_scores(vectors, [[0, 1]])[0] == pytest.approx(2 / np.hypot(2, 0.1))
    assert link_prediction_auc(vectors, [[0, 1], [2, 3]], [[0, 2], [1, 3]]) == 1.0
    with pytest.raises(ValueError, match=r"\[M, 2\]"):
        cosine_link_scores(vectors, [0, 1])
    with pytest.raises(ValueError, match="must lie in"):
        cosine_link_scores(vectors, [[0, 4]])


def test_block_probabilities_give_the_asked_degree_and_mixing():
    p_in, p_out = block_probabilities(4000, 4, mean_degree=8.0, mixing=0.25)
    graph, labels = planted_partition(4000, 4, p_in, p_out, seed=0)
    src, dst, _ = graph.edge_arrays()
    assert graph.indices.size / graph.num_nodes == pytest.approx(8.0, rel=0.05)
    assert np.mean(labels[src] != labels[dst]) == pytest.approx(0.25, abs=0.02)
    with pytest.raises(ValueError, match="too high"):
        block_probabilities(100, 10, mean_degree=20.0, mixing=0.1)
    with pytest.raises(ValueError, match="mixing in"):
        block_probabilities(100, 10, mean_degree=2.0, mixing=1.5)


def test_node2vec_vectors_in_node_order_and_bad_walks():
    graph, _ = planted_partition(200, 2, 0.1, 0.01, seed=0)
    model = Node2Vec(graph, dimensions=8, walk_length=10, num_walks=2, window=3, seed=0, **ONE)
    with pytest.raises(ValueError, match="call fit"):
        model.node_vectors()
    model.fit()
    vin, vout = model.node_vectors(), model.node_vectors(output=True)
    assert vin.shape == vout.shape == (200, 8)
    np.testing.assert_array_equal(vin[5], model.wv["5"])
    np.testing.assert_array_equal(vout[5], model.model.syn1neg[model.model.vocab.index["5"]])
    with pytest.raises(ValueError, match="integer array"):
        model.fit_walks(np.zeros(5, np.int32))
    with pytest.raises(ValueError, match="outside the graph"):
        model.fit_walks(np.full((2, 3), 200, np.int32))
    hs_only = Word2Vec([["a", "b"]] * 5, vector_size=4, min_count=1, hs=1, negative=0, epochs=1, **ONE)
    with pytest.raises(ValueError, match="no output vectors"):
        _ = hs_only.syn1neg


def test_node2vec_recommends_from_the_users_own_community():
    # Users 0-9 rate items 0-9, users 10-19 rate items 10-19; each user misses one item of their
    # group, which should rank above every item of the other group.
    rng = np.random.default_rng(0)
    users, items, held = [], [], {}
    for u in range(20):
        group = np.arange(10) + 10 * (u // 10)
        held[u] = rng.choice(group)
        for i in group[group != held[u]]:
            users.append(u), items.append(i)
    graph = ratings_graph(users, items, 20, 20)
    assert graph.num_nodes == 40 and graph.num_edges == len(users)
    emb = node2vec_embeddings(users, items, 20, 20, dimensions=8, walk_length=20, num_walks=10,
                              window=3, epochs=5, seed=0, **ONE)
    assert emb.users.shape == (20, 9) and emb.items.shape == (20, 9)
    scores = emb.users @ emb.items.T
    for u in range(20):
        other = np.arange(10) + 10 * (1 - u // 10)
        assert scores[u, held[u]] > scores[u, other].max()
    with pytest.raises(ValueError, match=r"item ids must lie in \[0, 20\)"):
        ratings_graph([0], [20], 20, 20)
    with pytest.raises(ValueError, match="1-D arrays"):
        ratings_graph([0, 1], [0], 20, 20)


def test_node2vec_experiment_runlocal(tmp_path):
    from experiments import node2vec as experiment

    result = experiment.run(experiment.get_config("runlocal"), str(tmp_path))
    assert result["karate_cv_accuracy"] >= 0.85
    assert result["sbm_2000_ours_macro_f1"] > 0.8 and result["sbm_2000_ours_link_auc"] > 0.7
    assert (tmp_path / "node2vec.md").is_file() and (tmp_path / "node2vec_karate.png").is_file()
