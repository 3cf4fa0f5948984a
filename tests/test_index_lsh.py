"""LSHIndex: recall rises with tables and probes, exact when every bucket is probed, Hamming ranking equal
to a numpy reference, filters and range search equal brute force over the candidates, persistence, FAISS."""

import numpy as np
import pytest

from embeddings_jax.index import FlatIndex, Index, LSHIndex, index_factory

D = 16


@pytest.fixture(scope="module")
def clustered():
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((20, D)).astype(np.float32)
    x = centres[rng.integers(0, 20, 2000)] + 0.1 * rng.standard_normal((2000, D)).astype(np.float32)
    q = centres[rng.integers(0, 20, 64)] + 0.1 * rng.standard_normal((64, D)).astype(np.float32)
    return x.astype(np.float32), q.astype(np.float32)


def recall(found, truth):
    return np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(found, truth)])


def ref_scores(q, x, metric):
    q, x = q.astype(np.float64), x.astype(np.float64)
    if metric == "l2":
        return ((q[:, None] - x[None]) ** 2).sum(-1)
    return q @ x.T


def ref_knn(s, k, metric, allowed):
    """Top-k of D values ``s [Q, N]`` over allowed ``[Q, N]``, ties lower position first, padded."""
    key = np.where(allowed, s if metric == "l2" else -s, np.inf)
    order = np.lexsort((np.broadcast_to(np.arange(s.shape[1]), s.shape), key), axis=1)[:, :k]
    ok = np.take_along_axis(allowed, order, 1)
    return np.where(ok, np.take_along_axis(s, order, 1), np.inf if metric == "l2" else -np.inf), np.where(ok, order, -1)


def test_recall_rises_with_tables_and_probes(clustered):
    x, q = clustered
    flat = FlatIndex(D, "cosine")
    flat.add(x)
    _, truth = flat.search(q, 10)
    grid = {}
    for tables in (1, 2, 4):
        for probes in (1, 3, 6):
            index = LSHIndex(D, "cosine", nbits=12, num_tables=tables, probes=probes, seed=1)
            index.add(x)
            grid[tables, probes] = (recall(index.search(q, 10)[1], truth), index.candidates(q))
    for (t, p), (r, cand) in grid.items():  # candidates nest (tables share the seed's first projections)
        for (t2, p2), (r2, cand2) in grid.items():
            if t2 >= t and p2 >= p:
                assert r2 >= r and (cand2 | ~cand).all()
    assert grid[1, 1][0] < grid[4, 6][0]
    assert grid[4, 3][0] > 0.9
    assert grid[4, 3][1].mean() < 0.5  # while scanning well under half the rows


@pytest.mark.parametrize("metric", ["l2", "ip", "cosine"])
def test_probing_every_bucket_is_exact(clustered, metric):
    x, q = clustered
    index = LSHIndex(D, metric, nbits=1, num_tables=3, probes=2)  # both buckets of each table
    flat = FlatIndex(D, metric)
    for i in (index, flat):
        i.add(x)
    assert index.candidates(q).all()
    d, ids = index.search(q, 7)
    d_ref, ids_ref = flat.search(q, 7)
    np.testing.assert_array_equal(ids, ids_ref)
    np.testing.assert_allclose(d, d_ref, rtol=1e-5, atol=1e-4)


def test_hamming_ranking_equals_numpy_reference(clustered):
    x, q = clustered
    index = LSHIndex(D, "ip", nbits=24, num_tables=2, rescore=1, seed=3)
    index.add(x)
    w = np.random.default_rng(3).standard_normal((2, D, 24), np.float32)
    bq, bx = (np.einsum("nd,tdb->ntb", v, w).reshape(len(v), -1) > 0 for v in (q, x))
    ham = (bq[:, None, :] != bx[None, :, :]).sum(-1)
    order = np.lexsort((np.broadcast_to(np.arange(len(x)), ham.shape), ham), axis=1)[:, :10]
    d, ids = index.hamming_search(q, 10)
    np.testing.assert_array_equal(ids, order)
    np.testing.assert_array_equal(d, np.take_along_axis(ham, order, 1))
    _, ids = index.search(q, 10)  # rescore=1: the same ten, re-ranked exactly
    np.testing.assert_array_equal(np.sort(ids, 1), np.sort(order, 1))


@pytest.mark.parametrize("metric", ["l2", "ip"])
def test_filters_and_range_equal_brute_force_over_candidates(clustered, metric):
    x, q = clustered
    index = LSHIndex(D, metric, nbits=10, num_tables=2, probes=3)
    index.add(x, ids=np.arange(len(x)) * 2)
    cand = index.candidates(q)
    s = ref_scores(q, x, metric)
    allowed_ids = np.arange(0, 4000, 6)  # every third row
    allowed = np.isin(np.arange(len(x)) * 2, allowed_ids)
    for kwargs, mask in (({}, np.ones(len(x), bool)), ({"ids": allowed_ids}, allowed),
                         ({"exclude_ids": allowed_ids}, ~allowed)):
        d, ids = index.search(q, 30, **kwargs)
        d_ref, pos_ref = ref_knn(s, 30, metric, cand & mask[None])
        np.testing.assert_array_equal(ids, np.where(pos_ref < 0, -1, pos_ref * 2))
        np.testing.assert_allclose(d, d_ref, rtol=1e-4, atol=1e-3)
    d, ids = index.search(q, 30, ids=[0, 2, 4])  # fewer than k allowed: padded
    assert (ids[:, 3:] == -1).all() and np.isinf(d[:, 3:]).all()
    radius = float(np.median(s))
    lims, dr, ir = index.range_search(q, radius)
    hit = cand & ((s < radius) if metric == "l2" else (s > radius))
    np.testing.assert_array_equal(np.diff(lims), hit.sum(1))
    for i in range(len(q)):
        np.testing.assert_array_equal(np.sort(ir[lims[i]:lims[i + 1]]), np.flatnonzero(hit[i]) * 2)
        np.testing.assert_allclose(dr[lims[i]:lims[i + 1]], s[i, ir[lims[i]:lims[i + 1]] // 2], rtol=1e-4, atol=1e-3)


def test_remove_reset_reconstruct_save_load(clustered, tmp_path):
    x, q = clustered
    index = LSHIndex(D, "cosine", nbits=8, num_tables=3, probes=4, seed=5)
    index.add(x[:1000])
    index.add_with_ids(x[1000:], np.arange(1000, 2000) + 10)
    assert index.remove_ids(np.arange(0, 100)) == 100
    np.testing.assert_allclose(index.reconstruct(1010), x[1000] / np.linalg.norm(x[1000]), rtol=1e-6)
    path = index.save(tmp_path / "lsh")
    loaded = Index.load(path)
    assert isinstance(loaded, LSHIndex) and loaded._config() == index._config()
    for a, b in zip(index.search(q, 10), loaded.search(q, 10)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(index.candidates(q), loaded.candidates(q))
    index.probes = 0  # switch modes after adding
    assert index.search(q, 5)[1].shape == (len(q), 5)
    index.reset()
    assert index.ntotal == 0
    with pytest.raises(ValueError, match="empty"):
        index.search(q, 5)


def test_bad_input():
    for kwargs, match in (({"nbits": 0}, "nbits"), ({"num_tables": 0}, "num_tables"), ({"probes": -1}, "probes"),
                          ({"nbits": 4, "probes": 6}, "probes"), ({"nbits": 65, "probes": 1}, "nbits <= 64"),
                          ({"rotate": False, "num_tables": 2}, "rotate"), ({"rescore": 0}, "rescore")):
        with pytest.raises(ValueError, match=match):
            LSHIndex(D, **kwargs)
    with pytest.raises(ValueError, match="empty"):
        LSHIndex(D, nbits=8, probes=2).search(np.zeros((1, D)), 1)


def test_factory():
    index = index_factory(D, "LSH")
    assert isinstance(index, LSHIndex) and index.nbits == D and not index.rotate
    index = index_factory(D, "LSH12r", "ip", num_tables=4, probes=3)
    assert (index.nbits, index.rotate, index.num_tables, index.probes, index.metric) == (12, True, 4, 3, "ip")
    with pytest.raises(ValueError, match="thresholds"):
        index_factory(D, "LSHrt")


def test_against_faiss(clustered):
    faiss = pytest.importorskip("faiss")
    x, q = clustered
    ours = index_factory(D, "LSH")  # signs of the coordinates: the same codes as FAISS
    ours.add(x)
    theirs = faiss.index_factory(D, "LSH")
    theirs.add(x)
    d_ref, _ = theirs.search(q, 10)
    np.testing.assert_array_equal(ours.hamming_search(q, 10)[0], d_ref)
    flat = FlatIndex(D)
    flat.add(x)
    _, truth = flat.search(q, 10)
    ours = LSHIndex(D, nbits=32, rescore=1)
    ours.add(x)
    theirs = faiss.IndexLSH(D, 32)  # random rotation
    theirs.add(x)
    r_ours, r_theirs = recall(ours.hamming_search(q, 10)[1], truth), recall(theirs.search(q, 10)[1], truth)
    assert 0.5 * r_theirs <= r_ours <= 2 * r_theirs + 0.05
