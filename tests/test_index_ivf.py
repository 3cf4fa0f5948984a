"""k-means, IVFIndex and IVFPQIndex against numpy references."""

import jax
import numpy as np
import pytest
from jax.sharding import Mesh

from embeddings_jax.index import FlatIndex, Index, IVFIndex, IVFPQIndex
from embeddings_jax.index.ivf import plan_tiles, split_slots
from embeddings_jax.ops import kmeans as km
from embeddings_jax.ops import quantize


@pytest.fixture(scope="module")
def clustered(clustered_points):
    return clustered_points(16, 16, 2000, 50, 4)


def brute(q, x, k, metric):
    q, x = q.astype(np.float64), x.astype(np.float64)
    s = -((q[:, None] - x[None]) ** 2).sum(-1) if metric == "l2" else q @ x.T
    return np.argsort(-s, 1, kind="stable")[:, :k], s


def test_kmeans_recovers_separated_clusters():
    rng = np.random.default_rng(5)
    centers = rng.standard_normal((6, 8)) * 10
    x = (centers[rng.integers(0, 6, 1200)] + rng.standard_normal((1200, 8))).astype(np.float32)
    found, inertia = km.kmeans(x, 6, iters=10, seed=0)
    dist = ((found[:, None] - centers[None]) ** 2).sum(-1)
    assert dist.min(0).max() < 0.5  # every true center has a learned center nearby
    again, _ = km.kmeans(x, 6, iters=10, seed=0)
    np.testing.assert_array_equal(found, again)  # same seed, same result
    assert inertia / len(x) < 8 * 1.2  # ~ the noise variance per point


def test_kmeans_plusplus_picks_distinct_rows(clustered):
    import jax

    x, _, _ = clustered
    seeds = np.asarray(km.kmeans_plusplus(jax.random.key(1), x, 16))
    rows = [np.flatnonzero((x == s).all(1)) for s in seeds]
    assert all(len(r) for r in rows) and len({int(r[0]) for r in rows}) == 16


def test_kmeans_random_init_and_bad_init(clustered):
    x, _, _ = clustered
    found, inertia = km.kmeans(x, 16, iters=10, seed=0, init="random")
    _, inertia_pp = km.kmeans(x, 16, iters=10, seed=0)
    assert found.shape == (16, 16) and inertia < 2 * inertia_pp
    with pytest.raises(ValueError, match="init must be one of"):
        km.kmeans(x, 4, init="forgy")


def test_split_empty_reseeds_from_the_largest_cluster():
    centers = np.array([[1.0, 2.0], [5.0, 5.0], [9.0, 9.0], [3.0, -4.0]], np.float32)
    counts = np.array([10.0, 0.0, 40.0, 0.0], np.float32)  # two empty clusters, two donors
    out = np.asarray(km.split_empty(centers, counts))
    eps = 1 / 1024
    # 1st empty <- largest (cluster 2), 2nd empty <- second largest (cluster 0), pushed apart
    np.testing.assert_allclose(out[1], centers[2] * [1 + eps, 1 - eps])
    np.testing.assert_allclose(out[2], centers[2] * [1 - eps, 1 + eps])
    np.testing.assert_allclose(out[3], centers[0] * [1 + eps, 1 - eps])
    np.testing.assert_allclose(out[0], centers[0] * [1 - eps, 1 + eps])
    # a cluster with a single point is not split; nothing empty: unchanged
    np.testing.assert_array_equal(km.split_empty(centers, np.array([1.0, 0.0, 1.0, 0.0])), centers)
    np.testing.assert_array_equal(km.split_empty(centers, np.ones(4)), centers)


def test_assign_matches_numpy(clustered):
    x, _, centers = clustered
    labels, d = km.assign(x, centers.astype(np.float32), chunk=512)
    ref = ((x[:, None].astype(np.float64) - centers[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(labels, ref.argmin(1))
    np.testing.assert_allclose(d, ref.min(1), rtol=1e-4, atol=1e-3)


def test_plan_tiles_covers_every_probe():
    probes = np.array([[0, 2], [2, 1], [2, 0]])
    list_start, list_chunks = np.array([0, 2, 3]), np.array([2, 1, 3])
    tile_chunk, tile_query, slot_src, slot_chunk = plan_tiles(probes, list_start, list_chunks, group=2)
    pairs = {(int(q), int(tile_chunk[t])) for t in range(len(tile_chunk)) for q in tile_query[t] if q < 3}
    expected = {(q, c) for q in range(3) for p in probes[q]
                for c in range(list_start[p], list_start[p] + list_chunks[p])}
    assert pairs == expected
    for q in range(3):
        for s in range(slot_chunk.shape[1]):
            if slot_src[q, s] >= 0:
                t, member = divmod(int(slot_src[q, s]), 2)
                assert tile_query[t, member] == q and tile_chunk[t] == slot_chunk[q, s]
    assert (slot_src >= 0).sum() == len(expected)


def test_split_slots_keeps_every_slot_in_order():
    slot_chunk = np.array([[4, 5, 6, 7, 8], [9, -1, -1, -1, -1], [1, 2, 3, -1, -1]])
    slot_src = np.where(slot_chunk >= 0, slot_chunk * 10, -1)
    part_src, part_chunk, part_of = split_slots(slot_src, slot_chunk, 2)
    assert part_src.shape == (6, 2) and part_of.shape == (3, 3)  # parts: 3 + 1 + 2
    for q in range(3):
        rows = [r for r in part_of[q] if r < len(part_src)]
        joined = np.concatenate([part_chunk[r] for r in rows])
        np.testing.assert_array_equal(joined[joined >= 0], slot_chunk[q][slot_chunk[q] >= 0])
        np.testing.assert_array_equal(np.concatenate([part_src[r] for r in rows])[joined >= 0],
                                      slot_src[q][slot_chunk[q] >= 0])


def probed_reference(index, q, k, nprobe, vectors):
    """numpy IVF: best nprobe cells by the index metric, brute force over their (given) vectors."""
    c = index.centroids.astype(np.float64)
    if index.metric == "l2":
        cs = -((q[:, None] - c[None]) ** 2).sum(-1)
    else:
        cs = q @ c.T
    probes = np.argsort(-cs, 1, kind="stable")[:, :nprobe]
    ids = []
    for row, p in zip(q, probes):
        members = np.flatnonzero(np.isin(index._list, p))
        order, _ = brute(row[None], vectors[members], k, index.metric)
        ids.append(members[order[0]])
    return np.array(ids)


@pytest.mark.parametrize("metric", ["l2", "ip"])
def test_ivf_equals_numpy_ivf(clustered, metric):
    x, q, _ = clustered
    index = IVFIndex(16, metric, nlist=32, nprobe=3, chunk=16, group=4, tiles_per_step=8, kmeans_iters=5)
    index.train(x)
    index.add(x)
    _d, i = index.search(q, 10)
    np.testing.assert_array_equal(i, probed_reference(index, q, 10, 3, x))
    # every cell probed: exact search
    d_all, i_all = index.search(q, 10, nprobe=32)
    flat = FlatIndex(16, metric)
    flat.add(x)
    ref_d, ref_i = flat.search(q, 10)
    np.testing.assert_array_equal(i_all, ref_i)
    np.testing.assert_allclose(d_all, ref_d, rtol=1e-5, atol=1e-3)


def test_ivf_equals_numpy_with_unbalanced_cells():
    """One dense cell holds most vectors: queries probing it scan many more chunks than the mean, so
    their slots are cut into several parts (``split_slots``) and merged."""
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.standard_normal((1500, 8)) * 0.3, rng.standard_normal((300, 8)) * 6]).astype(np.float32)
    q = np.concatenate([rng.standard_normal((20, 8)) * 0.3, rng.standard_normal((40, 8)) * 6]).astype(np.float32)
    index = IVFIndex(8, "l2", nlist=24, nprobe=2, chunk=8, kmeans_iters=5)
    index.train(x)
    index.add(x)
    assert index.list_sizes().max() > 8 * index.list_sizes().mean()
    _d, i = index.search(q, 12)
    np.testing.assert_array_equal(i, probed_reference(index, q, 12, 2, x))


def test_ivf_recall_grows_with_nprobe_and_k_beyond_candidates(clustered):
    x, q, _ = clustered
    index = IVFIndex(16, "l2", nlist=64, kmeans_iters=5)
    index.train(x)
    index.add(x)
    ref, _ = brute(q, x, 10, "l2")
    recalls = [np.mean([len(set(a) & set(b)) / 10 for a, b in zip(index.search(q, 10, nprobe=p)[1], ref)])
               for p in (1, 4, 64)]
    assert recalls[0] <= recalls[1] <= recalls[2] == 1.0
    small = IVFIndex(16, "l2", nlist=4, nprobe=1, kmeans_iters=3)
    small.train(x)
    small.add(x[:6])
    d, i = small.search(q[:3], 8)  # fewer than k vectors in the probed cell
    assert (i[i < 0].size > 0) and np.isinf(d[i < 0]).all()


@pytest.mark.parametrize("metric", ["l2", "ip"])
def test_ivfpq_equals_numpy_on_reconstructions(clustered, metric):
    x, q, _ = clustered
    # 50 queries in lookup blocks of 8: the last block is padded with zero queries
    index = IVFPQIndex(16, metric, nlist=16, m=4, nprobe=4, chunk=16, kmeans_iters=5, pq_iters=5, adc_batch=8)
    index.train(x)
    index.add(x)
    recon = index.centroids[index._list] + quantize.decode_pq(index._codes, index.codebooks)
    # nprobe 4: ~512 candidates per query, tables built per block in cache; nprobe 16: all built first
    for nprobe in (4, 16):
        _d, i = index.search(q, 10, nprobe=nprobe)
        np.testing.assert_array_equal(i, probed_reference(index, q, 10, nprobe, recon))
    _d, i = index.search(q, 10)
    assert index.code_bytes == 4 * len(x)
    ref, _ = brute(q, x, 10, metric)
    assert np.mean([len(set(a) & set(b)) / 10 for a, b in zip(i, ref)]) > 0.5


@pytest.mark.parametrize("cls", [IVFIndex, IVFPQIndex])
def test_ivf_save_load_remove(tmp_path, clustered, cls):
    x, q, _ = clustered
    index = cls(16, "cosine", nlist=8, nprobe=2, kmeans_iters=3, **({"m": 4, "pq_iters": 3} if cls is IVFPQIndex else {}))
    index.train(x)
    index.add(x[:1000])
    index.add(x[1000:], ids=np.arange(1000, 2000) * 3)
    d, i = index.search(q, 5)
    loaded = Index.load(index.save(tmp_path / "ivf"))
    assert type(loaded) is cls and len(loaded) == 2000
    d2, i2 = loaded.search(q, 5)
    np.testing.assert_array_equal(i, i2)
    np.testing.assert_allclose(d, d2, rtol=1e-6)
    removed = index.remove_ids(i[:, 0])
    assert removed == len(np.unique(i[:, 0])) and len(index) == 2000 - removed
    assert not np.isin(index.search(q, 5)[1], i[:, 0]).any()


@pytest.mark.parametrize("cls", [IVFIndex, IVFPQIndex])
def test_ivf_query_parallel_on_8_devices_equals_one_device(clustered, cls):
    x, q, _ = clustered
    extra = {"m": 4, "pq_iters": 3, "adc_batch": 8} if cls is IVFPQIndex else {}
    single = cls(16, "l2", nlist=16, nprobe=3, kmeans_iters=3, query_batch=32, **extra)
    single.train(x)
    single.add(x)
    sharded = cls(16, "l2", nlist=16, nprobe=3, kmeans_iters=3, query_batch=32, **extra,
                  mesh=Mesh(np.array(jax.devices()[:8]), ("data",)))
    sharded._restore(single._arrays())  # same trained index, replicated over 8 devices
    sharded._ids, sharded._trained = single._ids, True
    d, i = single.search(q, 7)
    # 50 queries, batches of 32 split 4 per device: both batches spread over the devices, one share padded
    d8, i8 = sharded.search(q, 7)
    np.testing.assert_array_equal(i, i8)
    np.testing.assert_array_equal(d, d8)
    assert set(sharded._replicas) == set(jax.devices()[:8])
    stale = sharded._replicas[jax.devices()[0]]
    single.add(x[:10])
    sharded.add(x[:10])  # a changed index is copied to the devices again
    np.testing.assert_array_equal(single.search(q, 7)[1], sharded.search(q, 7)[1])
    assert set(sharded._replicas) == set(jax.devices()[:8]) and sharded._replicas[jax.devices()[0]] is not stale


def test_ivf_bad_input(clustered):
    x, q, _ = clustered
    index = IVFIndex(16, nlist=8)
    with pytest.raises(ValueError, match="trained"):
        index.search(q, 1)
    with pytest.raises(ValueError, match="trained"):
        index.add(x)
    with pytest.raises(ValueError, match="at least nlist"):
        index.train(x[:4])
    with pytest.raises(ValueError, match="NaN"):
        index.train(np.full((10, 16), np.nan))
    index.train(x)
    with pytest.raises(ValueError, match="empty"):
        index.search(q, 1)
    index.add(x)
    with pytest.raises(ValueError, match="dimension mismatch"):
        index.search(q[:, :4], 1)
    with pytest.raises(ValueError, match="k must be"):
        index.search(q, 0)
    with pytest.raises(ValueError, match="divide"):
        IVFPQIndex(16, nlist=4, m=3)
    with pytest.raises(ValueError, match="adc_batch"):
        IVFPQIndex(16, nlist=4, m=4, adc_batch=0)


@pytest.mark.parametrize("cls, kwargs, match", [
    (IVFIndex, {"nlist": 0}, "nlist must be a positive integer"),
    (IVFIndex, {"nlist": 4.0}, "nlist must be a positive integer"),
    (IVFIndex, {"nprobe": 0}, "nprobe must be a positive integer"),
    (IVFIndex, {"chunk": 0}, "chunk must be a positive integer"),
    (IVFIndex, {"group": 0}, "group must be a positive integer"),
    (IVFIndex, {"tiles_per_step": 0}, "tiles_per_step must be a positive integer"),
    (IVFIndex, {"kmeans_iters": 0}, "kmeans_iters must be a positive integer"),
    (IVFIndex, {"compute_dtype": "float16"}, "compute_dtype"),
    (IVFPQIndex, {"m": 0}, "subquantizers must divide"),
    (IVFPQIndex, {"m": 4, "pq_iters": 0}, "pq_iters must be a positive integer"),
])
def test_bad_constructor_arguments(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(16, **{"nlist": 4, **kwargs})


@pytest.fixture(scope="module")
def small_ivf(clustered):
    x, q, _ = clustered
    index = IVFIndex(16, nlist=8, nprobe=2, kmeans_iters=3)
    index.train(x)
    index.add(x[:500])
    return index, q


@pytest.mark.parametrize("nprobe", [0, -1, 1.5, True, "2"])
def test_nprobe_must_be_a_positive_integer(small_ivf, nprobe):
    index, q = small_ivf
    with pytest.raises(ValueError, match="nprobe .* must be a positive integer"):
        index.search(q, 3, nprobe=nprobe)


def test_nprobe_default_cap_and_attribute(small_ivf):
    index, q = small_ivf
    np.testing.assert_array_equal(index.search(q, 3)[1], index.search(q, 3, nprobe=2)[1])
    np.testing.assert_array_equal(index.search(q, 3, nprobe=100)[1], index.search(q, 3, nprobe=8)[1])
    index.nprobe = 0  # set later by hand: checked at search time too
    try:
        with pytest.raises(ValueError, match="nprobe"):
            index.search(q, 3)
    finally:
        index.nprobe = 2


def test_ivf_training_on_no_vectors_is_an_error():
    with pytest.raises(ValueError, match="training needs at least one vector"):
        IVFIndex(16, nlist=2).train(np.zeros((0, 16)))


@pytest.mark.parametrize("cls", [IVFIndex, IVFPQIndex])
def test_ivf_load_checks_cells_and_sets_no_other_attributes(tmp_path, small_ivf, cls):
    index, q = small_ivf
    if cls is IVFPQIndex:
        x = small_ivf[0]._x
        index = IVFPQIndex(16, nlist=8, m=4, nprobe=2, kmeans_iters=3, pq_iters=3)
        index.train(x)
        index.add(x)
    path = index.save(tmp_path / "ivf")
    with np.load(path) as z:
        content = {k: z[k] for k in z.files}
    for lists in (np.full_like(content["list"], 8), np.full_like(content["list"], -1)):
        np.savez(tmp_path / "bad.npz", **{**content, "list": lists})
        with pytest.raises(ValueError, match=r"cell ids must lie in \[0, nlist=8\)"):
            Index.load(tmp_path / "bad.npz")
    for extra in ("device", "replicas", "trained", "ids_"):
        np.savez(tmp_path / "bad.npz", **content, **{extra: np.zeros(2)})
        with pytest.raises(ValueError, match="do not match"):
            Index.load(tmp_path / "bad.npz")
    fresh = cls(16, nlist=8, **({"m": 4} if cls is IVFPQIndex else {}))
    fresh._restore({**index._arrays(), "device": np.zeros(2)})
    assert not hasattr(fresh, "_device") or fresh._device is None
    loaded = Index.load(path)
    np.testing.assert_array_equal(loaded.search(q, 5)[1], index.search(q, 5)[1])
