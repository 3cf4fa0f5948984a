"""Bayesian probabilistic matrix factorization (Salakhutdinov & Mnih, ICML 2008), Gibbs-sampled in JAX.

    r_ui ~ N(mu + U_u . V_i, 1 / alpha),   U_u ~ N(m_U, L_U^-1),   V_i ~ N(m_V, L_V^-1),
    (m_U, L_U), (m_V, L_V) ~ Gaussian-Wishart(mu_0 = 0, beta_0, W_0 = I, nu_0 = dim).

Instead of one point estimate with a hand-tuned L2 penalty, the sampler averages predictions over
posterior draws of the factors *and* of their prior (which plays the part of a per-dimension,
learned regulariser), so it needs no regularisation sweep and does not overfit as the dimension
grows. ``mu`` is the training mean. Biases are factors too: with ``biases=True`` column 0 of ``U``
is pinned to 1 so ``V[:, 0]`` is an item bias, and column 1 of ``V`` is pinned to 1 so ``U[:, 1]``
is a user bias, both under the same learned prior.

One Gibbs sweep (one jitted program per sweep; the factors are donated):

1. hyper-parameters of each side given its factors (Normal-Wishart posterior; the Wishart drawn by
   the Bartlett decomposition);
2. every user's factors given the items' (``[U, D, D]`` precision matrices from a segment sum of
   ``V_i V_i^T`` over the user's ratings, batched Cholesky), then every item's given the users'.
   A pinned column is conditioned on exactly (moved to the right-hand side), not overwritten.

Predictions average ``U_u . V_i`` over the draws kept after ``burn_in`` and are clipped to the rating
range. Users or items without training ratings are drawn from the learned prior, so their
averaged factor tends to the prior mean: a data-driven cold-start fallback.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from embeddings_jax.data.ratings import RATING_RANGE, Ratings, check_id_pairs, validate_ratings
from embeddings_jax.train.logging import progress


@dataclasses.dataclass(frozen=True)
class BPMFConfig:
    """Sampler settings (the paper's hyper-prior; ``alpha`` = 2 as in the paper)."""

    dim: int = 10
    alpha: float = 2.0  # observation precision
    beta0: float = 2.0  # prior precision scale of the factor means (Normal-Wishart)
    biases: bool = True  # user and item biases sampled as extra factor columns
    samples: int = 200  # Gibbs sweeps in all
    burn_in: int = 50  # sweeps discarded before averaging
    thin: int = 1  # keep every ``thin``-th draw after burn-in
    seed: int = 0


def sample_wishart(key, scale_chol, df):
    """One draw of ``Wishart(W, df)`` given ``scale_chol`` = chol(W) ``[D, D]`` (Bartlett)."""
    d = scale_chol.shape[0]
    k_chi, k_norm = jax.random.split(key)
    # A_ii^2 ~ chi^2(df - i), i = 0..D-1;  chi^2(k) = 2 Gamma(k / 2)
    chi2 = 2.0 * jax.random.gamma(k_chi, (df - jnp.arange(d)) / 2.0)
    a = jnp.tril(jax.random.normal(k_norm, (d, d)), -1) + jnp.diag(jnp.sqrt(chi2))
    la = scale_chol @ a
    return la @ la.T


def sample_hyper(key, x, beta0: float):
    """``(mean [D], precision [D, D])`` from the Normal-Wishart posterior given the rows ``x [N, D]``
    (prior: mean 0, ``beta0``, ``W0 = I``, ``nu0 = D``)."""
    n, d = x.shape
    xbar = x.mean(0)
    centered = x - xbar
    scatter = centered.T @ centered
    w_inv = jnp.eye(d) + scatter + (beta0 * n / (beta0 + n)) * jnp.outer(xbar, xbar)
    w_inv = 0.5 * (w_inv + w_inv.T)
    w = jnp.linalg.inv(w_inv)
    w = 0.5 * (w + w.T)
    k_w, k_m = jax.random.split(key)
    precision = sample_wishart(k_w, jnp.linalg.cholesky(w), d + n)
    beta = beta0 + n
    mean_post = n * xbar / beta
    chol = jnp.linalg.cholesky(beta * precision)
    mean = mean_post + jax.scipy.linalg.solve_triangular(
        chol.T, jax.random.normal(k_m, (d,)), lower=False)
    return mean, precision


def sample_side(key, other, rows, cols, resid, n_rows, mean, precision, alpha: float,
                pinned: int | None = None):
    """Draws every row's factors ``[n_rows, D]`` given the other side's factors ``other [M, D]``.

    ``rows``/``cols [N]``: each rating's row on this side and on the other; ``resid [N]``: the
    rating minus ``mu``. ``pinned``: a column of this side fixed to 1 (the others are drawn
    from their conditional given it).
    """
    v = other[cols]  # [N, D]
    gram = jax.ops.segment_sum(v[:, :, None] * v[:, None, :], rows, n_rows)  # [R, D, D]
    rhs = jax.ops.segment_sum(v * resid[:, None], rows, n_rows)  # [R, D]
    lam = precision[None] + alpha * gram
    b = alpha * rhs + (precision @ mean)[None]
    if pinned is not None:  # condition on x[pinned] = 1: move its column to the right-hand side
        b = b - lam[:, :, pinned]
        e = jnp.eye(lam.shape[-1])[pinned]
        keep = 1.0 - e
        lam = lam * keep[None, :, None] * keep[None, None, :] + (e[:, None] * e[None, :])[None]
        b = b * keep[None] + e[None]
    # x = L^-T (L^-1 b + z) with lam = L L^T: the posterior mean plus N(0, lam^-1) noise. The
    # solves are chained (no two LAPACK calls can run at once: concurrent ones hang XLA:CPU).
    chol = jnp.linalg.cholesky(lam)
    y = jax.lax.linalg.triangular_solve(chol, b[..., None], left_side=True, lower=True)
    y = y + jax.random.normal(key, y.shape)
    x = jax.lax.linalg.triangular_solve(chol, y, left_side=True, lower=True, transpose_a=True)
    return x[..., 0]


def _pin(u, v, biases: bool):
    if biases:
        u = u.at[:, 0].set(1.0)
        v = v.at[:, 1].set(1.0)
    return u, v


@functools.partial(jax.jit, static_argnames=("num_users", "num_items", "config"), donate_argnums=0)
def _sweep(carry, key, user, item, resid, num_users, num_items, config: BPMFConfig):
    """One Gibbs sweep: hyper-parameters of both sides, then users given items, items given users."""
    u, v = carry
    k1, k2, k3, k4 = jax.random.split(key, 4)
    mean_u, prec_u = sample_hyper(k1, u, config.beta0)
    mean_v, prec_v = sample_hyper(k2, v, config.beta0)
    pin_u, pin_v = (0, 1) if config.biases else (None, None)
    u = sample_side(k3, v, user, item, resid, num_users, mean_u, prec_u, config.alpha, pin_u)
    v = sample_side(k4, u, item, user, resid, num_items, mean_v, prec_v, config.alpha, pin_v)
    return _pin(u, v, config.biases)


def _gibbs(user, item, resid, num_users: int, num_items: int, config: BPMFConfig):
    """Runs the chain; returns the kept draws ``(U [S, num_users, D], V [S, num_items, D])``.

    A Python loop over jitted sweeps (a ``lax.scan`` over sweeps hangs XLA:CPU for some sizes
    when its body holds batched LAPACK calls, as of jax 0.10).
    """
    key = jax.random.PRNGKey(config.seed)
    k_u, k_v, key = jax.random.split(key, 3)
    carry = _pin(0.1 * jax.random.normal(k_u, (num_users, config.dim)),
                 0.1 * jax.random.normal(k_v, (num_items, config.dim)), config.biases)
    keys = jax.random.split(key, config.samples)
    kept_u, kept_v = [], []
    for s in progress(range(config.samples), desc="BPMF Gibbs"):
        carry = _sweep(carry, keys[s], user, item, resid, num_users, num_items, config)
        if s >= config.burn_in and (s - config.burn_in) % config.thin == 0:
            kept_u.append(np.asarray(carry[0]))
            kept_v.append(np.asarray(carry[1]))
    return np.stack(kept_u), np.stack(kept_v)


@dataclasses.dataclass(frozen=True)
class FittedBPMF:
    """Posterior draws; ``predict`` averages over them."""

    mu: float
    user_draws: np.ndarray  # [S, num_users, D]
    item_draws: np.ndarray  # [S, num_items, D]

    def predict(self, user, item, *, clip: tuple[float, float] | None = RATING_RANGE) -> np.ndarray:
        """Posterior-mean ratings ``[B]``; ids outside the tables raise ``ValueError``."""
        user, item = check_id_pairs(user, item, self.user_draws.shape[1], self.item_draws.shape[1])
        pred = self.mu + np.asarray(_mean_dot(jnp.asarray(self.user_draws), jnp.asarray(self.item_draws),
                                              jnp.asarray(user), jnp.asarray(item)))
        return np.clip(pred, *clip) if clip is not None else pred


@jax.jit
def _mean_dot(us, vs, user, item):
    return jnp.mean(jnp.sum(us[:, user] * vs[:, item], -1), axis=0)


def fit(train: Ratings, config: BPMFConfig = BPMFConfig(), *, num_users: int, num_items: int) -> FittedBPMF:
    """Samples the posterior given ``train``; see the module docstring."""
    validate_ratings(train, num_users=num_users, num_items=num_items, name="train ratings")
    if config.dim < (3 if config.biases else 1):
        raise ValueError(f"dim={config.dim} is too small (biases take two columns)")
    if not 0 <= config.burn_in < config.samples or config.thin < 1:
        raise ValueError(f"need 0 <= burn_in ({config.burn_in}) < samples ({config.samples}) and thin >= 1")
    mu = float(np.mean(train.rating))
    us, vs = _gibbs(jnp.asarray(train.user, jnp.int32), jnp.asarray(train.item, jnp.int32),
                    jnp.asarray(train.rating - mu, jnp.float32), num_users, num_items, config)
    if not (np.isfinite(us).all() and np.isfinite(vs).all()):
        raise FloatingPointError("the Gibbs chain produced non-finite factors; lower dim or alpha")
    return FittedBPMF(mu, us, vs)
