"""Feature encoders: round-trips, unknown categories, hashing stability, scalers, jit, bad input."""

import gzip

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from embeddings_jax.data import features as F

# ----------------------------------------------------------------------------- plain references


def _ref_fnv1a_32(data: bytes, start: int = 0x811C9DC5) -> int:
    h = start
    for byte in data:
        h = ((h ^ byte) * 0x01000193) % 2**32
    return h


def _ref_fmix32(h: int) -> int:
    h ^= h >> 16
    h = (h * 0x85EBCA6B) % 2**32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) % 2**32
    return h ^ (h >> 16)


def _ref_hash(value, seed: int = 0) -> int:
    data = (
        value.encode("utf-8", "surrogatepass")
        if isinstance(value, str)
        else (value % 2**64).to_bytes(8, "little")
    )
    return _ref_fmix32(_ref_fnv1a_32(data, 0x811C9DC5 ^ _ref_fmix32(seed)))


# numpy's str dtype drops trailing NUL characters (documented in features.py), so none here
_TEXT = st.text(st.characters(blacklist_characters="\x00"), max_size=12)

# ----------------------------------------------------------------------------- label encoding


def test_label_encoder_strings_round_trip_and_bucket():
    enc = F.LabelEncoder.fit(["technician", "writer", "artist", "writer"])
    np.testing.assert_array_equal(enc.categories, ["artist", "technician", "writer"])
    assert (enc.num_categories, enc.unknown_id, enc.num_ids) == (3, 3, 4)
    ids = enc.transform([["writer", "artist"], ["doctor", "technician"]])
    assert ids.dtype == np.int32 and ids.shape == (2, 2)
    np.testing.assert_array_equal(ids, [[2, 0], [3, 1]])
    np.testing.assert_array_equal(
        enc.inverse_transform(ids), [["writer", "artist"], ["<unk>", "technician"]]
    )
    np.testing.assert_array_equal(enc.inverse_transform([3], unknown_value="?"), ["?"])
    assert enc.transform("artist") == 0  # scalars keep their (empty) shape
    assert enc.transform(np.array([], dtype=str)).shape == (0,)
    # bytes (as read from files) and object arrays of str are the same categories
    np.testing.assert_array_equal(enc.transform(np.array([b"writer"])), [2])
    np.testing.assert_array_equal(enc.transform(np.array(["artist"], dtype=object)), [0])


def test_label_encoder_unknown_error_names_unseen_values():
    enc = F.LabelEncoder.fit(["F", "M"], unknown="error")
    assert enc.num_ids == 2
    np.testing.assert_array_equal(enc.transform(["M", "F"]), [1, 0])
    with pytest.raises(ValueError, match=r"2 unseen categories \['X', 'Y'\].*unknown='bucket'"):
        enc.transform(["M", "Y", "X", "Y"])
    with pytest.raises(ValueError, match=r"outside \[0, 2\)"):
        enc.inverse_transform([2])


def test_label_encoder_min_count_sends_rare_values_to_bucket():
    enc = F.LabelEncoder.fit([1, 1, 2, 3, 3, 3], min_count=2)
    np.testing.assert_array_equal(enc.categories, [1, 3])
    np.testing.assert_array_equal(enc.transform([1, 2, 3]), [0, 2, 1])
    with pytest.raises(ValueError, match="unknown='bucket'"):
        F.LabelEncoder.fit([1, 2], unknown="error", min_count=2)
    with pytest.raises(ValueError, match="at least 5 times"):
        F.LabelEncoder.fit([1, 2], min_count=5)


def test_label_encoder_ints_under_jit_match_host():
    values = np.array([10, -3, 7, 10, 2**20])
    enc = F.LabelEncoder.fit(values)
    assert enc.categories.dtype == np.int32
    query = np.array([[7, 10, 5], [-3, 2**20, -4]])
    host = enc.transform(query)
    np.testing.assert_array_equal(host, [[1, 2, 4], [0, 3, 4]])
    passed = jax.jit(lambda e, x: e.transform(x))(enc, jnp.asarray(query))  # encoder as argument
    closed = jax.jit(enc.transform)(jnp.asarray(query))  # encoder closed over
    assert passed.dtype == jnp.int32
    np.testing.assert_array_equal(passed, host)
    np.testing.assert_array_equal(closed, host)
    decoded = jax.jit(lambda e, i: e.inverse_transform(i))(enc, passed)
    np.testing.assert_array_equal(decoded, np.where(host == 4, -1, query))


def test_label_encoder_int64_categories_stay_on_host():
    enc = F.LabelEncoder.fit([2**40, 1])
    assert enc.categories.dtype == np.int64
    np.testing.assert_array_equal(enc.transform([2**40, 5]), [1, 2])
    with pytest.raises(ValueError, match="exceed int32"):
        enc.transform(jnp.array([1]))


@pytest.mark.parametrize(
    "values, match",
    [
        ([1.0, 2.0], "float64.*integer dtype"),
        (np.array([True, False]), "booleans"),
        (np.array(["a", 1], dtype=object), "mix of"),
        (np.array(["2024-01-01"], dtype="datetime64[D]"), "strings or integers"),
    ],
)
def test_categorical_dtype_errors(values, match):
    with pytest.raises(ValueError, match=match):
        F.LabelEncoder.fit(values)


def test_label_encoder_bad_input_errors():
    strings = F.LabelEncoder.fit(["a", "b"])
    ints = F.LabelEncoder.fit([1, 2])
    with pytest.raises(ValueError, match="empty"):
        F.LabelEncoder.fit([])
    with pytest.raises(ValueError, match="unknown must be one of"):
        F.LabelEncoder.fit(["a"], unknown="ignore")
    with pytest.raises(ValueError, match="fitted on strings"):
        strings.transform([1, 2])
    with pytest.raises(ValueError, match="fitted on integers"):
        ints.transform(["1"])
    with pytest.raises(ValueError, match="float32"):
        ints.transform(np.array([1.0], np.float32))
    with pytest.raises(ValueError, match="integers, got dtype float32"):
        jax.jit(ints.transform)(jnp.array([1.0]))
    with pytest.raises(ValueError, match="string categories are mapped on host"):
        strings.transform(jnp.array([0]))
    with pytest.raises(ValueError, match="ids must be integers"):
        ints.inverse_transform(np.array([0.0]))


@settings(max_examples=40, deadline=None)
@given(
    st.one_of(
        st.lists(_TEXT.map(lambda t: t[:6]), min_size=1, max_size=30),
        st.lists(st.integers(-(2**31), 2**31 - 1), min_size=1, max_size=30),
    )
)
def test_label_round_trip_property(values):
    enc = F.LabelEncoder.fit(values, unknown="error")
    ids = enc.transform(values)
    assert ids.min() >= 0 and ids.max() < enc.num_ids == len(set(values))
    assert enc.inverse_transform(ids).tolist() == list(values)


# ----------------------------------------------------------------------------- one-hot and binary


def test_one_hot_encoder_round_trip_and_jit():
    enc = F.OneHotEncoder.fit(["M", "F", "F"])
    x = enc.transform(["F", "M", "?"])
    assert x.dtype == np.float32 and enc.num_columns == 3
    np.testing.assert_array_equal(x, [[1, 0, 0], [0, 1, 0], [0, 0, 1]])
    np.testing.assert_array_equal(enc.inverse_transform(x), ["F", "M", "<unk>"])
    ids = jnp.array([[0, 2], [1, 5]])
    out = jax.jit(F.one_hot, static_argnums=1)(ids, 3)
    np.testing.assert_array_equal(out, jax.nn.one_hot(ids, 3))  # out-of-range id -> zero row
    np.testing.assert_array_equal(out, F.one_hot(np.asarray(ids), 3))
    with pytest.raises(ValueError, match=r"fitted on 3 column\(s\)"):
        enc.inverse_transform(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="ids must be integers"):
        F.one_hot(np.array([0.5]), 3)


@pytest.mark.parametrize(
    "n, unknown, bits",
    [
        (1, "bucket", 1),
        (2, "bucket", 2),
        (3, "bucket", 2),
        (4, "bucket", 3),
        (7, "bucket", 3),
        (8, "bucket", 4),
        (21, "bucket", 5),
        (1, "error", 1),
        (2, "error", 1),
        (4, "error", 2),
        (5, "error", 3),
    ],
)
def test_binary_bit_widths(n, unknown, bits):
    enc = F.BinaryEncoder.fit(np.arange(n), unknown=unknown)
    assert enc.num_bits == bits
    if unknown == "bucket":
        assert bits == int(np.ceil(np.log2(n + 1)))
    assert enc.transform(np.arange(n)).shape == (n, bits)


def test_binary_encoder_codes_round_trip_and_jit():
    enc = F.BinaryEncoder.fit(list("abcde"))  # ids 0..4, unknown bucket 5 -> 3 bits
    codes = enc.transform(["a", "d", "e", "zzz"])
    np.testing.assert_array_equal(codes, [[0, 0, 0], [0, 1, 1], [1, 0, 0], [1, 0, 1]])
    np.testing.assert_array_equal(enc.inverse_transform(codes), ["a", "d", "e", "<unk>"])
    with pytest.raises(ValueError, match=r"outside \[0, 6\)"):
        enc.inverse_transform([[1, 1, 1]])  # code 7 is no id
    ids = jnp.arange(6)
    bits = jax.jit(F.binary_encode, static_argnums=1)(ids, 3)
    np.testing.assert_array_equal(bits, F.binary_encode(np.arange(6), 3))
    np.testing.assert_array_equal(jax.jit(F.binary_decode)(bits), ids)
    with pytest.raises(ValueError, match=r"\[0, 2\*\*3\), got \[-1, 8\]"):
        F.binary_encode(np.array([0, 8, -1, 8]), 3)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 2**20 - 1), min_size=1, max_size=50))
def test_binary_round_trip_property(ids):
    ids = np.asarray(ids)
    bits = F.num_bits(int(ids.max()) + 1)
    np.testing.assert_array_equal(F.binary_decode(F.binary_encode(ids, bits)), ids)


# ----------------------------------------------------------------------------- hashing


def test_fnv1a_matches_published_vectors():
    # Reference values of 32-bit FNV-1a (Fowler/Noll/Vo test suite).
    assert F._fnv1a_32(["", "a", "foobar"]).tolist() == [0x811C9DC5, 0xE40C292C, 0xBF9CF968]


def test_stable_hash_fixed_values():
    # Fixed across processes, machines and versions: changing them re-buckets saved features.
    values = ["", "a", "90210", "écrivain"]
    want = [0xAB3E7C0B, 0x1A80B1B3, 0x4905B1B4, 0x9261ECD7]
    assert F.stable_hash(values).tolist() == want == [_ref_hash(v) for v in values]
    assert F.hash_buckets(["90210", "10001", "technician"], 1000).tolist() == [940, 144, 432]
    assert F.hash_buckets(np.array([1, -1, 2**40]), 1000).tolist() == [210, 407, 278]
    assert F.HashEncoder(100, num_hashes=3).transform(["a", "b"]).tolist() == [
        [15, 68, 47],
        [74, 22, 96],
    ]


@settings(max_examples=50, deadline=None)
@given(st.lists(_TEXT, min_size=1, max_size=20), st.integers(0, 2**32 - 4))
def test_stable_hash_matches_reference_property(values, seed):
    assert F.stable_hash(values, seed).tolist() == [_ref_hash(v, seed) for v in values]


def test_int_hash_under_jit_matches_host():
    x = np.array([0, 1, -1, 7, -(2**31), 2**31 - 1, 123456789])
    host = F.hash_buckets(x, 97, seed=3)
    assert host.tolist() == [_ref_hash(int(v), 3) % 97 for v in x]
    traced = jax.jit(lambda v: F.hash_buckets(v, 97, seed=3))(jnp.asarray(x, jnp.int32))
    assert traced.dtype == jnp.int32
    np.testing.assert_array_equal(traced, host)
    np.testing.assert_array_equal(
        jax.jit(F.HashEncoder(50, 4).transform)(jnp.asarray(x, jnp.int32)),
        F.HashEncoder(50, 4).transform(x),
    )
    with pytest.raises(ValueError, match="only integers hash inside jit"):
        F.stable_hash(jnp.array([1.0]))


def test_hash_buckets_are_roughly_uniform_and_seeds_independent():
    values = [f"user-{i}" for i in range(20_000)]
    n = 64
    ids = F.hash_buckets(values, n)
    counts = np.bincount(ids, minlength=n)
    expected = len(values) / n
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < 120, chi2  # 63 dof: p(chi2 > 120) < 1e-4 for a uniform hash
    two = F.HashEncoder(n, num_hashes=2).transform(values)
    assert two.shape == (20_000, 2)
    np.testing.assert_array_equal(two[:, 0], ids)
    assert np.mean(two[:, 0] == two[:, 1]) < 2.5 / n  # different seeds ~ independent


def test_hash_bad_input_errors():
    with pytest.raises(ValueError, match="num_buckets"):
        F.hash_buckets(["a"], 0)
    with pytest.raises(ValueError, match="num_hashes"):
        F.HashEncoder(10, num_hashes=0)
    with pytest.raises(ValueError, match="seed"):
        F.stable_hash(["a"], seed=-1)
    with pytest.raises(ValueError, match="float64"):
        F.hash_buckets([0.5], 10)


# ----------------------------------------------------------------------------- numeric


def test_standard_scaler_hand_computed():
    train = np.array([[1.0, 10.0, 4.0], [3.0, 30.0, 4.0], [5.0, 20.0, 4.0]])
    sc = F.StandardScaler.fit(train)
    np.testing.assert_allclose(sc.mean, [3.0, 20.0, 4.0])
    # population std: sqrt(8/3), sqrt(200/3); the constant column keeps scale 1
    np.testing.assert_allclose(sc.scale, [np.sqrt(8 / 3), np.sqrt(200 / 3), 1.0], rtol=1e-6)
    new = np.array([[7.0, 0.0, 4.0], [3.0, 20.0, 5.0]])
    want = [[4 / np.sqrt(8 / 3), -20 / np.sqrt(200 / 3), 0.0], [0.0, 0.0, 1.0]]
    out = sc.transform(new)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, want, rtol=1e-6)
    np.testing.assert_allclose(sc.inverse_transform(out), new, rtol=1e-6, atol=1e-5)
    traced = jax.jit(lambda s, x: s.transform(x))(sc, jnp.asarray(new))
    assert traced.dtype == jnp.float32
    np.testing.assert_allclose(traced, want, rtol=1e-6)
    np.testing.assert_allclose(jax.jit(sc.inverse_transform)(jnp.asarray(out)), new, atol=1e-5)


def test_standard_scaler_constant_column_with_rounding_is_zero_variance():
    sc = F.StandardScaler.fit(np.full(3, 0.1))  # the mean is not exactly 0.1 in float64
    assert sc.scale == 1.0
    np.testing.assert_allclose(sc.transform([0.1, 0.3]), [0.0, 0.2], atol=1e-7)


def test_one_column_scaler_transforms_any_shape():
    years = np.array([1990, 1995, 2000])
    sc = F.StandardScaler.fit(years)
    assert sc.mean.shape == ()
    np.testing.assert_allclose(
        sc.transform([[1995, 2000]]), [[0.0, 5 / np.sqrt(50 / 3)]], rtol=1e-6
    )


def test_min_max_scaler_hand_computed():
    train = np.array([[1.0, 10.0, 7.0], [3.0, 30.0, 7.0], [5.0, 5.0, 7.0]])
    mm = F.MinMaxScaler.fit(train, feature_range=(-1, 1))
    new = np.array([[2.0, 20.0, 7.0], [9.0, 0.0, 8.0]])
    # column 0: [1, 5] -> [-1, 1]; column 1: [5, 30] -> [-1, 1]; constant column -> low end (+ x - 7)
    want = [[-0.5, 0.2, -1.0], [3.0, -1.4, 1.0]]
    np.testing.assert_allclose(mm.transform(new), want, rtol=1e-6)
    np.testing.assert_allclose(mm.transform(new, clip=True), np.clip(want, -1, 1), rtol=1e-6)
    np.testing.assert_allclose(mm.inverse_transform(mm.transform(new)), new, atol=1e-5)
    traced = jax.jit(lambda m, x: m.transform(x, clip=True))(mm, jnp.asarray(new))
    np.testing.assert_allclose(traced, np.clip(want, -1, 1), rtol=1e-6)
    with pytest.raises(ValueError, match="low < high"):
        F.MinMaxScaler.fit(train, feature_range=(1, 1))


@pytest.mark.parametrize("cls", [F.StandardScaler, F.MinMaxScaler])
def test_scaler_bad_input_errors(cls):
    good = cls.fit(np.arange(6.0).reshape(3, 2))
    with pytest.raises(ValueError, match=r"1 NaN/inf value\(s\) in column\(s\) \[1\]"):
        cls.fit([[1.0, 2.0], [3.0, np.nan]])
    with pytest.raises(ValueError, match="NaN/inf"):
        good.transform([[1.0, np.inf]])
    with pytest.raises(ValueError, match="empty"):
        cls.fit(np.zeros((0, 2)))
    with pytest.raises(ValueError, match=r"\[N\] or \[N, D\]"):
        cls.fit(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match=r"fitted on 2 column\(s\).*\(3, 3\)"):
        good.transform(np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"fitted on 2 column\(s\)"):
        jax.jit(good.transform)(jnp.zeros((3, 3)))
    with pytest.raises(ValueError, match="expected numbers"):
        good.transform(np.array([["a", "b"]]))
    with pytest.raises(ValueError, match="expected numbers"):
        cls.fit(np.array(["1", "2"]))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(-1e4, 1e4), st.floats(-1e4, 1e4)), min_size=1, max_size=30))
def test_scaler_round_trip_property(rows):
    x = np.asarray(rows)
    for scaler in (F.StandardScaler.fit(x), F.MinMaxScaler.fit(x)):
        y = scaler.transform(x)
        assert np.all(np.isfinite(y))
        np.testing.assert_allclose(scaler.inverse_transform(y), x, rtol=1e-5, atol=1e-2)
    y = F.MinMaxScaler.fit(x).transform(x)
    assert y.min() >= -1e-6 and y.max() <= 1 + 1e-6


def test_bucketize_age_groups():
    bounds = [18, 25, 35, 45, 50, 56]
    ages = np.array([7, 18, 24, 25, 49.5, 56, 73])
    want = [0, 1, 1, 2, 4, 6, 6]
    np.testing.assert_array_equal(F.bucketize(ages, bounds), want)
    np.testing.assert_array_equal(
        jax.jit(lambda a: F.bucketize(a, bounds))(jnp.asarray(ages)), want
    )
    np.testing.assert_array_equal(F.bucketize(jnp.array([7, 18, 73]), bounds), [0, 1, 6])
    with pytest.raises(ValueError, match="increasing"):
        F.bucketize(ages, [18, 18])
    with pytest.raises(ValueError, match="NaN"):
        F.bucketize([np.nan], bounds)


def test_encoders_on_a_sharded_batch_match_host():
    from embeddings_jax.train import sharding

    mesh = sharding.make_mesh()
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 30, size=16)
    x = rng.normal(size=(16, 3)) * [1.0, 10.0, 100.0]
    labels = F.LabelEncoder.fit(np.arange(0, 30, 2))
    scaler = F.StandardScaler.fit(x[:8])
    hasher = F.HashEncoder(64, num_hashes=2)

    @jax.jit
    def encode(labels, scaler, batch):
        item = labels.transform(batch["ids"])
        return {
            "one_hot": F.one_hot(item, labels.num_ids),
            "hashed": hasher.transform(batch["ids"]),
            "scaled": scaler.transform(batch["x"]),
        }

    batch = sharding.shard_batch({"ids": ids.astype(np.int32), "x": x.astype(np.float32)}, mesh)
    out = encode(labels, scaler, batch)
    assert out["scaled"].sharding.is_equivalent_to(sharding.batch_sharding(mesh), 2)
    np.testing.assert_array_equal(out["one_hot"], F.OneHotEncoder(labels).transform(ids))
    np.testing.assert_array_equal(out["hashed"], hasher.transform(ids))
    np.testing.assert_allclose(out["scaled"], scaler.transform(x), rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- real data


def test_movielens_user_features(shared_data):
    folder = shared_data("ml-100k")
    with gzip.open(folder / "u.user.gz", "rt", encoding="latin-1") as f:
        users = np.array([line.rstrip("\n").split("|") for line in f])
    age, gender, occupation, zips = users[:, 1].astype(int), users[:, 2], users[:, 3], users[:, 4]
    train, test = slice(0, 800), slice(800, None)
    occ = F.LabelEncoder.fit(occupation[train])
    known = set(occupation[train])
    occ_ids = occ.transform(occupation[test])
    np.testing.assert_array_equal(
        occ_ids == occ.unknown_id, [o not in known for o in occupation[test]]
    )
    sex = F.OneHotEncoder.fit(gender[train], unknown="error")
    assert sex.transform(gender).sum(0).tolist() == [
        (gender == "F").sum(),
        (gender == "M").sum(),
    ]
    ages = F.bucketize(age, [18, 25, 35, 45, 50, 56])
    zip_ids = F.hash_buckets(np.array([z[:3] for z in zips]), 500)
    scaled = F.StandardScaler.fit(age[train]).transform(age[test])
    assert occ_ids.dtype == ages.dtype == zip_ids.dtype == np.int32
    assert ages.max() <= 6 and 0 <= zip_ids.min() and zip_ids.max() < 500
    assert abs(scaled.mean()) < 0.3 and scaled.dtype == np.float32
