"""Log densities of the distributions the latent-variable models use; ``[B, ...] -> [B]``."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def bernoulli_log_likelihood(logits: jax.Array, x: jax.Array) -> jax.Array:
    """log p(x | logits) summed over the last axis, [B]; ``x`` in [0, 1] (binary for a true likelihood)."""
    return -jnp.sum(x * jax.nn.softplus(-logits) + (1.0 - x) * jax.nn.softplus(logits), axis=-1)


def gaussian_kl(mean: jax.Array, logvar: jax.Array) -> jax.Array:
    """KL(N(mean, exp(logvar)) || N(0, I)) summed over the last axis, [B]."""
    return 0.5 * jnp.sum(jnp.exp(logvar) + mean**2 - 1.0 - logvar, axis=-1)


def gaussian_log_density(z: jax.Array, mean: jax.Array, logvar: jax.Array) -> jax.Array:
    """log N(z; mean, exp(logvar)) summed over the last axis, [B]."""
    return -0.5 * jnp.sum(jnp.log(2 * jnp.pi) + logvar + (z - mean) ** 2 * jnp.exp(-logvar), axis=-1)
