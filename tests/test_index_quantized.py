"""SQ8Index, PQIndex and BinaryIndex against numpy references."""

import jax
import numpy as np
import pytest
from jax.sharding import Mesh

from embeddings_jax.index import BinaryIndex, FlatIndex, Index, PQIndex, SQ8Index
from embeddings_jax.ops import quantize


def brute(q, x, k, metric):
    q, x = q.astype(np.float64), x.astype(np.float64)
    if metric == "l2":
        d = ((q[:, None] - x[None]) ** 2).sum(-1)
        order = np.argsort(d, 1, kind="stable")[:, :k]
    else:
        d = q @ x.T
        order = np.argsort(-d, 1, kind="stable")[:, :k]
    return np.take_along_axis(d, order, 1), order


def recall(found, truth):
    return np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(found, truth)])


@pytest.fixture(scope="module")
def clustered(clustered_points):
    return clustered_points(20, 32, 1500, 40, 3)[:2]


@pytest.mark.parametrize("metric", ["l2", "ip"])
@pytest.mark.parametrize("scales", ["dimension", "vector"])
def test_sq8_equals_exact_search_on_decoded_vectors(clustered, metric, scales):
    x, q = clustered
    index = SQ8Index(32, metric, scales=scales, block_size=256)
    index.train(x)
    index.add(x)
    d, i = index.search(q, 10)
    ref_d, ref_i = brute(q, index.decode(), 10, metric)
    np.testing.assert_array_equal(i, ref_i)
    np.testing.assert_allclose(d, ref_d, rtol=1e-4, atol=2e-3)
    assert recall(i, brute(q, x, 10, metric)[1]) > 0.9


@pytest.mark.parametrize("metric", ["l2", "ip", "cosine"])
def test_sq8_rescoring_is_exact_and_4x_smaller(clustered, metric):
    x, q = clustered
    index = SQ8Index(32, metric, rescore=4)
    index.train(x)
    index.add(x)
    d, i = index.search(q, 10)
    flat = FlatIndex(32, metric)
    flat.add(x)
    ref_d, ref_i = flat.search(q, 10)
    assert recall(i, ref_i) >= 0.99
    np.testing.assert_allclose(d, ref_d, rtol=1e-4, atol=1e-3)
    assert index.code_bytes * 4 == x.nbytes


def test_sq8_sharded_equals_single(clustered):
    x, q = clustered
    mesh = Mesh(np.array(jax.devices()[:8]), ("data",))
    out = []
    for m in (None, mesh):
        index = SQ8Index(32, "l2", block_size=128, mesh=m)
        index.train(x)
        index.add(x)
        out.append(index.search(q, 7))
    np.testing.assert_array_equal(out[0][1], out[1][1])
    np.testing.assert_allclose(out[0][0], out[1][0], rtol=1e-6, atol=1e-4)


def test_sq8_k_larger_than_n_with_rescoring(clustered):
    x, q = clustered
    index = SQ8Index(32, "l2", rescore=2)
    index.train(x)
    index.add(x[:4])
    d, i = index.search(q[:2], 6)
    assert (i[:, 4:] == -1).all() and np.isinf(d[:, 4:]).all() and sorted(i[0, :4].tolist()) == [0, 1, 2, 3]


@pytest.mark.parametrize("metric", ["l2", "ip"])
def test_pq_index_equals_search_on_reconstructions(clustered, metric):
    x, q = clustered
    index = PQIndex(32, metric, m=8, iters=5)
    index.train(x)
    index.add(x)
    d, i = index.search(q, 10)
    recon = quantize.decode_pq(index._codes, index.codebooks)
    ref_d, ref_i = brute(q, recon, 10, metric)
    np.testing.assert_array_equal(i, ref_i)
    np.testing.assert_allclose(d, ref_d, rtol=1e-4, atol=1e-3)
    assert index.code_bytes == 8 * len(x)
    assert recall(i, brute(q, x, 10, metric)[1]) > 0.5


def test_binary_hamming_stage_and_rescoring(clustered):
    x, q = clustered
    index = BinaryIndex(32, "l2", rescore=len(x))  # shortlist = everything: must equal exact search
    index.train(x)
    index.add(x)
    d, i = index.search(q, 10)
    ref_d, ref_i = brute(q, x, 10, "l2")
    np.testing.assert_array_equal(i, ref_i)
    np.testing.assert_allclose(d, ref_d, rtol=1e-4, atol=1e-3)
    cheap = BinaryIndex(32, "l2", rescore=20)
    cheap.train(x)
    cheap.add(x)
    assert recall(cheap.search(q, 10)[1], ref_i) > 0.8
    assert cheap.code_bytes * 32 == x.nbytes


def test_binary_hamming_shortlist_matches_numpy(clustered):
    x, q = clustered
    index = BinaryIndex(32, "ip", rescore=1)
    index.train(x)
    index.add(x)
    qb = quantize.binary_codes(q - index.mean)
    xb = quantize.binary_codes(x - index.mean)
    ham = np.unpackbits(qb[:, None, :] ^ xb[None], axis=-1).sum(-1)
    shortlist = np.argsort(ham, 1, kind="stable")[:, :5]  # rescore=1: the Hamming top-5, exactly re-ranked
    _, i = index.search(q, 5)
    for row, ref in zip(i, shortlist):
        assert sorted(row.tolist()) == sorted(ref.tolist())


@pytest.mark.parametrize("make", [
    lambda: SQ8Index(32, "l2", rescore=3),
    lambda: SQ8Index(32, "ip", scales="vector"),
    lambda: PQIndex(32, "l2", m=4, iters=3),
    lambda: BinaryIndex(32, "cosine"),
])
def test_save_load_remove(tmp_path, clustered, make):
    x, q = clustered
    index = make()
    index.train(x)
    index.add(x, ids=np.arange(len(x)) + 100)
    _d, i = index.search(q, 5)
    loaded = Index.load(index.save(tmp_path / "index.npz"))
    assert type(loaded) is type(index) and len(loaded) == len(index)
    _d2, i2 = loaded.search(q, 5)
    np.testing.assert_array_equal(i, i2)
    assert index.remove_ids(i[:, 0]) == len(np.unique(i[:, 0]))
    assert not np.isin(index.search(q, 5)[1], i[:, 0]).any()


def test_train_required(clustered):
    x, _ = clustered
    for index in (SQ8Index(32), PQIndex(32, m=4), BinaryIndex(32)):
        with pytest.raises(ValueError, match="trained"):
            index.add(x)
        with pytest.raises(ValueError, match="trained|empty"):
            index.search(x[:1], 1)
    with pytest.raises(ValueError, match="divide"):
        PQIndex(30, m=4)
    with pytest.raises(ValueError, match="dimension mismatch"):
        SQ8Index(32).train(x[:, :8])
    with pytest.raises(ValueError, match="scales"):
        SQ8Index(32, scales="row")


@pytest.mark.parametrize("cls, kwargs, match", [
    (PQIndex, {"m": 0}, "m=0 subquantizers must divide"),
    (PQIndex, {"m": 2.0}, "m=2.0 subquantizers must divide"),
    (PQIndex, {"m": 4, "iters": 0}, "iters must be a positive integer"),
    (BinaryIndex, {"rescore": 0}, "rescore must be an integer >= 1"),
    (BinaryIndex, {"rescore": 1.5}, "rescore must be an integer >= 1"),
    (SQ8Index, {"rescore": -1}, "rescore"),
    (SQ8Index, {"rescore": 2.5}, "rescore"),
])
def test_bad_constructor_arguments(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(32, **kwargs)


@pytest.mark.parametrize("make", [lambda: SQ8Index(32), lambda: PQIndex(32, m=4), lambda: BinaryIndex(32)])
def test_training_on_no_vectors_is_an_error(make):
    index = make()
    with pytest.raises(ValueError, match="training needs at least one vector"):
        index.train(np.zeros((0, 32), np.float32))
    assert not index.is_trained


def test_pq_refuses_vectors_beyond_float32_and_is_right_below(clustered):
    x, q = clustered
    index = PQIndex(32, "l2", m=4, iters=3)
    with pytest.raises(ValueError, match="too large for float32"):
        index.train(x * 1e20)
    index.train(x * 1e15)
    with pytest.raises(ValueError, match="too large for float32"):
        index.add(x * 1e20)
    index.add(x * 1e15)
    with pytest.raises(ValueError, match="too large for float32"):
        index.search(q * 1e20, 5)
    d, i = index.search(q * 1e15, 5)
    assert (i >= 0).all() and np.isfinite(d).all()
    unscaled = PQIndex(32, "l2", m=4, iters=3)
    unscaled.train(x)
    unscaled.add(x)
    d1, i1 = unscaled.search(q, 5)  # PQ is scale-equivariant: the same answers, distances times 1e30
    truth = brute(q, x, 5, "l2")[1]
    assert abs(recall(i, truth) - recall(i1, truth)) <= 0.02
    np.testing.assert_allclose(d / 1e30, d1, rtol=1e-3)
