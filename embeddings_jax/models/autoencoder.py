"""Autoencoder and variational autoencoder (Kingma & Welling, 2014) for 28x28 images.

Images enter as float [B, 784] (or [B, 28, 28, 1] for the conv variants) in [0, 1]; the
decoders return Bernoulli logits of the same shape. ``encode`` gives the static embedding
(the posterior mean for the VAE); ``generate`` decodes latent codes, e.g. draws from the prior.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

IMAGE_SHAPE = (28, 28, 1)
NUM_PIXELS = 784


class MLPEncoder(nn.Module):
    """784 -> hidden -> (out features), ReLU; ``num_outputs=2`` gives (mean, logvar)."""

    hidden: int = 500
    latents: int = 20
    num_outputs: int = 2

    @nn.compact
    def __call__(self, x):
        h = nn.relu(nn.Dense(self.hidden, name="hidden")(x.reshape(x.shape[0], -1)))
        outs = [nn.Dense(self.latents, name=f"out{i}")(h) for i in range(self.num_outputs)]
        return outs if self.num_outputs > 1 else outs[0]


class MLPDecoder(nn.Module):
    """latents -> hidden -> 784 logits."""

    hidden: int = 500

    @nn.compact
    def __call__(self, z):
        h = nn.relu(nn.Dense(self.hidden, name="hidden")(z))
        return nn.Dense(NUM_PIXELS, name="logits")(h)


class ConvEncoder(nn.Module):
    """28x28x1 -> 14x14x32 -> 7x7x64 (stride-2 convs) -> hidden -> (out features)."""

    hidden: int = 256
    latents: int = 20
    num_outputs: int = 2

    @nn.compact
    def __call__(self, x):
        h = x.reshape(x.shape[0], *IMAGE_SHAPE)
        h = nn.relu(nn.Conv(32, (3, 3), strides=2, name="conv1")(h))
        h = nn.relu(nn.Conv(64, (3, 3), strides=2, name="conv2")(h))
        h = nn.relu(nn.Dense(self.hidden, name="hidden")(h.reshape(h.shape[0], -1)))
        outs = [nn.Dense(self.latents, name=f"out{i}")(h) for i in range(self.num_outputs)]
        return outs if self.num_outputs > 1 else outs[0]


class ConvDecoder(nn.Module):
    """latents -> hidden -> 7x7x64 -> 14x14x32 -> 28x28x1 logits, flattened to 784."""

    hidden: int = 256

    @nn.compact
    def __call__(self, z):
        h = nn.relu(nn.Dense(self.hidden, name="hidden")(z))
        h = nn.relu(nn.Dense(7 * 7 * 64, name="project")(h)).reshape(z.shape[0], 7, 7, 64)
        h = nn.relu(nn.ConvTranspose(32, (3, 3), strides=(2, 2), name="deconv1")(h))
        h = nn.ConvTranspose(1, (3, 3), strides=(2, 2), name="deconv2")(h)
        return h.reshape(z.shape[0], NUM_PIXELS)


def _parts(arch: str, hidden: int, latents: int, num_outputs: int):
    if arch == "mlp":
        return MLPEncoder(hidden, latents, num_outputs), MLPDecoder(hidden)
    if arch == "conv":
        return ConvEncoder(hidden, latents, num_outputs), ConvDecoder(hidden)
    raise ValueError(f"unknown architecture {arch!r}; choose 'mlp' or 'conv'")


class AutoEncoder(nn.Module):
    """Deterministic autoencoder: ``__call__(x) -> (logits [B,784], code [B,latents])``."""

    arch: str = "mlp"
    hidden: int = 500
    latents: int = 20

    def setup(self):
        self.encoder, self.decoder = _parts(self.arch, self.hidden, self.latents, 1)

    def __call__(self, x):
        code = self.encoder(x)
        return self.decoder(code), code

    def encode(self, x):
        return self.encoder(x)

    def generate(self, z):
        return self.decoder(z)


class VAE(nn.Module):
    """Gaussian-posterior VAE with a Bernoulli decoder and a standard-normal prior.

    ``__call__(x, rng) -> (logits [B,784], mean [B,L], logvar [B,L])`` draws one posterior sample
    with the reparameterization trick, ``z = mean + exp(logvar / 2) * eps``.
    """

    arch: str = "mlp"
    hidden: int = 500
    latents: int = 20

    def setup(self):
        self.encoder, self.decoder = _parts(self.arch, self.hidden, self.latents, 2)

    def __call__(self, x, rng):
        mean, logvar = self.encoder(x)
        z = reparameterize(rng, mean, logvar)
        return self.decoder(z), mean, logvar

    def posterior(self, x):
        return self.encoder(x)

    def encode(self, x):
        return self.encoder(x)[0]

    def generate(self, z):
        return self.decoder(z)


def reparameterize(rng: jax.Array, mean: jax.Array, logvar: jax.Array) -> jax.Array:
    return mean + jnp.exp(0.5 * logvar) * jax.random.normal(rng, mean.shape, mean.dtype)


def bernoulli_log_likelihood(logits: jax.Array, x: jax.Array) -> jax.Array:
    """log p(x | logits) summed over pixels, [B]; ``x`` in [0, 1] (binary for a true likelihood)."""
    return -jnp.sum(x * jax.nn.softplus(-logits) + (1.0 - x) * jax.nn.softplus(logits), axis=-1)


def gaussian_kl(mean: jax.Array, logvar: jax.Array) -> jax.Array:
    """KL(N(mean, exp(logvar)) || N(0, I)) summed over latents, [B]."""
    return 0.5 * jnp.sum(jnp.exp(logvar) + mean**2 - 1.0 - logvar, axis=-1)


def gaussian_log_density(z: jax.Array, mean: jax.Array, logvar: jax.Array) -> jax.Array:
    """log N(z; mean, exp(logvar)) summed over the last axis."""
    return -0.5 * jnp.sum(jnp.log(2 * jnp.pi) + logvar + (z - mean) ** 2 * jnp.exp(-logvar), axis=-1)
