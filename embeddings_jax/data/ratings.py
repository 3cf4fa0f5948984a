"""MovieLens-100K: ratings, users, items, the dataset's own splits and the Recommenders split.

Ids are 0-based everywhere: ``user = user_id - 1`` and ``item = item_id - 1`` of the raw files,
so they index embedding tables directly (943 users, 1682 items).

* `load_ratings(split)`: ``"u.data"`` (all 100,000) or one of ``u1..u5`` / ``ua`` / ``ub``
  ``.base`` / ``.test``; `load_fold(fold)` gives a (train, test) pair.
* `load_users()`: age, gender, occupation, zip code; `load_items()`: title, release year,
  19 genre flags (`GENRES`).
* `stratified_split`: per-user random 75/25 split, the same rows as Microsoft Recommenders'
  ``python_stratified_split(data, ratio, seed)`` on ``u.data`` in file order.
* `holdout_users`: a random subset of users held out entirely (cold start).

Files come from the data registry (dataset ``"ml-100k"``), never from a hard-coded path.
"""

from __future__ import annotations

import dataclasses
import datetime
import gzip
import pathlib

import numpy as np

from embeddings_jax.data import registry

DATASET = "ml-100k"
NUM_USERS = 943
NUM_ITEMS = 1682
RATING_RANGE = (1.0, 5.0)

GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
OCCUPATIONS = (
    "administrator", "artist", "doctor", "educator", "engineer", "entertainment", "executive",
    "healthcare", "homemaker", "lawyer", "librarian", "marketing", "none", "other", "programmer",
    "retired", "salesman", "scientist", "student", "technician", "writer",
)  # fmt: skip
SPLITS = ("u.data",) + tuple(
    f"{p}.{s}" for p in ("u1", "u2", "u3", "u4", "u5", "ua", "ub") for s in ("base", "test")
)


class _Rows:
    """Parallel arrays of one length, the number of rows (``len``)."""

    def __len__(self) -> int:
        return len(getattr(self, dataclasses.fields(self)[0].name))


@dataclasses.dataclass(frozen=True)
class Ratings(_Rows):
    """Parallel arrays, one entry per rating: user, item (int32, 0-based), rating (float32),
    timestamp (int64 seconds)."""

    user: np.ndarray
    item: np.ndarray
    rating: np.ndarray
    timestamp: np.ndarray

    def take(self, index: np.ndarray) -> Ratings:
        """The ratings at ``index`` (int positions or a bool mask)."""
        return Ratings(*(a[index] for a in dataclasses.astuple(self)))


@dataclasses.dataclass(frozen=True)
class Users(_Rows):
    """943 users, row ``u`` = user id ``u + 1``: age (int32), gender ("M"/"F"), occupation and
    zip code (str arrays; some zip codes are Canadian, e.g. "T8H1N")."""

    age: np.ndarray
    gender: np.ndarray
    occupation: np.ndarray
    zip_code: np.ndarray


@dataclasses.dataclass(frozen=True)
class Items(_Rows):
    """1682 movies, row ``i`` = item id ``i + 1``: title (str), release year (int32, -1 when
    unknown) and genre flags (bool ``[N, 19]``, columns in `GENRES` order)."""

    title: np.ndarray
    release_year: np.ndarray
    genres: np.ndarray


def validate_ratings(
    ratings: Ratings,
    *,
    num_users: int = NUM_USERS,
    num_items: int = NUM_ITEMS,
    rating_range: tuple[float, float] = RATING_RANGE,
    name: str = "ratings",
) -> Ratings:
    """Checks shapes, id ranges and rating range; returns ``ratings`` unchanged.

    Raises:
      ValueError: an empty set, unequal lengths, ids outside ``[0, num_*)``, or ratings outside
        ``rating_range`` (or not finite), naming the first offending row.
    """
    n = len(ratings.user)
    if n == 0:
        raise ValueError(f"{name} is empty: there is nothing to train or evaluate on")
    for field, arr in zip(("item", "rating", "timestamp"), dataclasses.astuple(ratings)[1:]):
        if len(arr) != n:
            raise ValueError(f"{name}.{field} has {len(arr)} entries but {name}.user has {n}")
    for field, arr, hi in (("user", ratings.user, num_users), ("item", ratings.item, num_items)):
        bad = np.flatnonzero((arr < 0) | (arr >= hi))
        if bad.size:
            raise ValueError(
                f"{name}: {field} id {arr[bad[0]]} at row {bad[0]} is outside [0, {hi}) "
                f"({bad.size} such rows); ids are 0-based (raw id - 1)"
            )
    lo, hi = rating_range
    r = ratings.rating
    bad = np.flatnonzero(~np.isfinite(r) | (r < lo) | (r > hi))
    if bad.size:
        raise ValueError(
            f"{name}: rating {r[bad[0]]} at row {bad[0]} is outside [{lo}, {hi}] "
            f"({bad.size} such rows)"
        )
    return ratings


def check_id_pairs(user, item, num_users: int, num_items: int) -> tuple[np.ndarray, np.ndarray]:
    """``(user, item)`` as arrays after checking they are 1-D, of equal length and inside the
    tables; raises ``ValueError`` naming the first unknown id (used at prediction time)."""
    user, item = np.asarray(user), np.asarray(item)
    if user.shape != item.shape or user.ndim != 1:
        raise ValueError(f"user and item must be 1-D of equal length, got {user.shape}, {item.shape}")
    for name, ids, n in (("user", user, num_users), ("item", item, num_items)):
        if ids.size and (ids.min() < 0 or ids.max() >= n):
            bad = ids[(ids < 0) | (ids >= n)][0]
            raise ValueError(f"unknown {name} id {bad}: the model knows ids 0..{n - 1}")
    return user, item


def load_ratings(split: str = "u.data", *, dataset: str = DATASET) -> Ratings:
    """Ratings of one file: ``"u.data"`` (all), ``"u1.base"``, ..., ``"ub.test"``."""
    if split not in SPLITS:
        raise ValueError(f"unknown MovieLens-100K split {split!r}; choose from {SPLITS}")
    path = registry.fetch(dataset, split + ".gz")
    with gzip.open(path, "rt") as f:
        raw = np.loadtxt(f, dtype=np.int64, delimiter="\t", ndmin=2)
    if raw.shape[0] == 0:
        raise ValueError(f"{path} holds no ratings")
    if raw.shape[1] != 4:
        raise ValueError(f"{path}: expected 4 tab-separated columns, got {raw.shape[1]}")
    ratings = Ratings(
        user=(raw[:, 0] - 1).astype(np.int32),
        item=(raw[:, 1] - 1).astype(np.int32),
        rating=raw[:, 2].astype(np.float32),
        timestamp=raw[:, 3],
    )
    return validate_ratings(ratings, name=str(path))


def load_fold(fold: int | str, *, dataset: str = DATASET) -> tuple[Ratings, Ratings]:
    """(train, test) of a predefined split: folds 1..5 (80k/20k, disjoint tests) or "a"/"b"
    (exactly 10 test ratings per user)."""
    if fold not in (1, 2, 3, 4, 5, "a", "b"):
        raise ValueError(f"fold must be 1..5, 'a' or 'b', got {fold!r}")
    return (
        load_ratings(f"u{fold}.base", dataset=dataset),
        load_ratings(f"u{fold}.test", dataset=dataset),
    )


def _read_table(name: str, what: str, dataset: str) -> tuple[pathlib.Path, list[list[str]]]:
    """(path, rows) of a '|'-separated table whose first column is the id 1..N, in order."""
    path = registry.fetch(dataset, name)
    with gzip.open(path, "rt", encoding="latin-1") as f:
        rows = [line.rstrip("\n").split("|") for line in f if line.strip()]
    ids = np.array([int(r[0]) for r in rows])
    if not np.array_equal(ids, np.arange(1, len(rows) + 1)):
        raise ValueError(f"{path}: {what} ids are not 1..{len(rows)} in order")
    return path, rows


def load_users(*, dataset: str = DATASET) -> Users:
    """Demographics of the 943 users (row = 0-based user id)."""
    _, rows = _read_table("u.user.gz", "user", dataset)
    return Users(
        age=np.array([int(r[1]) for r in rows], dtype=np.int32),
        gender=np.array([r[2] for r in rows]),
        occupation=np.array([r[3] for r in rows]),
        zip_code=np.array([r[4] for r in rows]),
    )


def load_items(*, dataset: str = DATASET) -> Items:
    """Titles, release years and genre flags of the 1682 movies (row = 0-based item id)."""
    path, rows = _read_table("u.item.gz", "item", dataset)
    if any(len(r) != 5 + len(GENRES) for r in rows):
        raise ValueError(f"{path}: expected {5 + len(GENRES)} '|'-separated fields per line")
    years = [
        datetime.datetime.strptime(r[2], "%d-%b-%Y").year if r[2] else -1 for r in rows
    ]
    return Items(
        title=np.array([r[1] for r in rows]),
        release_year=np.array(years, dtype=np.int32),
        genres=np.array([[g == "1" for g in r[5:]] for r in rows], dtype=bool),
    )


def stratified_split(
    ratings: Ratings, ratio: float = 0.75, *, seed: int = 42
) -> tuple[Ratings, Ratings]:
    """Per-user random split keeping a fraction ``ratio`` of each user's ratings for training.

    Reproduces Recommenders' ``python_stratified_split(data, ratio, seed=seed)`` row for row:
    one uniform draw per row from ``np.random.seed(seed)`` in input order, rows sorted by
    (user, draw), and a row goes to train when its within-user rank / count <= ratio.
    """
    if not 0.0 < ratio < 1.0:
        raise ValueError(f"ratio must lie strictly between 0 and 1, got {ratio}")
    if len(ratings) == 0:
        raise ValueError("cannot split an empty set of ratings")
    draw = np.random.RandomState(seed).rand(len(ratings))
    order = np.lexsort((draw, ratings.user))
    user_sorted = ratings.user[order]
    starts = np.flatnonzero(np.r_[True, user_sorted[1:] != user_sorted[:-1]])
    counts = np.diff(np.r_[starts, len(order)])
    rank = np.arange(len(order)) - np.repeat(starts, counts) + 1
    in_train = np.empty(len(order), dtype=bool)
    in_train[order] = rank / np.repeat(counts, counts) <= ratio
    train, test = ratings.take(in_train), ratings.take(~in_train)
    if len(train) == 0 or len(test) == 0:
        raise ValueError(
            f"split with ratio={ratio} left an empty {'train' if len(train) == 0 else 'test'} set"
        )
    return train, test


def holdout_users(
    ratings: Ratings, fraction: float, *, seed: int = 0, num_users: int = NUM_USERS
) -> tuple[Ratings, Ratings, np.ndarray]:
    """Holds a random ``fraction`` of the users out entirely (cold start).

    Returns (ratings of kept users, ratings of held-out users, sorted held-out user ids).
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must lie strictly between 0 and 1, got {fraction}")
    present = np.unique(ratings.user)
    n_out = round(fraction * len(present))
    if n_out == 0 or n_out == len(present):
        raise ValueError(
            f"holding out {fraction:.0%} of {len(present)} users leaves an empty side"
        )
    held = np.sort(np.random.default_rng(seed).choice(present, n_out, replace=False))
    mask = np.zeros(num_users, dtype=bool)
    mask[held] = True
    out = mask[ratings.user]
    return ratings.take(~out), ratings.take(out), held
