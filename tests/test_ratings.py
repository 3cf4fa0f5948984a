"""MovieLens-100K loaders, splits and input validation."""

import numpy as np
import pytest

from embeddings_jax.data import ratings as R


@pytest.fixture
def ml100k(shared_data):
    shared_data(R.DATASET)


def test_load_all_and_folds(ml100k):
    r = R.load_ratings()
    assert len(r) == 100_000
    assert (r.user.min(), r.user.max()) == (0, R.NUM_USERS - 1)
    assert (r.item.min(), r.item.max()) == (0, R.NUM_ITEMS - 1)
    assert set(np.unique(r.rating)) == {1.0, 2.0, 3.0, 4.0, 5.0}
    # First line of u.data is "196 242 3 881250949".
    assert (r.user[0], r.item[0], r.rating[0], r.timestamp[0]) == (195, 241, 3.0, 881250949)
    tests = []
    for fold in range(1, 6):
        train, test = R.load_fold(fold)
        assert (len(train), len(test)) == (80_000, 20_000)
        tests.append(test.user.astype(np.int64) * 10_000 + test.item)
    # u1..u5 test sets partition u.data.
    all_keys = np.sort(r.user.astype(np.int64) * 10_000 + r.item)
    assert np.array_equal(np.sort(np.concatenate(tests)), all_keys)
    _, ua_test = R.load_fold("a")
    assert np.all(np.bincount(ua_test.user) == 10)


def test_users_items(ml100k):
    users, items = R.load_users(), R.load_items()
    assert len(users) == R.NUM_USERS and len(items) == R.NUM_ITEMS
    assert (users.age[0], users.gender[0], users.occupation[0], users.zip_code[0]) == (
        24, "M", "technician", "85711"
    )
    assert set(users.occupation) == set(R.OCCUPATIONS)
    assert items.title[0] == "Toy Story (1995)" and items.release_year[0] == 1995
    assert [R.GENRES[g] for g in np.flatnonzero(items.genres[0])] == [
        "Animation", "Children's", "Comedy"
    ]
    assert items.genres.shape == (R.NUM_ITEMS, len(R.GENRES))
    assert items.release_year[266] == -1  # item 267 "unknown" has no date
    assert items.release_year[items.release_year > 0].min() == 1922


def _reference_split(user, ratio, seed):
    """Row-by-row statement of Recommenders' stratified split, for parity."""
    draw = np.random.RandomState(seed).rand(len(user))
    train = np.zeros(len(user), dtype=bool)
    for u in np.unique(user):
        rows = np.flatnonzero(user == u)
        rows = rows[np.argsort(draw[rows])]
        for rank, row in enumerate(rows, start=1):
            train[row] = rank / len(rows) <= ratio
    return train


def test_stratified_split_matches_reference(ml100k):
    r = R.load_ratings()
    train, test = R.stratified_split(r, 0.75, seed=42)
    assert len(train) + len(test) == len(r)
    ref = _reference_split(r.user, 0.75, 42)
    assert len(train) == ref.sum()
    assert np.array_equal(train.item, r.item[ref]) and np.array_equal(test.user, r.user[~ref])
    # Every user keeps ~75% for training and has test items.
    frac = np.bincount(train.user, minlength=R.NUM_USERS) / np.bincount(r.user)
    assert frac.min() > 0.7 and frac.max() <= 0.75
    again, _ = R.stratified_split(r, 0.75, seed=42)
    assert np.array_equal(again.item, train.item)


def test_holdout_users(ml100k):
    r = R.load_ratings()
    kept, out, held = R.holdout_users(r, 0.1, seed=0)
    assert len(held) == 94 and len(kept) + len(out) == len(r)
    assert not np.isin(kept.user, held).any() and np.isin(out.user, held).all()


def test_bad_input():
    ok = R.Ratings(np.array([0, 1]), np.array([0, 2]), np.array([1.0, 5.0]), np.zeros(2))
    R.validate_ratings(ok)
    with pytest.raises(ValueError, match="outside \\[1.0, 5.0\\]"):
        R.validate_ratings(R.Ratings(ok.user, ok.item, np.array([0.5, 3.0]), ok.timestamp))
    with pytest.raises(ValueError, match="outside"):
        R.validate_ratings(R.Ratings(ok.user, ok.item, np.array([np.nan, 3.0]), ok.timestamp))
    with pytest.raises(ValueError, match="user id 943"):
        R.validate_ratings(R.Ratings(np.array([0, 943]), ok.item, ok.rating, ok.timestamp))
    with pytest.raises(ValueError, match="item id -1"):
        R.validate_ratings(R.Ratings(ok.user, np.array([-1, 0]), ok.rating, ok.timestamp))
    empty = ok.take(np.zeros(2, dtype=bool))
    with pytest.raises(ValueError, match="empty"):
        R.validate_ratings(empty)
    with pytest.raises(ValueError, match="empty"):
        R.stratified_split(empty)
    with pytest.raises(ValueError, match="empty"):
        R.stratified_split(R.Ratings(*(a[:1] for a in (ok.user, ok.item, ok.rating, ok.timestamp))))
    with pytest.raises(ValueError, match="ratio"):
        R.stratified_split(ok, 1.5)
    with pytest.raises(ValueError, match="unknown MovieLens-100K split"):
        R.load_ratings("u6.base")
    with pytest.raises(ValueError, match="fold"):
        R.load_fold(7)
