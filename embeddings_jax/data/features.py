"""Feature encoders: fitted on host with numpy, applied with pure functions that also run under jit.

Categorical: ``LabelEncoder`` (ids with an explicit unknown bucket), ``OneHotEncoder``,
``BinaryEncoder``, and stateless hashing (``stable_hash``, ``hash_buckets``, ``HashEncoder``).
Numeric: ``StandardScaler`` (z-score), ``MinMaxScaler`` and ``bucketize``.

Every fitted encoder is a frozen ``flax.struct`` dataclass, i.e. a small pytree of arrays with
its options as static fields, so it can be closed over or passed as an argument to ``jax.jit``.

One rule for every ``transform``: **the output follows the input.**

* numpy arrays, lists or scalars in -> numpy out, computed on host with full validation
  (unseen categories under ``unknown="error"``, NaN/inf, out-of-range ids);
* ``jax.Array`` in (or an encoder whose leaves are traced) -> ``jax.Array`` out, computed with
  pure ``jnp`` ops that trace under ``jit``. Dtype and shape are still checked (they are static);
  values cannot be, so NaN propagates and, for ``unknown="error"``, unseen values get the
  ``unknown_id`` (= number of categories). Validate on host first if that matters.

Strings are categories on host only (XLA has no strings): map them to ids with numpy, then use
``one_hot`` / ``binary_encode`` / embedding lookups on the ids inside ``jit`` (they pass through
numpy's ``str`` dtype, which drops trailing NUL characters: ``"a\\0"`` is ``"a"``). Integer
categories can be looked up inside ``jit`` (sorted-array ``searchsorted``) when they fit in int32.

MovieLens-style user features, for example::

    occupation = LabelEncoder.fit(train_occupations)          # str [N] -> vocabulary
    occ_ids = occupation.transform(occupations)               # int32 [M], unseen -> bucket
    gender = OneHotEncoder.fit(["F", "M"], unknown="error")
    age_ids = bucketize(ages, [18, 25, 35, 45, 50, 56])        # int32 [M] in [0, 6]
    zip_ids = hash_buckets([z[:3] for z in zips], 1000)       # int32 [M] in [0, 1000)
    year = StandardScaler.fit(train_years)                    # float32 z-scores
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

__all__ = [
    "BinaryEncoder",
    "HashEncoder",
    "LabelEncoder",
    "MinMaxScaler",
    "OneHotEncoder",
    "StandardScaler",
    "binary_decode",
    "binary_encode",
    "bucketize",
    "hash_buckets",
    "num_bits",
    "one_hot",
    "stable_hash",
]

_UNKNOWN_MODES = ("bucket", "error")
_INT32 = np.iinfo(np.int32)


# ----------------------------------------------------------------------------- helpers


def _uses_jax(*xs) -> bool:
    return any(isinstance(x, jax.Array) for x in xs)


def _preview(values, limit: int = 10) -> str:
    values = list(values)
    shown = ", ".join(repr(v.item() if hasattr(v, "item") else v) for v in values[:limit])
    return f"[{shown}{', ...' if len(values) > limit else ''}]"


def _categorical(values, what: str) -> np.ndarray:
    """Host values as a str or int64 array (any shape); rejects floats, bools and mixed objects."""
    x = np.asarray(values)
    kind = x.dtype.kind
    if kind == "O":
        flat = x.ravel().tolist()
        if all(isinstance(v, str) for v in flat):
            return np.asarray(flat, dtype=str).reshape(x.shape)
        if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in flat):
            return np.asarray(flat, dtype=np.int64).reshape(x.shape)
        kinds = sorted({type(v).__name__ for v in flat})
        raise ValueError(f"{what}: categories must be all str or all int, got a mix of {kinds}")
    if kind == "S":
        return np.char.decode(x, "utf-8")
    if kind == "U":
        return x
    if kind in "iu":
        if kind == "u" and x.size and x.max() > np.iinfo(np.int64).max:
            raise ValueError(f"{what}: unsigned values above 2**63-1 are not supported")
        return x.astype(np.int64)
    if kind == "b":
        raise ValueError(
            f"{what}: got booleans; they are already a 0/1 encoding "
            "(cast with .astype(int) to encode them as categories)"
        )
    raise ValueError(
        f"{what}: categories must be strings or integers, got dtype {x.dtype}"
        + (" (round and cast floats to an integer dtype first)" if kind in "fc" else "")
    )


def _numeric(x, what: str) -> np.ndarray:
    """Host values as float64, rejecting non-numeric dtypes and NaN/inf."""
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise ValueError(f"{what}: expected numbers, got dtype {x.dtype}")
    x = x.astype(np.float64)
    bad = ~np.isfinite(x)
    if bad.any():
        where = (
            f" in column(s) {np.flatnonzero(bad.reshape(-1, x.shape[-1]).any(0)).tolist()}"
            if x.ndim >= 2
            else ""
        )
        raise ValueError(
            f"{what}: {int(bad.sum())} NaN/inf value(s){where}; impute or drop them first"
        )
    return x


def _check_jax_numeric(x, what: str) -> None:
    if not (jnp.issubdtype(x.dtype, jnp.number) or x.dtype == jnp.bool_):
        raise ValueError(f"{what}: expected numbers, got dtype {x.dtype}")


def _check_columns(x, fitted_shape: tuple, what: str) -> None:
    """A scaler fitted on [N, D] transforms [..., D]; one fitted on [N] transforms any shape."""
    if fitted_shape and (x.ndim == 0 or x.shape[-1] != fitted_shape[0]):
        raise ValueError(
            f"{what}: fitted on {fitted_shape[0]} column(s), got an array of shape {tuple(x.shape)} "
            f"(expected [..., {fitted_shape[0]}])"
        )


def _fit_matrix(x, what: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim not in (1, 2):
        raise ValueError(f"{what}: fit expects [N] or [N, D] data, got shape {x.shape}")
    if x.shape[0] == 0:
        raise ValueError(f"{what}: cannot fit on empty data (shape {x.shape})")
    return _numeric(x, what)


def _check_ids_dtype(ids, what: str) -> None:
    if ids.dtype.kind not in "iu":
        raise ValueError(f"{what}: ids must be integers, got dtype {ids.dtype}")


# ----------------------------------------------------------------------------- categorical


@struct.dataclass
class LabelEncoder:
    """Categories -> ids: known values get ``0..n-1`` in sorted order, unseen ones ``n``.

    Build with ``LabelEncoder.fit``. Fields: ``categories`` [n], sorted distinct training values
    (str, or int32 when they fit, else int64); ``unknown`` (static): ``"bucket"`` maps unseen
    values to the extra id ``n`` (``num_ids = n + 1``), ``"error"`` raises a ``ValueError`` naming
    them (``num_ids = n``).
    """

    categories: Any
    unknown: str = struct.field(pytree_node=False, default="bucket")

    @classmethod
    def fit(cls, values, unknown: str = "bucket", min_count: int = 1) -> LabelEncoder:
        """Vocabulary of ``values`` (str or int, any shape); values seen < ``min_count`` times
        are left out (they then map to the unknown bucket)."""
        if unknown not in _UNKNOWN_MODES:
            raise ValueError(f"unknown must be one of {_UNKNOWN_MODES}, got {unknown!r}")
        if min_count < 1:
            raise ValueError(f"min_count must be >= 1, got {min_count}")
        if min_count > 1 and unknown == "error":
            raise ValueError("min_count > 1 drops rare categories, which needs unknown='bucket'")
        if np.size(values) == 0:
            raise ValueError("LabelEncoder.fit: cannot fit on empty data")
        values = _categorical(values, "LabelEncoder.fit")
        cats, counts = np.unique(values.ravel(), return_counts=True)
        cats = cats[counts >= min_count]
        if cats.size == 0:
            raise ValueError(f"LabelEncoder.fit: no category occurs at least {min_count} times")
        if cats.dtype.kind == "i" and _INT32.min <= cats[0] and cats[-1] <= _INT32.max:
            cats = cats.astype(np.int32)
        return cls(categories=cats, unknown=unknown)

    @property
    def num_categories(self) -> int:
        """n, the number of known categories."""
        return self.categories.shape[0]

    @property
    def unknown_id(self) -> int:
        """The id unseen values get (``n``); a valid id only with ``unknown="bucket"``."""
        return self.num_categories

    @property
    def num_ids(self) -> int:
        """Size of the id space (rows of an embedding table): n, plus 1 for the bucket."""
        return self.num_categories + (self.unknown == "bucket")

    @property
    def _is_str(self) -> bool:
        return isinstance(self.categories, np.ndarray) and self.categories.dtype.kind == "U"

    def transform(self, values):
        """str/int values [...] -> int32 ids [...]."""
        if _uses_jax(values, self.categories):
            return self._transform_jax(values)
        if np.size(values) == 0:
            return np.zeros(np.shape(values), np.int32)
        values = _categorical(values, "LabelEncoder.transform")
        cats = self.categories
        if (values.dtype.kind == "U") != self._is_str:
            raise ValueError(
                f"LabelEncoder.transform: fitted on {'strings' if self._is_str else 'integers'}, "
                f"got values of dtype {values.dtype}"
            )
        n = cats.shape[0]
        pos = np.minimum(np.searchsorted(cats, values), n - 1)
        found = cats[pos] == values
        if self.unknown == "error" and not found.all():
            unseen = np.unique(values[~found])
            raise ValueError(
                f"LabelEncoder.transform: {unseen.size} unseen categor"
                f"{'y' if unseen.size == 1 else 'ies'} {_preview(unseen)} and unknown='error'; "
                "fit with unknown='bucket' to map unseen values to an unknown id"
            )
        return np.where(found, pos, n).astype(np.int32)

    def _transform_jax(self, values):
        if self._is_str:
            raise ValueError(
                "LabelEncoder.transform: string categories are mapped on host; "
                "pass numpy/str values (then use the int ids inside jit)"
            )
        values = jnp.asarray(values)
        if not jnp.issubdtype(values.dtype, jnp.integer):
            raise ValueError(
                f"LabelEncoder.transform: categories must be integers, got dtype {values.dtype}"
            )
        cats = self.categories
        if isinstance(cats, np.ndarray) and cats.dtype == np.int64 and not jax.config.x64_enabled:
            raise ValueError(
                "LabelEncoder.transform: categories exceed int32, so lookups run on host only; "
                "pass numpy values (or hash them with hash_buckets)"
            )
        cats = jnp.asarray(cats)
        n = cats.shape[0]
        pos = jnp.minimum(jnp.searchsorted(cats, values.astype(cats.dtype)), n - 1)
        return jnp.where(cats[pos] == values, pos, n).astype(jnp.int32)

    def inverse_transform(self, ids, unknown_value=None):
        """int ids [...] -> categories [...]; the unknown id decodes to ``unknown_value``
        (default ``"<unk>"`` for strings, ``-1`` for integers)."""
        if unknown_value is None:
            unknown_value = "<unk>" if self._is_str else -1
        n = self.num_categories
        if _uses_jax(ids, self.categories):
            if self._is_str:
                raise ValueError("LabelEncoder.inverse_transform: string categories decode on host")
            ids = jnp.asarray(ids)
            _check_ids_dtype(ids, "LabelEncoder.inverse_transform")
            cats = jnp.asarray(self.categories)
            return jnp.where(ids < n, cats[jnp.clip(ids, 0, n - 1)], unknown_value)
        ids = np.asarray(ids)
        _check_ids_dtype(ids, "LabelEncoder.inverse_transform")
        bad = (ids < 0) | (ids >= self.num_ids)
        if bad.any():
            raise ValueError(
                f"LabelEncoder.inverse_transform: ids {_preview(np.unique(ids[bad]))} are outside "
                f"[0, {self.num_ids})"
            )
        return np.where(ids < n, self.categories[np.minimum(ids, n - 1)], unknown_value)


def one_hot(ids, n: int, dtype=np.float32):
    """int ids [...] -> [..., n] one-hot rows; ids outside [0, n) give all-zero rows."""
    xp = jnp if _uses_jax(ids) else np
    ids = xp.asarray(ids)
    _check_ids_dtype(ids, "one_hot")
    return (ids[..., None] == xp.arange(n)).astype(dtype)


@struct.dataclass
class _LabelRows:
    """A `LabelEncoder` whose ids are written as fixed-width rows ``[..., width]``; a subclass
    says how (``width``, ``_encode``, ``_decode``)."""

    labels: LabelEncoder
    dtype: Any = struct.field(pytree_node=False, default=np.float32)

    @classmethod
    def fit(cls, values, unknown: str = "bucket", min_count: int = 1, dtype=np.float32):
        return cls(LabelEncoder.fit(values, unknown, min_count), dtype)

    def transform(self, values):
        """str/int values [...] -> ``dtype`` [..., width]."""
        return self._encode(self.labels.transform(values))

    def inverse_transform(self, x, unknown_value=None):
        """[..., width] rows -> categories [...]."""
        xp = jnp if _uses_jax(x) else np
        x = xp.asarray(x)
        _check_columns(x, (self.width,), f"{type(self).__name__}.inverse_transform")
        return self.labels.inverse_transform(self._decode(xp, x), unknown_value)


@struct.dataclass
class OneHotEncoder(_LabelRows):
    """Categories -> one-hot rows [..., num_ids] (the unknown bucket is the last column);
    ``inverse_transform`` decodes one-hot rows or scores (argmax)."""

    @property
    def num_columns(self) -> int:
        return self.labels.num_ids

    width = num_columns

    def _encode(self, ids):
        return one_hot(ids, self.num_columns, self.dtype)

    def _decode(self, xp, x):
        return xp.argmax(x, axis=-1)


def num_bits(num_ids: int) -> int:
    """Bits to write ids ``0..num_ids-1``: ``max(1, ceil(log2(num_ids)))``.

    With an unknown bucket (``num_ids = n + 1``) that is ``ceil(log2(n + 1))``.
    """
    if num_ids < 1:
        raise ValueError(f"num_ids must be >= 1, got {num_ids}")
    return max(1, (int(num_ids) - 1).bit_length())


def binary_encode(ids, bits: int, dtype=np.float32):
    """int ids [...] -> [..., bits] base-2 digits, most significant first."""
    xp = jnp if _uses_jax(ids) else np
    ids = xp.asarray(ids)
    _check_ids_dtype(ids, "binary_encode")
    if xp is np and ids.size and (ids.min() < 0 or ids.max() >= 2**bits):
        bad = np.unique(ids[(ids < 0) | (ids >= 2**bits)])
        raise ValueError(f"binary_encode: ids must lie in [0, 2**{bits}), got {_preview(bad)}")
    shifts = xp.arange(bits - 1, -1, -1)
    return ((ids[..., None] >> shifts) & 1).astype(dtype)


def binary_decode(bits):
    """[..., B] base-2 digits (most significant first; values > 0.5 count as 1) -> int32 ids."""
    xp = jnp if _uses_jax(bits) else np
    bits = xp.asarray(bits)
    weights = 2 ** xp.arange(bits.shape[-1] - 1, -1, -1, dtype=np.int32)
    return ((bits > 0.5).astype(np.int32) * weights).sum(-1).astype(np.int32)


@struct.dataclass
class BinaryEncoder(_LabelRows):
    """Categories -> their id written in ``num_bits`` binary digits [..., num_bits].

    ``num_bits = ceil(log2(n + 1))`` with the unknown bucket (id n), ``max(1, ceil(log2 n))``
    with ``unknown="error"``: a compact alternative to one-hot for high-cardinality features.
    In ``inverse_transform``, codes above the last id raise on host.
    """

    @property
    def num_bits(self) -> int:
        return num_bits(self.labels.num_ids)

    width = num_bits

    def _encode(self, ids):
        return binary_encode(ids, self.num_bits, self.dtype)

    def _decode(self, xp, bits):
        return binary_decode(bits)


# ----------------------------------------------------------------------------- hashing
#
# FNV-1a (32-bit) over the value's bytes, then MurmurHash3's fmix32 finaliser so that every
# output bit depends on every input bit (plain FNV has weak low bits, and buckets are
# ``hash % num_buckets``). Strings hash their UTF-8 bytes, integers the 8 little-endian bytes of
# their 64-bit two's complement, so an int32 inside jit and the same int64 on host agree.
# 32-bit arithmetic keeps the hash exact inside jit without enabling x64. A seed changes the FNV
# starting state (seed 0 = standard FNV-1a), giving independent hash functions.

_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193


def _fmix32(xp, h):
    h = h ^ (h >> 16)
    h = h * xp.uint32(0x85EBCA6B)
    h = h ^ (h >> 13)
    h = h * xp.uint32(0xC2B2AE35)
    return h ^ (h >> 16)


def _fnv_start(seed: int) -> int:
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must lie in [0, 2**32), got {seed}")
    return _FNV_OFFSET ^ int(_fmix32(np, np.array([seed], np.uint32))[0])


def _fnv_ints(xp, x, start: int):
    """FNV-1a over the 8 little-endian two's-complement bytes of each integer."""
    if xp is np:
        u = x.astype(np.int64).view(np.uint64)
        words = [
            (u & np.uint64(0xFFFFFFFF)).astype(np.uint32),
            (u >> np.uint64(32)).astype(np.uint32),
        ]
    elif x.dtype.kind == "i":  # sign-extend int32 to the 64-bit layout used on host
        lo = jax.lax.bitcast_convert_type(x.astype(jnp.int32), jnp.uint32)
        words = [lo, jnp.where(x < 0, jnp.uint32(0xFFFFFFFF), jnp.uint32(0))]
    else:
        words = [x.astype(jnp.uint32), jnp.zeros(x.shape, jnp.uint32)]
    h = xp.full(x.shape, start, dtype=xp.uint32)
    for word in words:
        for shift in (0, 8, 16, 24):
            h = (h ^ ((word >> shift) & xp.uint32(0xFF))) * xp.uint32(_FNV_PRIME)
    return h


def _fnv_strings(x: np.ndarray, start: int) -> np.ndarray:
    """FNV-1a over the UTF-8 bytes of each string (lone surrogates kept), vectorised."""
    encoded = [s.encode("utf-8", "surrogatepass") for s in x.ravel().tolist()]
    lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
    width = int(lengths.max(initial=0))
    mask = np.arange(width) < lengths[:, None]
    data = np.zeros((len(encoded), width), np.uint8)
    data[mask] = np.frombuffer(b"".join(encoded), np.uint8)
    h = np.full(len(encoded), start, np.uint32)
    for j in range(width):
        h = np.where(mask[:, j], (h ^ data[:, j]) * np.uint32(_FNV_PRIME), h)
    return h.reshape(x.shape)


def _hash(values, seed: int, finalize: bool):
    start = _fnv_start(seed)
    if _uses_jax(values):
        x = jnp.asarray(values)
        if not jnp.issubdtype(x.dtype, jnp.integer):
            raise ValueError(f"stable_hash: only integers hash inside jit, got dtype {x.dtype}")
        h = _fnv_ints(jnp, x, start)
        return _fmix32(jnp, h) if finalize else h
    x = _categorical(values, "stable_hash")
    flat = x.reshape(-1)  # >= 1-D keeps numpy's uint32 wrap-around silent
    h = _fnv_strings(flat, start) if x.dtype.kind == "U" else _fnv_ints(np, flat, start)
    return (_fmix32(np, h) if finalize else h).reshape(x.shape)


def _fnv1a_32(values, seed: int = 0):
    """Raw FNV-1a 32-bit hash (no finaliser): str/int values [...] -> uint32 [...]."""
    return _hash(values, seed, finalize=False)


def stable_hash(values, seed: int = 0):
    """A process-independent 32-bit hash: str/int values [...] -> uint32 [...].

    Unlike Python's ``hash`` it is not salted, so ids are the same in every process and run.
    Strings hash on host; integers hash on host or inside jit with identical results.
    """
    return _hash(values, seed, finalize=True)


def hash_buckets(values, num_buckets: int, seed: int = 0):
    """str/int values [...] -> int32 bucket ids [...] in [0, num_buckets)."""
    if not 1 <= num_buckets <= _INT32.max:
        raise ValueError(f"num_buckets must lie in [1, 2**31), got {num_buckets}")
    h = stable_hash(values, seed)
    xp = jnp if isinstance(h, jax.Array) else np
    return (h % xp.uint32(num_buckets)).astype(xp.int32)


@dataclasses.dataclass(frozen=True)
class HashEncoder:
    """Stateless hashing of str/int values into ``num_buckets`` with ``num_hashes`` functions.

    ``transform`` returns int32 [..., num_hashes], hash k using seed ``seed + k``; several hashes
    of one value index a shared table ("feature multiplexing") and make full collisions rare.
    No fit: every value, seen or not, lands in a bucket.
    """

    num_buckets: int
    num_hashes: int = 1
    seed: int = 0

    def __post_init__(self):
        if not 1 <= self.num_buckets <= _INT32.max:
            raise ValueError(f"num_buckets must lie in [1, 2**31), got {self.num_buckets}")
        if self.num_hashes < 1:
            raise ValueError(f"num_hashes must be >= 1, got {self.num_hashes}")
        if not (0 <= self.seed and self.seed + self.num_hashes <= 2**32):
            raise ValueError(
                f"seeds seed..seed+num_hashes-1 must lie in [0, 2**32), got {self.seed}"
            )

    def transform(self, values):
        """str/int values [...] -> int32 [..., num_hashes]."""
        ids = [
            hash_buckets(values, self.num_buckets, self.seed + k) for k in range(self.num_hashes)
        ]
        return (jnp if isinstance(ids[0], jax.Array) else np).stack(ids, axis=-1)


# ----------------------------------------------------------------------------- numeric


@struct.dataclass
class StandardScaler:
    """z-score: ``(x - mean) / scale`` per column, with population std (ddof=0) as scale.

    Fitted on [N, D] (transforms [..., D]) or [N] (one feature; transforms any shape).
    ``mean``, ``scale``: float64 [D] or [] (exact on host; float32 inside jit). A zero-variance
    column gets ``scale = 1``, so it maps to 0 on the training data (deterministic, no division
    by zero).
    """

    mean: Any
    scale: Any

    @classmethod
    def fit(cls, x) -> StandardScaler:
        x = _fit_matrix(x, "StandardScaler.fit")
        mean, std = x.mean(0), x.std(0)
        constant = std <= 16 * np.finfo(np.float64).eps * np.abs(mean)
        scale = np.where(constant, 1.0, std)
        return cls(mean=mean, scale=scale)

    def transform(self, x):
        """numbers [..., D] -> float32 [..., D]."""
        if _uses_jax(x, self.mean):
            x = jnp.asarray(x)
            _check_jax_numeric(x, "StandardScaler.transform")
            _check_columns(x, np.shape(self.mean), "StandardScaler.transform")
            return ((x - self.mean) / self.scale).astype(jnp.float32)
        x = _numeric(x, "StandardScaler.transform")
        _check_columns(x, np.shape(self.mean), "StandardScaler.transform")
        return ((x - self.mean) / self.scale).astype(np.float32)

    def inverse_transform(self, z):
        """float z-scores [..., D] -> float32 values [..., D]."""
        xp = jnp if _uses_jax(z, self.mean) else np
        z = xp.asarray(z)
        _check_columns(z, np.shape(self.mean), "StandardScaler.inverse_transform")
        return (z * self.scale + self.mean).astype(np.float32)


@struct.dataclass
class MinMaxScaler:
    """Maps each column's training [min, max] linearly onto ``feature_range`` (default [0, 1]).

    Fitted on [N, D] (transforms [..., D]) or [N]. ``data_min``, ``data_max``: float64 [D] or []
    (exact on host; float32 inside jit). A constant column maps to ``feature_range[0]``. New data
    outside the training range maps outside ``feature_range`` unless ``transform(x, clip=True)``.
    """

    data_min: Any
    data_max: Any
    feature_range: tuple = struct.field(pytree_node=False, default=(0.0, 1.0))

    @classmethod
    def fit(cls, x, feature_range: Sequence[float] = (0.0, 1.0)) -> MinMaxScaler:
        lo, hi = (float(v) for v in feature_range)
        if not lo < hi:
            raise ValueError(
                f"feature_range must be (low, high) with low < high, got {feature_range}"
            )
        x = _fit_matrix(x, "MinMaxScaler.fit")
        return cls(x.min(0), x.max(0), (lo, hi))

    def _scale(self, xp):
        lo, hi = self.feature_range
        span = self.data_max - self.data_min
        return (hi - lo) / xp.where(span > 0, span, 1.0)

    def transform(self, x, clip: bool = False):
        """numbers [..., D] -> float32 [..., D]."""
        if _uses_jax(x, self.data_min):
            xp = jnp
            x = jnp.asarray(x)
            _check_jax_numeric(x, "MinMaxScaler.transform")
        else:
            xp = np
            x = _numeric(x, "MinMaxScaler.transform")
        _check_columns(x, np.shape(self.data_min), "MinMaxScaler.transform")
        y = (x - self.data_min) * self._scale(xp) + self.feature_range[0]
        if clip:
            y = xp.clip(y, *self.feature_range)
        return y.astype(np.float32)

    def inverse_transform(self, y):
        """scaled [..., D] -> float32 values [..., D] (constant columns decode to their value)."""
        xp = jnp if _uses_jax(y, self.data_min) else np
        y = xp.asarray(y)
        _check_columns(y, np.shape(self.data_min), "MinMaxScaler.inverse_transform")
        x = (y - self.feature_range[0]) / self._scale(xp) + self.data_min
        return x.astype(np.float32)


def bucketize(x, boundaries: Sequence[float]):
    """numbers [...] -> int32 bucket ids [...] in [0, len(boundaries)].

    Bucket i holds ``boundaries[i-1] <= x < boundaries[i]`` (bucket 0 is below the first
    boundary, the last one at or above the last), e.g. age groups with ``[18, 25, 35, 45, 50, 56]``.
    """
    b = np.asarray(boundaries, dtype=np.float64)
    if b.ndim != 1 or b.size == 0 or not np.all(np.isfinite(b)) or np.any(np.diff(b) <= 0):
        raise ValueError(
            f"boundaries must be a non-empty, finite, increasing 1-D list, got {boundaries}"
        )
    if _uses_jax(x):
        x = jnp.asarray(x)
        _check_jax_numeric(x, "bucketize")
        x = x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.float32)
        return jnp.searchsorted(jnp.asarray(b, x.dtype), x, side="right").astype(jnp.int32)
    x = _numeric(x, "bucketize")
    return np.searchsorted(b, x, side="right").astype(np.int32)
