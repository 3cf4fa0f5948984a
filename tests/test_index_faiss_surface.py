"""FAISS's everyday surface on every index: index_factory, RefineIndex, range_search, filtered search,
reconstruct, reset, add_with_ids; checked against numpy brute force (exact indexes) or brute force over
the same candidates (approximate ones), and against faiss-cpu where it is installed."""

import itertools

import jax
import numpy as np
import pytest
from jax.sharding import Mesh

from embeddings_jax.index import (
    BinaryIndex,
    FlatIndex,
    IDSelectorBatch,
    IDSelectorNot,
    IDSelectorRange,
    Index,
    IVFIndex,
    IVFPQIndex,
    PQIndex,
    RefineIndex,
    SearchParameters,
    SearchParametersIVF,
    SQ8Index,
    index_factory,
)

D = 8


# ------------------------------------------------------------------------------------------ references
def ref_scores(q, v, metric):
    """Float64 ``[Q, N]`` D values: squared distances (l2) or similarities."""
    q, v = q.astype(np.float64), v.astype(np.float64)
    if metric == "l2":
        return ((q[:, None, :] - v[None, :, :]) ** 2).sum(-1)
    if metric == "cosine":
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
        v = v / np.linalg.norm(v, axis=1, keepdims=True)
    return q @ v.T


def ref_knn(s, k, metric, allowed=None):
    """Exact top-k (``k <= N``) of D values ``s [Q, N]`` over allowed columns, ties lower position first,
    padded with ``-1`` / ``inf`` where fewer are allowed."""
    n = s.shape[1]
    allowed = np.ones(n, bool) if allowed is None else allowed
    key = np.where(allowed[None], s if metric == "l2" else -s, np.inf)
    order = np.lexsort((np.broadcast_to(np.arange(n), s.shape), key), axis=1)[:, :k]
    ok = np.take_along_axis(np.broadcast_to(allowed, s.shape), order, 1)
    d = np.where(ok, np.take_along_axis(s, order, 1), np.inf if metric == "l2" else -np.inf)
    return d, np.where(ok, order, -1)


def ref_range(s, radius, metric, allowed=None):
    """``(lims, D, I)`` with each query's hits best first, ties lower position first."""
    allowed = np.ones(s.shape[1], bool) if allowed is None else allowed
    hit = (s < radius if metric == "l2" else s > radius) & allowed[None]
    lims, dd, ii = [0], [], []
    for row, h in zip(s, hit):
        cols = np.flatnonzero(h)
        order = np.lexsort((cols, row[cols] if metric == "l2" else -row[cols]))
        dd.append(row[cols][order])
        ii.append(cols[order])
        lims.append(lims[-1] + len(cols))
    return np.array(lims), np.concatenate(dd), np.concatenate(ii)


def assert_range_equal(got, want, atol=1e-4):
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[2], want[2])
    np.testing.assert_allclose(got[1], want[1], rtol=1e-5, atol=atol)
    assert got[0].dtype == np.int64 and got[1].dtype == np.float32 and got[2].dtype == np.int64


def assert_topk(d, i, s, k, metric, allowed=None, tol=1e-3):
    """``(d, i)`` is a top-k of ``s`` over allowed columns up to ties: each id's D value is its own,
    ids are distinct and allowed, the sorted values equal the exact top-k values, padding where short."""
    allowed = np.ones(s.shape[1], bool) if allowed is None else allowed
    want_d, _ = ref_knn(s, k, metric, allowed)
    n_ok = min(k, int(allowed.sum()))
    assert (i[:, n_ok:] == -1).all() and np.isinf(d[:, n_ok:]).all()
    got = i[:, :n_ok]
    assert allowed[got].all()
    assert all(len(set(row)) == n_ok for row in got)
    np.testing.assert_allclose(d[:, :n_ok], np.take_along_axis(s, got, 1), rtol=tol, atol=tol)
    np.testing.assert_allclose(d[:, :n_ok], want_d[:, :n_ok], rtol=tol, atol=tol)


def mid_radius(s, quantile):
    """A radius halfway between two consecutive distinct values of ``s`` (no value near the boundary)."""
    vals = np.unique(np.round(s.ravel(), 6))
    j = int(quantile * (len(vals) - 1))
    return float((vals[j] + vals[j + 1]) / 2)


# ------------------------------------------------------------------------------------------ data
@pytest.fixture(scope="module")
def ints():
    """Small-integer data with duplicate rows (exact float32 scores, many exact ties)."""
    rng = np.random.default_rng(0)
    base = rng.integers(-2, 3, size=(300, D)).astype(np.float32)
    x = np.concatenate([base, base[:60]])  # rows 300.. repeat rows 0..59
    q = rng.integers(-2, 3, size=(9, D)).astype(np.float32)
    return x, q


@pytest.fixture(scope="module")
def gauss():
    rng = np.random.default_rng(1)
    return rng.standard_normal((400, D)).astype(np.float32), rng.standard_normal((7, D)).astype(np.float32)


def filters(n):
    """name -> (search kwargs, allowed positions bool [n]) for ids 0..n-1; the small allow list takes the
    gathered-rows path, the large one the row-mask path."""
    small = np.array([3, 300, 11, 57, 0])  # 300 duplicates 0: tie on a filtered list
    large = np.arange(0, n, 2)
    deny = np.arange(0, n, 3)
    def mask(ids, keep=True):
        m = np.isin(np.arange(n), ids)
        return m if keep else ~m
    return {
        "none": ({}, None),
        "allow_small": ({"ids": small}, mask(small)),
        "allow_large": ({"ids": large}, mask(large)),
        "exclude": ({"exclude_ids": deny}, mask(deny, False)),
        "selector_not": ({"params": SearchParameters(sel=IDSelectorNot(IDSelectorRange(100, 350)))},
                         ~((np.arange(n) >= 100) & (np.arange(n) < 350))),
    }


# ------------------------------------------------------------------------------------------ index_factory
@pytest.mark.parametrize("description, klass, attrs", [
    ("Flat", FlatIndex, {}),
    ("IDMap,Flat", FlatIndex, {}),
    ("SQ8", SQ8Index, {"scales": "dimension"}),
    ("PQ4", PQIndex, {"m": 4}),
    ("PQ4x8", PQIndex, {"m": 4}),
    ("Binary", BinaryIndex, {}),
    ("IVF16,Flat", IVFIndex, {"nlist": 16}),
    ("IVF16,PQ4", IVFPQIndex, {"nlist": 16, "m": 4}),
    ("IVF16,PQ2x8", IVFPQIndex, {"nlist": 16, "m": 2}),
])
def test_factory_builds_each_index(description, klass, attrs):
    index = index_factory(D, description)
    assert type(index) is klass and index.d == D and index.metric == "l2"
    assert all(getattr(index, k) == v for k, v in attrs.items())
    refined = index_factory(D, description + ",RFlat", "ip")
    assert type(refined) is RefineIndex and type(refined.base) is klass and refined.metric == "ip"
    assert refined.k_factor == 1.0
    assert type(index_factory(D, description + ",Refine(Flat)").base) is klass


def test_factory_metrics_and_kwargs():
    assert index_factory(D, "Flat", 1).metric == "l2"  # faiss.METRIC_L2
    assert index_factory(D, "Flat", 0).metric == "ip"  # faiss.METRIC_INNER_PRODUCT
    assert index_factory(D, "PQ4,RFlat", "cosine").base.metric == "cosine"
    assert index_factory(D, "IVF8,Flat", nprobe=3).nprobe == 3
    for bad in (2, "euclidean"):
        with pytest.raises(ValueError, match="metric"):
            index_factory(D, "Flat", bad)


@pytest.mark.parametrize("description, part", [
    ("IVF16,SQ8", "SQ8"), ("PQ4x4", "PQ4x4"), ("PQ3", "PQ3"), ("HNSW32", "HNSW32"), ("flat", "flat"),
    ("Flat,Refine(SQ8)", "Refine(SQ8)"), ("RFlat", "RFlat"), ("IVF16_HNSW32,Flat", "IVF16_HNSW32"),
    ("IVF16", "IVF16"), ("Flat,Flat", "Flat"), ("SQ4", "SQ4"), ("IVF16,Foo", "Foo"), ("Flat,", "Flat,"),
    ("LSHt", "LSHt"), ("LSH16x", "LSH16x"),
])
def test_factory_errors_name_the_part(description, part):
    with pytest.raises(ValueError, match="Accepted") as err:
        index_factory(D, description)
    assert f"part {part!r}" in str(err.value)


# ------------------------------------------------------------------------------------------ exact indexes
def exact_indexes(metric):
    """Indexes whose search and range_search are exact: Flat, and Refine over anything with enough
    candidates (k_factor covering the database)."""
    return {
        "flat": FlatIndex(D, metric, block_size=128),  # several blocks
        "refine_pq": RefineIndex(PQIndex(D, metric, m=2, iters=2), k_factor=1000),
        "refine_ivfpq": RefineIndex(IVFPQIndex(D, metric, nlist=4, m=2, nprobe=4, kmeans_iters=3, pq_iters=2),
                                    k_factor=1000),
        "refine_ivf": RefineIndex(IVFIndex(D, metric, nlist=4, nprobe=4, kmeans_iters=3), k_factor=1000),
        "refine_sq8": RefineIndex(SQ8Index(D, metric), k_factor=1000),
        "refine_binary": RefineIndex(BinaryIndex(D, metric, rescore=1000), k_factor=1000),
    }


@pytest.mark.parametrize("metric", ["l2", "ip"])
def test_exact_search_range_and_filters_match_brute_force(ints, metric):
    x, q = ints
    s = ref_scores(q, x, metric)
    radius = 6 if metric == "l2" else 2  # on integer values: checks the strict inequality
    for name, index in exact_indexes(metric).items():
        index.train(x)
        index.add(x)
        for fname, (kwargs, allowed) in filters(len(x)).items():
            d, i = index.search(q, 8, **kwargs)
            want_d, want_i = ref_knn(s, 8, metric, allowed)
            np.testing.assert_array_equal(i, want_i, err_msg=f"{name} {fname}")
            np.testing.assert_allclose(d, want_d, atol=1e-4, err_msg=f"{name} {fname}")
            assert_range_equal(index.range_search(q, radius, **kwargs), ref_range(s, radius, metric, allowed))


def test_cosine_exact(gauss):
    x, q = gauss
    s = ref_scores(q, x, "cosine")
    radius = mid_radius(s, 0.8)
    for index in (FlatIndex(D, "cosine"), RefineIndex(PQIndex(D, "cosine", m=2, iters=2), k_factor=1000)):
        index.train(x)
        index.add(x)
        for kwargs, allowed in filters(len(x)).values():
            d, i = index.search(q, 5, **kwargs)
            want_d, want_i = ref_knn(s, 5, "cosine", allowed)
            np.testing.assert_array_equal(i, want_i)
            np.testing.assert_allclose(d, want_d, atol=1e-5)
            assert_range_equal(index.range_search(q, radius, **kwargs), ref_range(s, radius, "cosine", allowed))


def test_fewer_allowed_than_k_pads_as_faiss(ints):
    x, q = ints
    for metric, missing in (("l2", np.inf), ("ip", -np.inf)):
        index = FlatIndex(D, metric)
        index.add(x)
        d, i = index.search(q, 6, ids=[5, 9])
        assert (i[:, 2:] == -1).all() and (d[:, 2:] == missing).all() and set(i[:, :2].ravel()) == {5, 9}
        d, i = index.search(q, 3, ids=[])  # nothing allowed
        assert (i == -1).all() and (d == missing).all()
        lims, _, ii = index.range_search(q, 1e9 if metric == "l2" else -1e9, ids=[5, 9])
        assert lims.tolist() == list(range(0, 2 * len(q) + 1, 2)) and set(ii) == {5, 9}


# ------------------------------------------------------------------------------------------ approximate
@pytest.fixture(scope="module")
def approximate(gauss):
    """Trained approximate indexes over gaussian data with duplicates, built once."""
    x, _ = gauss
    x = np.concatenate([x, x[:40]])
    made = {
        "sq8": SQ8Index(D),
        "sq8_vector": SQ8Index(D, scales="vector"),
        "sq8_rescore": SQ8Index(D, rescore=3),
        "pq": PQIndex(D, m=4, iters=3),
        "binary": BinaryIndex(D),
        "ivf": IVFIndex(D, nlist=6, nprobe=2, kmeans_iters=5),
        "ivfpq": IVFPQIndex(D, nlist=6, m=4, nprobe=2, kmeans_iters=5, pq_iters=3),
    }
    for index in made.values():
        index.train(x)
        index.add(x)
    return x, made


def candidates(index, q, x):
    """bool ``[Q, N]``: the rows each query's search scans (IVF: its nprobe cells), with the vectors
    the index reports distances to."""
    if isinstance(index, IVFIndex):
        cells = index.assign(x)
        cs = ref_scores(q, index.centroids, "l2")
        probes = np.argsort(cs, axis=1, kind="stable")[:, :index.nprobe]
        return np.stack([np.isin(cells, p) for p in probes])
    return np.ones((len(q), len(x)), bool)


@pytest.mark.parametrize("name", ["sq8", "sq8_vector", "sq8_rescore", "pq", "binary", "ivf", "ivfpq"])
def test_approximate_range_search_is_brute_force_over_its_candidates(approximate, gauss, name):
    x, made = approximate
    index, q = made[name], gauss[1]
    v = index.reconstruct_n(0, index.ntotal)  # what the index scores (exact or decoded)
    scan = candidates(index, q, x)
    s = ref_scores(q, v, "l2")
    radius = mid_radius(s, 0.3)
    for kwargs, allowed in filters(len(x)).values():
        allowed = np.ones(len(x), bool) if allowed is None else allowed
        lims, dd, ii = index.range_search(q, radius, **kwargs)
        want = ref_range(np.where(scan, s, np.inf), radius, "l2", allowed)
        assert_range_equal((lims, dd, ii), want, atol=1e-3)


@pytest.mark.parametrize("name", ["sq8", "pq", "ivf", "ivfpq"])
def test_approximate_filtered_search_is_brute_force_over_its_candidates(approximate, gauss, name):
    x, made = approximate
    index, q = made[name], gauss[1]
    nprobe = {"nprobe": index.nlist} if isinstance(index, IVFIndex) else {}  # all cells: every row scanned
    s = ref_scores(q, index.reconstruct_n(), "l2")
    for kwargs, allowed in filters(len(x)).values():
        d, i = index.search(q, 7, **kwargs, **nprobe)
        assert_topk(d, i, s, 7, "l2", allowed)
    if nprobe:  # within nprobe cells: the allowed rows of the probed cells only
        scan = candidates(index, q, x)
        for kwargs, allowed in filters(len(x)).values():
            allowed = np.ones(len(x), bool) if allowed is None else allowed
            d, i = index.search(q, 7, **kwargs)
            for row in range(len(q)):
                assert_topk(d[row:row + 1], i[row:row + 1], s[row:row + 1], 7, "l2", allowed & scan[row])


def test_first_stage_filters_keep_binary_and_rescoring_sq8_inside_the_allow_list(approximate, gauss):
    x, made = approximate
    q = gauss[1]
    for name in ("binary", "sq8_rescore"):
        for kwargs, allowed in filters(len(x)).values():
            _, i = made[name].search(q, 7, **kwargs)
            if allowed is not None:
                assert allowed[i[i >= 0]].all()
                assert ((i >= 0).sum(1) == min(7, allowed.sum())).all()


def test_search_parameters_ivf_nprobe(approximate, gauss):
    index, q = approximate[1]["ivf"], gauss[1]
    want = index.search(q, 5, nprobe=6)
    got = index.search(q, 5, params=SearchParametersIVF(nprobe=6))
    np.testing.assert_array_equal(got[1], want[1])


def test_filters_equal_on_eight_devices(gauss):
    x, q = gauss
    mesh = Mesh(np.array(jax.devices()[:8]), ("data",))
    single, sharded = FlatIndex(D, block_size=128), FlatIndex(D, block_size=128, mesh=mesh)
    ivf1 = IVFIndex(D, nlist=4, nprobe=2, kmeans_iters=3)
    mesh2 = Mesh(np.array(jax.devices()[:2]), ("data",))  # IVF replicates per device: two suffice
    ivf2 = IVFIndex(D, nlist=4, nprobe=2, kmeans_iters=3, mesh=mesh2, query_batch=4)  # batches over devices
    for index in (single, sharded, ivf1, ivf2):
        index.train(x)
        index.add(x)
    for name in ("allow_small", "allow_large", "exclude"):  # gathered rows, row mask, row mask
        kwargs = filters(len(x))[name][0]
        np.testing.assert_array_equal(single.search(q, 6, **kwargs)[1], sharded.search(q, 6, **kwargs)[1])
        np.testing.assert_array_equal(ivf1.search(q, 6, **kwargs)[1], ivf2.search(q, 6, **kwargs)[1])


# ------------------------------------------------------------------------------------------ faiss itself
def test_matches_faiss_flat(gauss):
    faiss = pytest.importorskip("faiss")
    x, q = gauss
    allow = np.arange(5, 400, 9)
    for metric, klass in (("l2", faiss.IndexFlatL2), ("ip", faiss.IndexFlatIP)):
        ours, theirs = FlatIndex(D, metric), klass(D)
        ours.add(x)
        theirs.add(x)
        radius = mid_radius(ref_scores(q, x, metric), 0.5 if metric == "l2" else 0.7)
        lims, dd, ii = ours.range_search(q, radius)
        f_lims, f_d, f_i = theirs.range_search(q, radius)
        np.testing.assert_array_equal(lims, f_lims)
        for a, b in itertools.pairwise(lims):  # faiss leaves each query's hits unordered
            order = np.argsort(f_d[a:b] if metric == "l2" else -f_d[a:b], kind="stable")
            np.testing.assert_array_equal(ii[a:b], f_i[a:b][order])
            np.testing.assert_allclose(dd[a:b], f_d[a:b][order], rtol=1e-5, atol=1e-5)
        params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(allow))
        f_d, f_i = theirs.search(q, 10, params=params)
        for kwargs in ({"ids": allow}, {"params": SearchParameters(sel=IDSelectorBatch(allow))}):
            d, i = ours.search(q, 10, **kwargs)
            np.testing.assert_array_equal(i, f_i)
            np.testing.assert_allclose(d, f_d, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(ours.reconstruct(17), theirs.reconstruct(17))
    np.testing.assert_array_equal(ours.reconstruct_n(10, 20), theirs.reconstruct_n(10, 20))


# ------------------------------------------------------------------------------------------ surface
def test_reconstruct_reset_add_with_ids(approximate, gauss):
    x, made = approximate
    q = gauss[1]
    pq = made["pq"]
    np.testing.assert_array_equal(pq.reconstruct(5), pq.reconstruct_n(5, 1)[0])
    d, i = pq.search(q, 1)  # PQ distances are to the decoded vectors
    np.testing.assert_allclose(d[:, 0], ((q - pq.reconstruct_n()[i[:, 0]]) ** 2).sum(1), rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(made["binary"].reconstruct(3), x[3])  # the exact rows are kept
    for bad, error in ((10_000, ValueError), (2.0, TypeError)):
        with pytest.raises(error):
            pq.reconstruct(bad)
    with pytest.raises(ValueError, match="outside"):
        pq.reconstruct_n(400, 100)

    ivfpq = made["ivfpq"]
    before = ivfpq.search(q, 4)
    codebooks = ivfpq.codebooks.copy()
    ivfpq.reset()
    assert ivfpq.ntotal == 0 and ivfpq.is_trained and (ivfpq.codebooks == codebooks).all()
    ivfpq.add_with_ids(x, np.arange(len(x)) + 1000)
    after = ivfpq.search(q, 4)
    np.testing.assert_array_equal(after[1], before[1] + 1000)
    np.testing.assert_allclose(after[0], before[0])
    assert ivfpq.reconstruct(1003).shape == (D,)


def test_selector_validation(gauss):
    x, q = gauss
    index = FlatIndex(D)
    index.add(x)
    with pytest.raises(ValueError, match="integers"):
        index.search(q, 3, ids=[1.5])
    with pytest.raises(TypeError, match="IDSelector"):
        index.search(q, 3, params=SearchParameters(sel=[1, 2]))
    with pytest.raises(ValueError, match="radius"):
        index.range_search(q, float("nan"))


# ------------------------------------------------------------------------------------------ RefineIndex
def test_refine_over_pq_reaches_near_exact_recall_and_saves(tmp_path):
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((40, 32)).astype(np.float32) * 3
    x = (centers[rng.integers(0, 40, 2000)] + rng.standard_normal((2000, 32))).astype(np.float32)
    q = (centers[rng.integers(0, 40, 60)] + rng.standard_normal((60, 32))).astype(np.float32)
    exact = FlatIndex(32)
    exact.add(x)
    want_d, want_i = exact.search(q, 10)
    index = index_factory(32, "PQ4,RFlat", iters=4)
    index.k_factor = 10
    index.train(x)
    index.add(x)

    def recall(i):
        return np.mean([len(set(a) & set(b)) / 10 for a, b in zip(i, want_i)])

    assert recall(index.base.search(q, 10)[1]) < 0.6
    d, i = index.search(q, 10)
    assert recall(i) > 0.95
    hit = i == want_i
    np.testing.assert_allclose(d[hit], want_d[hit], rtol=1e-4, atol=1e-3)  # exact distances

    path = index.save(tmp_path / "refine")
    for loaded in (Index.load(path), RefineIndex.load(path)):
        assert type(loaded) is RefineIndex and type(loaded.base) is PQIndex and loaded.k_factor == 10
        np.testing.assert_array_equal(loaded.search(q, 10)[1], i)
        np.testing.assert_array_equal(loaded.reconstruct(7), x[7])
    assert index.remove_ids(np.arange(0, 2000, 2)) == 1000
    assert index.ntotal == index.base.ntotal == 1000 and (index.search(q, 5)[1] % 2 == 1).all()
    with pytest.raises(ValueError, match="empty base"):
        RefineIndex(exact)
    with pytest.raises(ValueError, match="k_factor"):
        RefineIndex(FlatIndex(32), k_factor=0.5)
