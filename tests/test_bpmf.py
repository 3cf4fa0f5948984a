"""Bayesian PMF: the Gibbs conditionals against closed forms, and the fitted model."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from embeddings_jax.data.ratings import Ratings
from embeddings_jax.models.recsys import bpmf
from embeddings_jax.models.recsys.factorization import rating_errors


def _ratings(user, item, rating):
    n = len(user)
    return Ratings(np.asarray(user, np.int32), np.asarray(item, np.int32),
                   np.asarray(rating, np.float32), np.zeros(n, np.int64))


def test_wishart_draws_have_mean_df_times_scale():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3, 3))
    scale = a @ a.T / 3 + np.eye(3)
    df = 7.0
    keys = jax.random.split(jax.random.PRNGKey(0), 20000)
    draws = jax.vmap(lambda k: bpmf.sample_wishart(k, jnp.linalg.cholesky(jnp.asarray(scale)), df))(keys)
    np.testing.assert_allclose(np.mean(np.asarray(draws), 0), df * scale, rtol=0.05, atol=0.1)


@pytest.mark.parametrize("pinned", [None, 1])
def test_row_conditional_matches_closed_form_gaussian(pinned):
    """Draws of one user's factors given items have the exact posterior mean and covariance
    (conditioned on the pinned column when there is one)."""
    rng = np.random.default_rng(1)
    d, alpha = 3, 2.0
    items = rng.normal(size=(5, d)).astype(np.float32)
    cols = np.array([0, 2, 3, 4])
    resid = rng.normal(size=4).astype(np.float32)
    mean = np.array([0.2, -0.1, 0.3], np.float32)
    prec = np.array([[2.0, 0.3, 0.0], [0.3, 1.5, 0.2], [0.0, 0.2, 1.0]], np.float32)
    # closed form in float64
    v = items[cols].astype(np.float64)
    lam = prec + alpha * v.T @ v
    b = alpha * v.T @ resid + prec @ mean
    if pinned is None:
        want_mean, want_cov, free = np.linalg.solve(lam, b), np.linalg.inv(lam), np.arange(d)
    else:
        free = np.setdiff1d(np.arange(d), [pinned])
        lff = lam[np.ix_(free, free)]
        want_mean = np.linalg.solve(lff, b[free] - lam[free, pinned])
        want_cov = np.linalg.inv(lff)
    draw = jax.jit(jax.vmap(lambda k: bpmf.sample_side(
        k, jnp.asarray(items), jnp.zeros(4, jnp.int32), jnp.asarray(cols), jnp.asarray(resid), 1,
        jnp.asarray(mean), jnp.asarray(prec), alpha, pinned)[0]))
    x = np.asarray(draw(jax.random.split(jax.random.PRNGKey(2), 40000)), np.float64)[:, free]
    np.testing.assert_allclose(x.mean(0), want_mean, atol=0.02)
    np.testing.assert_allclose(np.cov(x.T), want_cov, atol=0.02)


def test_fit_recovers_low_rank_ratings_and_is_reproducible():
    rng = np.random.default_rng(0)
    nu, ni = 60, 40
    pu, qi = rng.normal(size=(nu, 2)), rng.normal(size=(ni, 2))
    full = np.clip(3 + 0.6 * pu @ qi.T + 0.4 * rng.normal(size=(nu, 1)), 1, 5)
    u, i = np.divmod(rng.permutation(nu * ni)[: nu * ni * 7 // 10], ni)
    keep = u < nu - 1  # the last user never appears: cold
    u, i = u[keep], i[keep]
    train = _ratings(u, i, full[u, i])
    cfg = bpmf.BPMFConfig(dim=5, samples=60, burn_in=20)
    model = bpmf.fit(train, cfg, num_users=nu, num_items=ni)
    # the pinned bias columns hold exactly 1 in every kept draw
    assert np.all(model.user_draws[:, :, 0] == 1) and np.all(model.item_draws[:, :, 1] == 1)
    assert model.user_draws.shape == (40, nu, 5)
    mask = np.ones((nu, ni), bool)
    mask[u, i] = False
    mask[nu - 1] = False
    hu, hi = np.nonzero(mask)
    err = rating_errors(model.predict(hu, hi), full[hu, hi])
    baseline = rating_errors(np.full(len(hu), train.rating.mean()), full[hu, hi])
    assert err["rmse"] < 0.5 * baseline["rmse"]
    cold = model.predict(np.full(ni, nu - 1), np.arange(ni))
    assert np.all(np.isfinite(cold)) and np.all((cold >= 1) & (cold <= 5))
    again = bpmf.fit(train, cfg, num_users=nu, num_items=ni)
    np.testing.assert_array_equal(again.predict(hu, hi), model.predict(hu, hi))


def test_bad_config():
    """Bad ids and ratings: tests/test_recsys_models.py, for MF and BPMF alike."""
    train = _ratings([0, 1, 2], [0, 1, 2], [1, 3, 5])
    with pytest.raises(ValueError, match="burn_in"):
        bpmf.fit(train, bpmf.BPMFConfig(dim=3, samples=3, burn_in=3), num_users=3, num_items=3)
    with pytest.raises(ValueError, match="too small"):
        bpmf.fit(train, bpmf.BPMFConfig(dim=2), num_users=3, num_items=3)
