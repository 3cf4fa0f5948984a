"""MovieLens-100K users and items as model inputs: two-tower table rows and MF side-feature rows.

`build_features` lays out the towers' categorical features (user: id, age bucket, gender,
occupation, hashed 3-digit zip prefix; item: id, genres, release-year bucket) in one table with
a `FeatureLayout`, plus the item's standardised release year as a dense input. Ids are encoded
from the training ratings only, so users and items absent from training get the unknown-id row,
as do cold-start users (`Features.cold_user_rows`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from embeddings_jax.data import ratings as R
from embeddings_jax.data.features import (
    LabelEncoder,
    StandardScaler,
    bucketize,
    hash_buckets,
    one_hot,
)
from embeddings_jax.models.recsys.two_tower import FeatureLayout

AGE_BOUNDARIES = (18, 25, 35, 45, 50, 56)  # MovieLens-1M age groups
YEAR_BOUNDARIES = (0, 1940, 1960, 1970, 1980, 1985, 1990, 1993, 1995, 1996, 1997, 1998)
USER_FEATURES = ("user_id", "age", "gender", "occupation", "zip")
ITEM_FEATURES = ("item_id", "genre", "year")


@dataclasses.dataclass(frozen=True)
class Features:
    """Table rows of every user and item (and of every user with an unknown id, for cold start)."""

    layout: FeatureLayout
    user_rows: np.ndarray  # int32 [U, S_u]
    cold_user_rows: np.ndarray  # int32 [U, S_u]: the user id replaced by the unknown id
    item_rows: np.ndarray  # int32 [I, S_i]
    item_dense: np.ndarray  # float32 [I, 1]: standardised release year (0 when unknown)
    user_slots: tuple[int, ...]
    item_slots: tuple[int, ...]


def build_features(users: R.Users, items: R.Items, train: R.Ratings, *, mode: str = "separate",
                   zip_buckets: int = 128, table_size: int | None = None) -> Features:
    """Encoders are fitted on the training users/items (ids) or the full side tables (features)."""
    user_id = LabelEncoder.fit(np.unique(train.user))  # unseen users -> unknown id
    item_id = LabelEncoder.fit(np.unique(train.item))
    gender = LabelEncoder.fit(users.gender)
    occupation = LabelEncoder.fit(users.occupation)
    genre_ids = np.full((len(items), int(items.genres.sum(1).max())), -1, np.int64)
    for i, g in enumerate(items.genres):
        idx = np.flatnonzero(g)
        genre_ids[i, : len(idx)] = idx
    known = items.release_year > 0
    year_scale = StandardScaler.fit(items.release_year[known].astype(np.float64))
    dense = np.where(known, year_scale.transform(items.release_year.astype(np.float64)), 0.0)
    sizes = {
        "user_id": user_id.num_ids, "age": len(AGE_BOUNDARIES) + 1, "gender": gender.num_ids,
        "occupation": occupation.num_ids, "zip": zip_buckets, "item_id": item_id.num_ids,
        "genre": len(R.GENRES), "year": len(YEAR_BOUNDARIES) + 1,
    }
    names = USER_FEATURES + ITEM_FEATURES
    layout = FeatureLayout(names, tuple(sizes[n] for n in names), mode, table_size)
    user_vals = {
        "user_id": user_id.transform(np.arange(len(users))),
        "age": bucketize(users.age, AGE_BOUNDARIES),
        "gender": gender.transform(users.gender),
        "occupation": occupation.transform(users.occupation),
        "zip": hash_buckets(np.array([z[:3] for z in users.zip_code]), zip_buckets),
    }
    item_vals = {
        "item_id": item_id.transform(np.arange(len(items))),
        "genre": genre_ids,
        "year": bucketize(items.release_year, YEAR_BOUNDARIES),
    }
    empty_items = {n: np.zeros(len(users), np.int64) - 1 for n in ITEM_FEATURES}
    empty_users = {n: np.zeros(len(items), np.int64) - 1 for n in USER_FEATURES}
    u_rows, u_feat = layout.rows({**user_vals, **empty_items})
    cold_vals = {**user_vals, "user_id": np.full(len(users), user_id.unknown_id)}
    c_rows, _ = layout.rows({**cold_vals, **empty_items})
    i_rows, i_feat = layout.rows({**empty_users, **item_vals})
    n_u = len(USER_FEATURES)  # user slots come first, then one slot per item feature value
    su = int(np.sum(u_feat < n_u))
    return Features(
        layout=layout,
        user_rows=u_rows[:, :su], cold_user_rows=c_rows[:, :su], item_rows=i_rows[:, su:],
        item_dense=dense.astype(np.float32)[:, None],
        user_slots=tuple(int(f) for f in u_feat[:su]),
        item_slots=tuple(int(f) for f in i_feat[su:]),
    )


def mf_side_features(users: R.Users, items: R.Items) -> tuple[np.ndarray, np.ndarray]:
    """MF side-feature rows: users one-hot age bucket + gender + occupation ``[U, 7+3+22]``;
    items genre flags divided by their count ``[I, 19]``."""
    gender, occupation = LabelEncoder.fit(users.gender), LabelEncoder.fit(users.occupation)
    user_x = np.concatenate([
        one_hot(bucketize(users.age, AGE_BOUNDARIES), len(AGE_BOUNDARIES) + 1),
        one_hot(gender.transform(users.gender), gender.num_ids),
        one_hot(occupation.transform(users.occupation), occupation.num_ids),
    ], axis=1)
    g = items.genres.astype(np.float32)
    return user_x, g / np.maximum(g.sum(1, keepdims=True), 1.0)
