"""Two-tower retrieval: user and item towers over categorical features in one embedding table.

Each example (a user or an item) is a row of ``S`` *slots*; slot ``s`` belongs to feature
``slot_feature[s]`` and holds a row id of the shared table, or -1 (empty: multivalent features
such as a movie's genres are padded). A tower mean-pools the slots of each feature, concatenates
the pooled features with dense inputs and maps them through an MLP to the output embedding.

How feature values become table rows is a `FeatureLayout`, computed on host:

* ``"separate"``: every feature owns a disjoint range of rows (its own vocabulary), i.e.
  separate embedding tables laid end to end;
* ``"multiplexed"``: every feature hashes its values, with a feature-specific seed, into the
  whole shared table ("feature multiplexing", Coleman et al. 2023), so features share capacity.

With the same ``table_size`` both layouts have exactly the same parameter count.

Training losses over a batch of (user, positive item) pairs, all in this module:

* ``"softmax"``: in-batch sampled softmax with optional log-Q correction (Yi et al. 2019), from
  ``embeddings_jax.ops.losses.in_batch_softmax_loss``;
* ``"bpr"``: Bayesian personalised ranking with one uniform negative per positive (Rendle 2009);
* ``"warp"``: WARP-style (Weston et al. 2011) with ``num_negatives`` uniform draws: the first
  negative violating a margin of 1 is penalised with weight ``log(1 + (N - 1) // first)``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from embeddings_jax.data.features import hash_buckets
from embeddings_jax.ops.similarity import l2_normalize

LOSSES = ("softmax", "bpr", "warp")


@dataclasses.dataclass(frozen=True)
class FeatureLayout:
    """Maps per-feature category ids to rows of one shared table.

    Attributes:
      names: feature names, in slot order.
      sizes: vocabulary size of each feature (ids ``0..size-1``).
      mode: ``"separate"`` or ``"multiplexed"``.
      table_size: rows of the table; ``sum(sizes)`` for separate (the default for both modes).
    """

    names: tuple[str, ...]
    sizes: tuple[int, ...]
    mode: str = "separate"
    table_size: int | None = None

    def __post_init__(self):
        if self.mode not in ("separate", "multiplexed"):
            raise ValueError(f"mode must be 'separate' or 'multiplexed', got {self.mode!r}")
        if len(self.names) != len(self.sizes) or any(s < 1 for s in self.sizes):
            raise ValueError(f"need one positive size per feature, got {self.names}, {self.sizes}")
        total = sum(self.sizes)
        if self.table_size is None:
            object.__setattr__(self, "table_size", total)
        if self.mode == "separate" and self.table_size != total:
            raise ValueError(f"separate tables need table_size = sum(sizes) = {total}")

    @property
    def offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(np.int64)

    def rows(self, features: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Table rows of a batch of examples.

        features: name -> int ids ``[N]`` or ``[N, M]`` (multivalent, -1 padded), in ``0..size-1``.
        Returns (rows int32 ``[N, S]`` with -1 for empty slots, slot_feature int32 ``[S]``).
        """
        missing = set(self.names) - set(features)
        if missing:
            raise ValueError(f"missing features {sorted(missing)}; layout has {self.names}")
        cols, slot_feature = [], []
        for f, (name, size, offset) in enumerate(zip(self.names, self.sizes, self.offsets)):
            ids = np.asarray(features[name], np.int64)
            ids = ids[:, None] if ids.ndim == 1 else ids
            valid = ids >= 0
            if (ids >= size).any():
                raise ValueError(f"feature {name!r} has id {ids.max()} >= its size {size}")
            if self.mode == "separate":
                rows = ids + offset
            else:
                rows = hash_buckets(np.where(valid, ids, 0), self.table_size, seed=f + 1)
            cols.append(np.where(valid, rows, -1))
            slot_feature += [f] * ids.shape[1]
        return np.concatenate(cols, axis=1).astype(np.int32), np.asarray(slot_feature, np.int32)


class Tower(nn.Module):
    """Pooled feature embeddings ``[N, F, E]`` + dense ``[N, Dd]`` -> ``[N, out_dim]``."""

    hidden: Sequence[int] = (256,)
    out_dim: int = 64

    @nn.compact
    def __call__(self, pooled: jax.Array, dense: jax.Array | None) -> jax.Array:
        x = pooled.reshape(pooled.shape[0], -1)
        if dense is not None and dense.shape[-1]:
            x = jnp.concatenate([x, dense.astype(x.dtype)], axis=-1)
        for h in self.hidden:
            x = nn.relu(nn.Dense(h)(x))
        return nn.Dense(self.out_dim)(x)


class TwoTower(nn.Module):
    """User and item towers sharing one embedding table of ``table_size x embed_dim``.

    ``user_slots``/``item_slots``: static tuples, the feature index of each slot (from
    `FeatureLayout.rows`); features are numbered over both towers.
    """

    table_size: int
    user_slots: tuple[int, ...]
    item_slots: tuple[int, ...]
    embed_dim: int = 32
    hidden: Sequence[int] = (256,)
    out_dim: int = 64
    normalize: bool = True

    def setup(self):
        self.table = nn.Embed(self.table_size, self.embed_dim,
                              embedding_init=nn.initializers.normal(0.05))
        self.user_tower = Tower(self.hidden, self.out_dim)
        self.item_tower = Tower(self.hidden, self.out_dim)

    def _pool(self, rows: jax.Array, slots: tuple[int, ...]) -> jax.Array:
        """Mean of each feature's non-empty slots: rows ``[N, S]`` -> ``[N, F, E]``."""
        feats = sorted(set(slots))
        assign = np.zeros((len(slots), len(feats)), np.float32)
        assign[np.arange(len(slots)), [feats.index(f) for f in slots]] = 1.0
        mask = (rows >= 0).astype(jnp.float32)
        emb = self.table(jnp.maximum(rows, 0)) * mask[..., None]
        total = jnp.einsum("nse,sf->nfe", emb, assign)
        count = jnp.maximum(mask @ assign, 1.0)
        return total / count[..., None]

    def _finish(self, x):
        return l2_normalize(x) if self.normalize else x

    def encode_users(self, rows: jax.Array, dense: jax.Array | None = None) -> jax.Array:
        """User slots ``[N, S_u]`` (+ dense ``[N, Du]``) -> embeddings ``[N, out_dim]``."""
        return self._finish(self.user_tower(self._pool(rows, self.user_slots), dense))

    def encode_items(self, rows: jax.Array, dense: jax.Array | None = None) -> jax.Array:
        """Item slots ``[N, S_i]`` (+ dense ``[N, Di]``) -> embeddings ``[N, out_dim]``."""
        return self._finish(self.item_tower(self._pool(rows, self.item_slots), dense))

    def __call__(self, user_rows, user_dense, item_rows, item_dense):
        return self.encode_users(user_rows, user_dense), self.encode_items(item_rows, item_dense)


def bpr_loss(pos: jax.Array, neg: jax.Array) -> jax.Array:
    """``mean -log sigmoid(pos - neg)`` over scores ``[B]``."""
    return jnp.mean(jax.nn.softplus(neg - pos))


def warp_loss(pos: jax.Array, neg: jax.Array, num_items: int, margin: float = 1.0) -> jax.Array:
    """WARP-style loss: pos ``[B]``, neg ``[B, M]`` scores of M uniform negatives.

    The first negative (in draw order) with ``neg > pos - margin`` is the violator; its hinge is
    weighted by ``log(1 + rank_estimate)``, ``rank_estimate = (num_items - 1) // draws_needed``.
    Rows without a violator contribute 0.
    """
    violating = neg > (pos[:, None] - margin)
    found = violating.any(axis=1)
    first = jnp.argmax(violating, axis=1)
    rank = (num_items - 1) // (first + 1)
    weight = jnp.log1p(rank.astype(pos.dtype))
    hinge = margin - pos + jnp.take_along_axis(neg, first[:, None], axis=1)[:, 0]
    return jnp.mean(jnp.where(found, jax.lax.stop_gradient(weight) * hinge, 0.0))
