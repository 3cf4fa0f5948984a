"""Log-likelihood estimates for latent-variable models.

``iwae_log_likelihood`` is the importance-weighted bound of Burda et al. (2016),
log p(x) >= E[log (1/K) sum_k p(x, z_k) / q(z_k | x)], which tightens towards log p(x) as K
grows; with K = 1 it is the ELBO.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from embeddings_jax.ops.densities import bernoulli_log_likelihood, gaussian_log_density


def iwae_log_likelihood(
    posterior: Callable[[jax.Array], tuple[jax.Array, jax.Array]],
    decode: Callable[[jax.Array], jax.Array],
    x: jax.Array,
    rng: jax.Array,
    num_samples: int = 1000,
    chunk: int = 100,
) -> jax.Array:
    """Per-example IWAE estimate of log p(x) in nats, [B], for binary ``x`` [B, D].

    ``posterior(x) -> (mean, logvar)`` of q(z|x); ``decode(z) -> Bernoulli logits``. Samples are
    drawn ``chunk`` at a time with a running log-sum-exp, so memory is O(chunk x B x D).
    """
    if num_samples < 1 or num_samples % chunk and num_samples > chunk:
        raise ValueError(f"num_samples ({num_samples}) must be >= 1 and a multiple of chunk ({chunk})")
    chunk = min(chunk, num_samples)
    mean, logvar = posterior(x)
    batch, latents = mean.shape

    def body(carry, key):
        eps = jax.random.normal(key, (chunk, batch, latents), mean.dtype)
        z = mean + jnp.exp(0.5 * logvar) * eps
        logits = decode(z.reshape(chunk * batch, latents)).reshape(chunk, batch, -1)
        log_w = (
            bernoulli_log_likelihood(logits, x)
            + gaussian_log_density(z, 0.0, jnp.zeros_like(z))
            - gaussian_log_density(z, mean, logvar)
        )
        return jnp.logaddexp(carry, jax.nn.logsumexp(log_w, axis=0)), None

    init = jnp.full((batch,), -jnp.inf, mean.dtype)
    total, _ = jax.lax.scan(body, init, jax.random.split(rng, num_samples // chunk))
    return total - jnp.log(float(num_samples))
