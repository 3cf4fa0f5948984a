"""Matrix factorization for explicit ratings: biased MF with an optional SVD++ implicit term.

    r_hat(u, i) = mu + b_u + b_i + (q_i + x_i G) . (p_u + |N(u)|^-1/2 sum_{j in N(u)} y_j + z_u A)

(Koren, Bell, Volinsky 2009; Koren 2008 for the ``y`` term, with ``N(u)`` = items ``u`` rated in
the training set). ``z_u`` / ``x_i`` are optional side-feature rows (e.g. one-hot demographics,
normalised genre flags) whose embeddings ``A`` / ``G`` are shared by all users / items, as in
SVDFeature (Chen et al. 2012). Trained with Optax on mini-batches of ratings, minimising

    mean_batch [ (r_hat - r)^2 + reg (|p_u|^2 + |implicit_u|^2) + item_reg |q_i|^2
                 + bias_reg (b_u^2 + b_i^2) ] + feature_reg (|A|^2 + |G|^2)

so every parameter is regularised once per rating it takes part in, as the classic SGD recipe
(Funk; Surprise's SVD) does. An epoch is one jitted ``lax.scan`` over shuffled mini-batches whose
order depends only on ``(seed, epoch)``; the train state is donated between epochs.

Users and items without training ratings keep zero factors and biases, so they are predicted by
``mu + b_i`` / ``mu + b_u`` (the cold-start fallback); ids outside the tables raise ``ValueError``.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from embeddings_jax.data.ratings import (
    DATASET,
    RATING_RANGE,
    Ratings,
    check_id_pairs,
    load_fold,
    validate_ratings,
)
from embeddings_jax.train.state import TrainState


@dataclasses.dataclass(frozen=True)
class MFConfig:
    """Hyper-parameters (defaults tuned on a 10% validation carve of ``u1.base``)."""

    dim: int = 128
    implicit: bool = False  # SVD++ term
    reg: float = 0.12  # L2 on p_u and the implicit user vector, per rating
    item_reg: float | None = None  # L2 on q_i per rating (None: same as reg)
    bias_reg: float = 0.01  # L2 on b_u, b_i, per rating
    feature_reg: float = 0.01  # L2 on the side-feature embeddings A, G, per step
    init_scale: float = 0.1  # std of the initial p, q (y starts at 0)
    learning_rate: float = 0.003
    cosine_decay: bool = True  # learning rate decays to 0 over the run (a stable final iterate)
    batch_size: int = 1000
    epochs: int = 80
    seed: int = 0


class BiasedMF(nn.Module):
    """Rating predictor. ``__call__(user, item, implicit_user, implicit_item) -> (pred, penalties)``.

    user, item: int ``[B]``. implicit_user/implicit_item: int ``[M]``, the (user, item) pairs of
    ``N(u)`` (ignored unless ``implicit``). user_features ``[num_users, user_feature_dim]`` and
    item_features ``[num_items, item_feature_dim]``: side-feature rows (used when the dims are > 0). Returns unclipped predictions ``[B]`` and the per-example
    factor penalties ``(|p_u|^2 + |implicit_u|^2, |q_i|^2)``, each ``[B]``.
    """

    num_users: int
    num_items: int
    dim: int = 128
    implicit: bool = False
    global_mean: float = 3.5
    init_scale: float = 0.1
    user_feature_dim: int = 0
    item_feature_dim: int = 0

    def setup(self):
        init = nn.initializers.normal(self.init_scale)
        self.p = self.param("p", init, (self.num_users, self.dim))
        self.q = self.param("q", init, (self.num_items, self.dim))
        self.user_bias = self.param("user_bias", nn.initializers.zeros, (self.num_users,))
        self.item_bias = self.param("item_bias", nn.initializers.zeros, (self.num_items,))
        self.mu = self.param("mu", nn.initializers.constant(self.global_mean), ())
        if self.implicit:
            self.y = self.param("y", nn.initializers.zeros, (self.num_items, self.dim))
        if self.user_feature_dim:
            self.a = self.param("a", nn.initializers.zeros, (self.user_feature_dim, self.dim))
        if self.item_feature_dim:
            self.g = self.param("g", nn.initializers.zeros, (self.item_feature_dim, self.dim))

    def implicit_factors(self, implicit_user, implicit_item):
        """``|N(u)|^-1/2 sum_{j in N(u)} y_j`` for every user: ``[num_users, dim]``."""
        total = jax.ops.segment_sum(self.y[implicit_item], implicit_user, self.num_users)
        count = jnp.bincount(implicit_user, length=self.num_users)
        return total * jax.lax.rsqrt(jnp.maximum(count, 1).astype(total.dtype))[:, None]

    def __call__(self, user, item, implicit_user=None, implicit_item=None, user_features=None,
                 item_features=None):
        pu, qi = self.p[user], self.q[item]
        penalty = jnp.sum(pu**2, -1)
        item_penalty = jnp.sum(qi**2, -1)
        if (self.user_feature_dim and user_features is None) or (
            self.item_feature_dim and item_features is None
        ):
            raise ValueError("this model was built with side features: pass them to every call")
        if self.user_feature_dim:
            pu = pu + user_features[user] @ self.a
        if self.item_feature_dim:
            qi = qi + item_features[item] @ self.g
        if self.implicit:
            if implicit_user is None or implicit_item is None:
                raise ValueError("an SVD++ model needs implicit_user and implicit_item (N(u))")
            yu = self.implicit_factors(implicit_user, implicit_item)[user]
            penalty = penalty + jnp.sum(yu**2, -1)
            pu = pu + yu
        pred = self.mu + self.user_bias[user] + self.item_bias[item] + jnp.sum(pu * qi, -1)
        return pred, (penalty, item_penalty)


def loss_fn(params, batch, model: BiasedMF, reg: float, item_reg: float, bias_reg: float,
            feature_reg: float = 0.0, implicit=(None, None), side=(None, None)):
    """Regularised squared error of a batch ``{"user", "item", "rating"}``: ``(loss, {"mse"})``."""
    pred, (user_pen, item_pen) = model.apply({"params": params}, batch["user"], batch["item"],
                                             *implicit, *side)
    err = pred - batch["rating"]
    bias_pen = params["user_bias"][batch["user"]] ** 2 + params["item_bias"][batch["item"]] ** 2
    loss = jnp.mean(err**2 + reg * user_pen + item_reg * item_pen + bias_reg * bias_pen)
    for name in ("a", "g"):
        if name in params:
            loss = loss + feature_reg * jnp.sum(params[name] ** 2)
    return loss, {"mse": jnp.mean(err**2)}


@dataclasses.dataclass(frozen=True)
class FittedMF:
    """A trained model: predicts clipped ratings for (user, item) id pairs."""

    model: BiasedMF
    params: dict
    implicit: tuple  # (implicit_user, implicit_item) device arrays, or (None, None)
    side: tuple = (None, None)  # (user_features, item_features) device arrays or None

    def predict(self, user, item, *, clip: tuple[float, float] | None = RATING_RANGE) -> np.ndarray:
        """Predicted ratings ``[B]``. Unknown ids (outside the tables) raise ValueError; ids that
        had no training ratings get the bias-only prediction."""
        user, item = check_id_pairs(user, item, self.model.num_users, self.model.num_items)
        pred = np.asarray(_predict(self.model, self.params, user, item, self.implicit, self.side))
        return np.clip(pred, *clip) if clip is not None else pred


@functools.partial(jax.jit, static_argnums=0)
def _predict(model, params, user, item, implicit, side):
    return model.apply({"params": params}, user, item, *implicit, *side)[0]


def fit(train: Ratings, config: MFConfig = MFConfig(), *, num_users: int, num_items: int,
        implicit_pairs: tuple[np.ndarray, np.ndarray] | None = None,
        user_features: np.ndarray | None = None, item_features: np.ndarray | None = None,
        callback=None) -> FittedMF:
    """Trains on ``train``; ``callback(epoch, metrics)`` is called after every epoch.

    ``implicit_pairs`` = (user, item) arrays defining ``N(u)`` for SVD++; default: the training
    ratings. Koren (2008) also counts items a user rated whose ratings are hidden (e.g. the
    test items' identities, not their ratings): pass them here for that transductive variant.
    ``user_features [num_users, Fu]`` / ``item_features [num_items, Fi]``: optional side-feature
    rows (float; e.g. one-hot demographics, genre flags / their count).
    """
    validate_ratings(train, num_users=num_users, num_items=num_items, name="train ratings")
    if config.batch_size > len(train):
        raise ValueError(f"batch_size {config.batch_size} exceeds the {len(train)} ratings")
    side = []
    for name, x, n in (("user_features", user_features, num_users),
                       ("item_features", item_features, num_items)):
        if x is not None:
            x = np.asarray(x, np.float32)
            if x.ndim != 2 or x.shape[0] != n or not np.isfinite(x).all():
                raise ValueError(f"{name} must be a finite [{n}, features] matrix, got {x.shape}")
            x = jnp.asarray(x)
        side.append(x)
    side = tuple(side)
    model = BiasedMF(num_users, num_items, config.dim, config.implicit,
                     float(train.rating.mean()), config.init_scale,
                     0 if side[0] is None else side[0].shape[1],
                     0 if side[1] is None else side[1].shape[1])
    data = {
        "user": jnp.asarray(train.user, jnp.int32),
        "item": jnp.asarray(train.item, jnp.int32),
        "rating": jnp.asarray(train.rating, jnp.float32),
    }
    implicit = (None, None)
    if config.implicit:
        iu, ii = (train.user, train.item) if implicit_pairs is None else implicit_pairs
        iu, ii = np.asarray(iu), np.asarray(ii)
        if iu.shape != ii.shape or iu.ndim != 1 or iu.size == 0:
            raise ValueError("implicit_pairs must be two non-empty 1-D arrays of equal length")
        if iu.min() < 0 or iu.max() >= num_users or ii.min() < 0 or ii.max() >= num_items:
            raise ValueError("implicit_pairs hold user or item ids outside the tables")
        implicit = (jnp.asarray(iu, jnp.int32), jnp.asarray(ii, jnp.int32))
    steps = len(train) // config.batch_size
    lr = config.learning_rate
    if config.cosine_decay:
        lr = optax.cosine_decay_schedule(config.learning_rate, steps * config.epochs)
    tx = optax.adam(lr)
    init_key, run_key = jax.random.split(jax.random.PRNGKey(config.seed))
    z = jnp.zeros((1,), jnp.int32)
    params = jax.jit(model.init)(init_key, z, z, *implicit, *side)["params"]
    state = TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params),
                       rng=run_key, tx=tx)
    item_reg = config.reg if config.item_reg is None else config.item_reg
    epoch_fn = _make_epoch(model, config.reg, item_reg, config.bias_reg, config.feature_reg)
    for epoch in range(config.epochs):
        order = np.random.default_rng([config.seed, epoch]).permutation(len(train))
        order = jnp.asarray(order[: steps * config.batch_size].reshape(steps, -1), jnp.int32)
        state, metrics = epoch_fn(state, data, order, implicit, side)
        if callback is not None:
            callback(epoch + 1, jax.device_get(metrics))
    params = _zero_unseen(state.params, train, num_users, num_items)
    return FittedMF(model, params, implicit, side)


def _make_epoch(model, reg, item_reg, bias_reg, feature_reg):
    def epoch(state: TrainState, data, order, implicit, side):
        def step(state, idx):
            batch = jax.tree.map(lambda a: a[idx], data)
            grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
            (loss, aux), grads = grad_fn(state.params, batch, model, reg, item_reg, bias_reg,
                                           feature_reg, implicit, side)
            return state.apply_gradients(grads), {"loss": loss, **aux}

        state, metrics = jax.lax.scan(step, state, order)
        return state, jax.tree.map(jnp.mean, metrics)

    return jax.jit(epoch, donate_argnums=0)


def _zero_unseen(params, train: Ratings, num_users: int, num_items: int):
    """Users/items absent from training keep no noise: zero factors and biases."""
    seen_u = np.bincount(train.user, minlength=num_users) > 0
    seen_i = np.bincount(train.item, minlength=num_items) > 0
    out = dict(params)
    for name, seen in (("p", seen_u), ("user_bias", seen_u), ("q", seen_i), ("item_bias", seen_i)):
        mask = jnp.asarray(seen).reshape((-1,) + (1,) * (params[name].ndim - 1))
        out[name] = params[name] * mask
    return out


def rating_errors(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """``{"rmse", "mae"}`` of predictions against true ratings."""
    pred, true = np.asarray(pred, np.float64), np.asarray(true, np.float64)
    if pred.shape != true.shape or pred.size == 0:
        raise ValueError(f"need equal, non-empty shapes, got {pred.shape} and {true.shape}")
    err = pred - true
    return {"rmse": float(np.sqrt(np.mean(err**2))), "mae": float(np.mean(np.abs(err)))}


class FoldErrors(NamedTuple):
    """Test RMSE and MAE of each fold, in fold order."""

    rmse: list[float]
    mae: list[float]


def fold_errors(fit_fold: Callable[[Ratings], object], folds: Sequence[int | str], *,
                dataset: str = DATASET) -> FoldErrors:
    """Fits ``fit_fold(train)`` (any model with ``predict(user, item)``: `fit`, `bpmf.fit`) on
    each predefined MovieLens fold's training ratings and scores it on the fold's test ratings."""
    rmse, mae = [], []
    for fold in folds:
        train, test = load_fold(fold, dataset=dataset)
        err = rating_errors(fit_fold(train).predict(test.user, test.item), test.rating)
        rmse.append(err["rmse"])
        mae.append(err["mae"])
    return FoldErrors(rmse, mae)
