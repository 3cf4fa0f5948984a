"""Training and serving a `TwoTower` model on (user, positive item) pairs.

`train_two_tower` builds the model from a `TwoTowerConfig` and the `Features` of
`movielens_features.build_features`, then runs `embeddings_jax.train.train` over shuffled batches
of training pairs with one of three losses (`LOSSES`):

* ``"softmax"``: in-batch sampled softmax with the log-Q correction (Yi et al. 2019), the item
  log-frequency scaled by ``log_q_weight``;
* ``"bpr"``: one uniform negative per positive;
* ``"warp"``: ``num_negatives`` uniform draws per positive.

Each step replaces a user's id by the unknown id with probability ``id_dropout``, which trains the
features-only path that cold-start users take (`embed` with ``cold_users``). The embeddings are
L2-normalised, so they serve from an inner-product index (`embeddings_jax.eval.recommend`).

Example::

    feats = build_features(users, items, train)
    fit = train_two_tower(train, feats, TwoTowerConfig(epochs=2), loss="softmax", seed=0,
                          workdir="/tmp/tt")
    emb = embed(fit.model, fit.params, feats)              # users [U, 64], items [I, 64]
    ranked = top_k_unseen(emb.users @ emb.items.T, seen_lists(train, U), 10)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from embeddings_jax.data import ratings as R
from embeddings_jax.data.batching import epoch_batches
from embeddings_jax.eval.recommend import log_popularity
from embeddings_jax.models.recsys.movielens_features import Features
from embeddings_jax.models.recsys.two_tower import LOSSES, TwoTower, bpr_loss, warp_loss
from embeddings_jax.ops.losses import in_batch_softmax_loss
from embeddings_jax.train import LoopConfig, create_train_state, make_mesh, train


@dataclasses.dataclass(frozen=True)
class TwoTowerConfig:
    """Hyper-parameters, chosen for ``softmax`` on a validation split of the MovieLens-100K
    training pairs (80/20, stratified, seed 1)."""

    embed_dim: int = 32
    hidden: Sequence[int] = (256,)
    out_dim: int = 64  # width of the towers' output embeddings
    temperature: float = 0.2
    log_q: bool = True  # subtract log item frequency (sampling-bias correction) from the logits
    log_q_weight: float = 1.2  # scales the log-Q correction (1 = Yi et al.)
    batch_size: int = 1024
    epochs: int = 10
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    id_dropout: float = 0.1  # replaces the user id by the unknown id: trains the cold-start path
    num_negatives: int = 32  # WARP draws per positive


class TwoTowerFit(NamedTuple):
    """A trained model and its (host) parameters."""

    model: TwoTower
    params: dict

    @property
    def num_parameters(self) -> int:
        return int(sum(x.size for x in jax.tree.leaves(self.params)))


class Embeddings(NamedTuple):
    """User ``[U, D]`` and item ``[I, D]`` embeddings; scores are ``users @ items.T`` (the
    two towers' vectors are unit length)."""

    users: np.ndarray
    items: np.ndarray

    @classmethod
    def concatenate(cls, parts: Sequence[Embeddings]) -> Embeddings:
        """An ensemble as one model: its score is the sum of the parts' scores."""
        return cls(np.concatenate([p.users for p in parts], 1),
                   np.concatenate([p.items for p in parts], 1))


def build_model(feats: Features, config: TwoTowerConfig) -> TwoTower:
    return TwoTower(
        table_size=feats.layout.table_size, user_slots=feats.user_slots,
        item_slots=feats.item_slots, embed_dim=config.embed_dim, hidden=tuple(config.hidden),
        out_dim=config.out_dim, normalize=True,
    )


def make_loss_fn(model: TwoTower, feats: Features, train_items: np.ndarray,
                 config: TwoTowerConfig, loss: str):
    """``loss_fn(params, batch, rng)`` for a batch ``{"user", "item"}`` of positive pairs."""
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; choose softmax, bpr or warp")
    num_items = len(feats.item_rows)
    log_q_all = jnp.asarray(log_popularity(train_items, num_items), jnp.float32)
    user_rows, cold_rows = jnp.asarray(feats.user_rows), jnp.asarray(feats.cold_user_rows)
    item_rows, item_dense = jnp.asarray(feats.item_rows), jnp.asarray(feats.item_dense)
    scale = 1.0 / config.temperature

    def loss_fn(params, batch, rng):
        drop_key, neg_key = jax.random.split(rng)
        u, i = batch["user"], batch["item"]
        drop = jax.random.bernoulli(drop_key, config.id_dropout, u.shape)
        rows = jnp.where(drop[:, None], cold_rows[u], user_rows[u])
        q = model.apply({"params": params}, rows, None, method=TwoTower.encode_users)
        if loss == "softmax":
            c = model.apply({"params": params}, item_rows[i], item_dense[i],
                            method=TwoTower.encode_items)
            log_q = config.log_q_weight * log_q_all[i] if config.log_q else None
            return in_batch_softmax_loss(q, c, temperature=config.temperature, log_q=log_q), {}
        v_all = model.apply({"params": params}, item_rows, item_dense, method=TwoTower.encode_items)
        pos = scale * jnp.sum(q * v_all[i], -1)
        if loss == "bpr":
            neg_ids = jax.random.randint(neg_key, u.shape, 0, num_items)
            return bpr_loss(pos, scale * jnp.sum(q * v_all[neg_ids], -1)), {}
        neg_ids = jax.random.randint(neg_key, (u.shape[0], config.num_negatives), 0, num_items)
        neg = scale * jnp.einsum("bd,bmd->bm", q, v_all[neg_ids])
        return warp_loss(pos, neg, num_items), {}

    return loss_fn


def train_two_tower(train_r: R.Ratings, feats: Features, config: TwoTowerConfig, *, loss: str,
                    workdir, seed: int, mesh=None) -> TwoTowerFit:
    """Trains on the (user, item) pairs of ``train_r`` (data-parallel over ``mesh``, default all
    devices), checkpointing into ``workdir``."""
    R.validate_ratings(train_r, name="two-tower training ratings")
    model = build_model(feats, config)
    mesh = mesh or make_mesh()

    def init(key):
        return model.init(key, feats.user_rows[:1], None, feats.item_rows[:1],
                          feats.item_dense[:1])["params"]

    tx = optax.adamw(config.learning_rate, weight_decay=config.weight_decay)
    state = create_train_state(init, tx, seed, mesh)
    batch_fn, steps = epoch_batches(
        {"user": train_r.user.astype(np.int32), "item": train_r.item.astype(np.int32)},
        config.batch_size, seed,
    )
    loop = LoopConfig(num_steps=config.epochs * steps, log_every=max(1, steps),
                      checkpoint_every=config.epochs * steps, desc=f"two-tower {loss}")
    state = train(state, make_loss_fn(model, feats, train_r.item, config, loss), batch_fn,
                  mesh=mesh, workdir=workdir, config=loop)
    return TwoTowerFit(model, jax.device_get(state.params))


def embed(model: TwoTower, params, feats: Features,
          cold_users: np.ndarray | None = None) -> Embeddings:
    """Every user's and item's embedding; ``cold_users`` (ids) are encoded from features only."""
    rows = feats.user_rows
    if cold_users is not None and len(cold_users):
        cold_users = np.asarray(cold_users)
        if cold_users.min() < 0 or cold_users.max() >= len(rows):
            raise ValueError(f"cold user ids must lie in [0, {len(rows)})")
        rows = rows.copy()
        rows[cold_users] = feats.cold_user_rows[cold_users]
    users = model.apply({"params": params}, rows, None, method=TwoTower.encode_users)
    items = model.apply({"params": params}, feats.item_rows, feats.item_dense,
                        method=TwoTower.encode_items)
    return Embeddings(np.asarray(users), np.asarray(items))
