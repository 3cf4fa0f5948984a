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


# ------------------------------------------------------------------ bad input: one table per entry
def _small_flat(metric="l2"):
    index = FlatIndex(4, metric)
    index.add(np.eye(4, dtype=np.float32) + 0.1, ids=[10, 11, 12, 13])
    return index


@pytest.mark.parametrize("make, match", [
    (lambda: FlatIndex(0), "dim must be a positive integer"),
    (lambda: FlatIndex(2.5), "dim must be a positive integer"),
    (lambda: FlatIndex(4, block_size=0), "block_size must be a positive integer"),
    (lambda: FlatIndex(4, query_batch=-1), "query_batch must be a positive integer"),
    (lambda: FlatIndex(4, query_batch=64.0), "query_batch must be a positive integer"),
])
def test_bad_constructor_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("x, match", [
    (np.ones((2, 4), np.complex64), "complex"),
    (np.array([["a", "b", "c", "d"]]), "numeric"),
    (np.ones((2, 2, 4)), r"\[n, 4\] matrix"),
    (np.full((1, 4), 1e20), "too large for float32"),
    (np.array([[5e18, 5e18, 0, 0]]), "too large for float32"),
])
def test_bad_vectors_are_refused_by_add_and_search(x, match):
    index = _small_flat()
    with pytest.raises(ValueError, match=match):
        index.add(x)
    with pytest.raises(ValueError, match=match):
        index.search(x, 1)
    assert len(index) == 4


@pytest.mark.parametrize("ids, match", [
    ([7.9], "ids to remove must be integers"),
    (np.array([12.0]), "ids to remove must be integers"),
    (["12"], "ids to remove must be integers"),
    ([True], "ids to remove must be integers"),
])
def test_remove_ids_refuses_non_integer_ids(ids, match):
    index = _small_flat()
    with pytest.raises(ValueError, match=match):
        index.remove_ids(ids)
    assert len(index) == 4


def test_remove_ids_accepts_integers_of_any_width_and_empty_lists():
    index = _small_flat()
    assert index.remove_ids([]) == 0
    assert index.remove_ids(np.array([12, 99], np.int32)) == 1
    assert index.remove_ids(np.uint8(13)) == 1
    assert sorted(index._ids.tolist()) == [10, 11]


@pytest.mark.parametrize("ids, match", [([1.0, 2.0], "integers"), ([-1, 2], "non-negative"), ([1], "2 integers")])
def test_bad_ids_on_add(ids, match):
    with pytest.raises(ValueError, match=match):
        FlatIndex(4).add(np.ones((2, 4)), ids=ids)


def test_large_but_representable_vectors_are_searched_correctly():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((50, 8)).astype(np.float32)
    for scale in (1e15, 1e-15):
        index = FlatIndex(8, "l2")
        index.add(x * scale)
        d, i = index.search(x[:5] * scale, 3)
        assert (i[:, 0] == np.arange(5)).all() and np.isfinite(d).all()


def test_cosine_of_tiny_vectors_is_their_direction():
    x = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.6, 0.8, 0.0, 0.0]], np.float32)
    index = FlatIndex(4, "cosine")
    index.add(x * np.array([[1e-20], [1.0], [1e-30]], np.float32))  # 1e-30 rows: squares underflow to 0
    d, i = index.search(np.array([[1e-25, 0, 0, 0]], np.float32), 3)
    assert i.tolist() == [[0, 2, 1]]
    np.testing.assert_allclose(d, [[1.0, 0.6, 0.0]], atol=1e-6)
    index.add(np.zeros((1, 4)))  # a zero row stays zero (similarity 0), as before
    assert index.search(x[:1], 4)[0][0, -1] == 0


# ------------------------------------------------------------------ saved files: checked, atomic
def _build_index(cls_name):
    """A small trained index of each class holding 60 vectors, and 9 queries."""
    from embeddings_jax import index as ix

    rng = np.random.default_rng(3)
    x = rng.standard_normal((300, 8)).astype(np.float32)
    make = {
        "FlatIndex": lambda: ix.FlatIndex(8, "ip"),
        "SQ8Index": lambda: ix.SQ8Index(8, rescore=2),
        "PQIndex": lambda: ix.PQIndex(8, m=2, iters=2),
        "BinaryIndex": lambda: ix.BinaryIndex(8, rescore=2),
        "IVFIndex": lambda: ix.IVFIndex(8, nlist=4, nprobe=2, kmeans_iters=2),
        "IVFPQIndex": lambda: ix.IVFPQIndex(8, nlist=4, m=2, nprobe=2, kmeans_iters=2, pq_iters=2),
    }[cls_name]
    index = make()
    index.train(x)
    index.add(x[:60], ids=np.arange(60) * 7)
    return index, x[:9]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """``saved(cls_name) -> (index, path, queries)``, each built and saved once per module."""
    cache = {}

    def get(cls_name):
        if cls_name not in cache:
            index, q = _build_index(cls_name)
            cache[cls_name] = (index, index.save(tmp_path_factory.mktemp("saved") / cls_name), q)
        return cache[cls_name]

    return get


def _rewrite(src, dst, meta=None, drop=(), **arrays):
    """Copies a saved index with some metadata keys or arrays replaced (``None`` values delete keys)."""
    import json

    with np.load(src) as z:
        content = {k: z[k] for k in z.files}
    m = json.loads(str(content["__meta__"]))
    for key, value in (meta or {}).items():
        target, key = (m["config"], key[7:]) if key.startswith("config.") else (m, key)
        if value is None:
            target.pop(key)
        else:
            target[key] = value
    content["__meta__"] = np.array(json.dumps(m))
    content.update(arrays)
    for name in drop:
        content.pop(name)
    np.savez(dst, **content)
    return dst


INDEX_CLASSES = ["FlatIndex", "SQ8Index", "PQIndex", "BinaryIndex", "IVFIndex", "IVFPQIndex"]

TAMPERED = [
    ({"meta": {"class": "load"}}, "unknown index class 'load'"),
    ({"meta": {"class": "Index"}}, "unknown index class 'Index'"),
    ({"meta": {"class": "KeyedVectors"}}, "unknown index class"),
    ({"meta": {"class": 3}}, "unknown index class 3"),
    ({"meta": {"trained": None}}, "exactly 'class', 'config' and 'trained'"),
    ({"meta": {"extra": 1}}, "exactly 'class', 'config' and 'trained'"),
    ({"meta": {"trained": "yes"}}, "'trained' a boolean"),
    ({"meta": {"config": [8]}}, "'config' must be an object"),
    ({"meta": {"config.evil": 1}}, "does not build"),
    ({"meta": {"config.mesh": 1}}, "does not build"),
    ({"meta": {"config.dim": "8"}}, "does not build"),
    ({"meta": {"config.block_size": 3.5}}, "does not build"),
    ({"meta": {"config.metric": "hamming"}}, "does not build"),
    ({"meta": {"config.block_size": None}}, "is not a .* config"),
    ({"meta": {"config.dim": 16}}, r"expected (float32|uint8)\["),
    ({"ids": np.arange(60.0)}, "'ids' must be a 1-D integer array"),
    ({"ids": np.arange(-1, 59)}, "ids must be non-negative"),
    ({"ids": np.arange(61)}, "expected"),
    ({"evil": np.zeros(3)}, "do not match"),
    ({"drop": ["ids"]}, "'ids' must be"),
]


@pytest.mark.parametrize("cls_name", INDEX_CLASSES)
@pytest.mark.parametrize("change, match", TAMPERED)
def test_load_refuses_tampered_files(tmp_path, saved, cls_name, change, match):
    _, path, _ = saved(cls_name)
    bad = _rewrite(path, tmp_path / "bad.npz", **change)
    with pytest.raises(ValueError, match=match):
        Index.load(bad)


@pytest.mark.parametrize("cls_name", INDEX_CLASSES)
def test_load_refuses_wrong_arrays(tmp_path, saved, cls_name):
    index, path, _ = saved(cls_name)
    for name, a in index._arrays().items():
        for bad_array, match in [(a.astype(np.float64 if a.dtype != np.float64 else np.float32), "expected"),
                                 (a[:-1] if len(a) else np.zeros((1, *a.shape[1:]), a.dtype), "expected"),
                                 (a.reshape(-1), "expected")]:
            if bad_array.shape == a.shape and bad_array.dtype == a.dtype:
                continue
            with pytest.raises(ValueError, match=match):
                Index.load(_rewrite(path, tmp_path / "bad.npz", **{name: bad_array}))
        with pytest.raises(ValueError, match="do not match"):
            Index.load(_rewrite(path, tmp_path / "bad.npz", drop=[name]))
        if a.dtype == np.float32 and a.size:
            nan = a.copy()
            nan.reshape(-1)[0] = np.nan
            with pytest.raises(ValueError, match=f"array '{name}' holds NaN"):
                Index.load(_rewrite(path, tmp_path / "bad.npz", **{name: nan}))


@pytest.mark.parametrize("cls_name", INDEX_CLASSES)
def test_truncated_or_byte_flipped_files_are_errors_never_wrong_results(tmp_path, saved, cls_name):
    index, path, q = saved(cls_name)
    want_d, want_i = index.search(q, 4)
    raw = path.read_bytes()
    bad = tmp_path / "bad.npz"
    for n in (0, 1, 30, len(raw) // 3, len(raw) // 2, len(raw) - 22, len(raw) - 1):
        bad.write_bytes(raw[:n])
        with pytest.raises(ValueError, match="not a readable saved index"):
            Index.load(bad)
    # bytes of the zip headers at both ends, a spread in between (flipping every byte once gave the same)
    spots = sorted(set(range(0, min(120, len(raw)), 2)) | set(range(max(0, len(raw) - 300), len(raw), 2))
                   | set(range(0, len(raw), 211)))
    survived = 0
    for pos in spots:
        flipped = bytearray(raw)
        flipped[pos] ^= 0xFF
        bad.write_bytes(flipped)
        try:
            loaded = Index.load(bad)
        except ValueError as e:
            assert str(bad) in str(e) and "save the index again" in str(e), (pos, str(e))
            continue
        survived += 1  # a byte zip does not use (a timestamp, a version field): same index
        d, i = loaded.search(q, 4)
        np.testing.assert_array_equal(i, want_i, err_msg=f"byte {pos} flipped")
        np.testing.assert_array_equal(d, want_d, err_msg=f"byte {pos} flipped")
    assert survived < len(spots) // 2


def test_load_refuses_other_file_kinds(tmp_path):
    (tmp_path / "text.npz").write_text("hello")
    np.save(tmp_path / "array.npy", np.zeros(3))
    np.savez(tmp_path / "plain.npz", a=np.zeros(3))
    np.savez(tmp_path / "meta.npz", __meta__=np.array("{not json"))
    np.savez(tmp_path / "obj.npz", __meta__=np.array([{"class": "FlatIndex"}], dtype=object))
    for name in ("text.npz", "array.npy", "plain.npz", "meta.npz", "obj.npz"):
        with pytest.raises(ValueError, match="not a readable saved index"):
            Index.load(tmp_path / name)


def test_save_is_atomic_and_load_checks_the_class(tmp_path, monkeypatch):
    from embeddings_jax.index import IVFIndex

    index, _ = _build_index("FlatIndex")
    path = index.save(tmp_path / "FlatIndex")
    before = path.read_bytes()
    bigger = FlatIndex(8, "ip")
    bigger.add(np.ones((5, 8)))

    def failing_savez(f, **arrays):
        f.write(b"PK partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", failing_savez)
    with pytest.raises(OSError, match="disk full"):
        bigger.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["FlatIndex.npz"]
    assert bigger.save(tmp_path / "FlatIndex") == path and len(Index.load(path)) == 5
    with pytest.raises(ValueError, match="holds a FlatIndex, not a IVFIndex"):
        IVFIndex.load(path)
