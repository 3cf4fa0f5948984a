"""FlatIndex: exact search against a numpy reference, sharding, FAISS conventions and bad input."""

import jax
import numpy as np
import pytest
from jax.sharding import Mesh

from embeddings_jax.index import FlatIndex, Index, exact_search


def reference(q, x, k, metric):
    """Plain numpy exact search with ties broken by lower position."""
    q64, x64 = q.astype(np.float64), x.astype(np.float64)
    if metric == "l2":
        d = ((q64[:, None, :] - x64[None, :, :]) ** 2).sum(-1)
        order = np.argsort(d, axis=1, kind="stable")[:, :k]
    else:
        if metric == "cosine":
            q64 = q64 / np.linalg.norm(q64, axis=1, keepdims=True)
            x64 = x64 / np.linalg.norm(x64, axis=1, keepdims=True)
        d = q64 @ x64.T
        order = np.argsort(-d, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(d, order, 1), order


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((700, 24)).astype(np.float32), rng.standard_normal((37, 24)).astype(np.float32)


@pytest.mark.parametrize("metric", ["l2", "ip", "cosine"])
def test_matches_numpy(data, metric):
    x, q = data
    index = FlatIndex(24, metric, block_size=128)  # several blocks and a ragged last block
    index.add(x)
    d, i = index.search(q, 7)
    ref_d, ref_i = reference(q, x, 7, metric)
    np.testing.assert_array_equal(i, ref_i)
    np.testing.assert_allclose(d, ref_d, rtol=1e-4, atol=1e-4)
    assert len(index) == 700 and index.ntotal == 700


def test_cosine_normalises_both_sides():
    x = np.array([[10.0, 0.0], [1.0, 1.0]], np.float32)  # the long vector must not win on length
    index = FlatIndex(2, "cosine")
    index.add(x)
    d, i = index.search(np.array([[1.0, 1.1]], np.float32), 2)
    assert i.tolist() == [[1, 0]]
    np.testing.assert_allclose(d[0], [2.1 / np.sqrt(2 * 2.21), 1 / np.sqrt(2.21)], rtol=1e-6)


def test_ties_lower_id_first_across_blocks():
    # integer data: every score is exact, many exact ties spread over blocks
    rng = np.random.default_rng(1)
    base = rng.integers(-2, 3, size=(40, 8)).astype(np.float32)
    x = np.concatenate([base] * 10)  # each vector appears 10 times, 40 apart
    q = rng.integers(-2, 3, size=(16, 8)).astype(np.float32)
    for metric in ("l2", "ip"):
        index = FlatIndex(8, metric, block_size=128)
        index.add(x)
        d, i = index.search(q, 25)
        ref_d, ref_i = reference(q, x, 25, metric)
        np.testing.assert_array_equal(i, ref_i)
        np.testing.assert_array_equal(d, ref_d.astype(np.float32))


def test_k_larger_than_n_pads_like_faiss():
    x = np.eye(3, 4, dtype=np.float32)
    for metric, pad in (("l2", np.inf), ("ip", -np.inf)):
        index = FlatIndex(4, metric)
        index.add(x)
        d, i = index.search(x[:2], 5)
        assert i.shape == (2, 5) and (i[:, 3:] == -1).all() and (d[:, 3:] == pad).all()
        assert sorted(i[0, :3].tolist()) == [0, 1, 2] and i[0, 0] == 0


@pytest.mark.parametrize("metric", ["l2", "ip"])
def test_sharded_equals_single_device(data, metric):
    x, q = data
    mesh = Mesh(np.array(jax.devices()[:8]), ("data",))
    single = FlatIndex(24, metric, block_size=128)
    sharded = FlatIndex(24, metric, block_size=128, mesh=mesh)
    x_ties = np.concatenate([x, x[:50]])  # duplicates across shards exercise the global tie-break
    single.add(x_ties)
    sharded.add(x_ties)
    d1, i1 = single.search(q, 9)
    d8, i8 = sharded.search(q, 9)
    np.testing.assert_array_equal(i1, i8)
    np.testing.assert_allclose(d1, d8, rtol=1e-6, atol=1e-5)
    # k > N on the sharded path too
    small = FlatIndex(24, metric, mesh=mesh)
    small.add(x[:5])
    _d, i = small.search(q[:3], 8)
    assert (i[:, 5:] == -1).all() and sorted(i[0, :5].tolist()) == [0, 1, 2, 3, 4]


def test_custom_ids_remove_and_save_load(tmp_path, data):
    x, q = data
    index = FlatIndex(24, "ip")
    index.add(x[:300], ids=np.arange(300) * 10)
    index.add(x[300:400], ids=np.arange(300, 400) * 10)
    _, i = index.search(q, 5)
    _, ref_i = reference(q, x[:400], 5, "ip")
    np.testing.assert_array_equal(i, ref_i * 10)
    removed = index.remove_ids(ref_i[:, 0] * 10)
    assert removed == len(np.unique(ref_i[:, 0])) and len(index) == 400 - removed
    _, i2 = index.search(q, 5)
    assert not np.isin(i2, ref_i[:, 0] * 10).any()
    path = index.save(tmp_path / "flat.npz")
    loaded = Index.load(path)
    assert isinstance(loaded, FlatIndex) and len(loaded) == len(index)
    np.testing.assert_array_equal(loaded.search(q, 5)[1], i2)
    # default ids continue after the largest id in use
    expected = index.search(x[:1], len(index))[1].max() + 1
    index.add(x[:1])
    assert expected in index.search(x[:1], len(index))[1][0]


def test_exact_search_helper(data):
    x, q = data
    _d, i = exact_search(q, x, 3, "l2")
    np.testing.assert_array_equal(i, reference(q, x, 3, "l2")[1])


def test_bad_input():
    index = FlatIndex(4)
    with pytest.raises(ValueError, match="empty"):
        index.search(np.zeros((1, 4)), 1)
    with pytest.raises(ValueError, match="dimension mismatch"):
        index.add(np.zeros((2, 5)))
    index.add(np.ones((3, 4)))
    with pytest.raises(ValueError, match="dimension mismatch"):
        index.search(np.zeros((1, 3)), 1)
    for k in (0, -1, 1.5):
        with pytest.raises(ValueError, match="k must be a positive integer"):
            index.search(np.zeros((1, 4)), k)
    with pytest.raises(ValueError, match="NaN"):
        index.add(np.array([[1.0, np.nan, 0, 0]]))
    with pytest.raises(ValueError, match="NaN"):
        index.search(np.array([[1.0, np.inf, 0, 0]]), 1)
    with pytest.raises(ValueError, match="unknown metric"):
        FlatIndex(4, "hamming")
    with pytest.raises(ValueError, match="ids"):
        index.add(np.ones((2, 4)), ids=[1])
    with pytest.raises(FileNotFoundError):
        Index.load("/nonexistent/index.npz")
