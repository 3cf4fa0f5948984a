"""Autoencoder and variational autoencoder (Kingma & Welling, 2014) for 28x28 images.

Images enter as float [B, 784] (or [B, 28, 28, 1] for the conv variants) in [0, 1]; the
decoders return Bernoulli logits of the same shape. ``encode`` gives the static embedding
(the posterior mean for the VAE); ``generate`` decodes latent codes, e.g. draws from the prior.

Below the modules: the model of a config (keys ``model`` "vae"/"ae", ``arch`` "mlp"/"conv",
``hidden``, ``latents``, ``pixels`` "binarized"/"continuous"), its negative-ELBO loss for
``embeddings_jax.train``, and the test-set evaluation (ELBO terms, IWAE log-likelihood).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from embeddings_jax.eval.likelihood import iwae_log_likelihood
from embeddings_jax.ops.densities import bernoulli_log_likelihood, gaussian_kl
from embeddings_jax.train import progress

IMAGE_SHAPE = (28, 28, 1)
NUM_PIXELS = 784


class _Encoder(nn.Module):
    """Fields and output heads the encoders share: ``num_outputs=2`` gives (mean, logvar), 1 a code."""

    hidden: int = 500
    latents: int = 20
    num_outputs: int = 2

    def outputs(self, h):
        """Called from the encoder's compact ``__call__``, so the heads ``out{i}`` are its own."""
        outs = [nn.Dense(self.latents, name=f"out{i}")(h) for i in range(self.num_outputs)]
        return outs if self.num_outputs > 1 else outs[0]


class MLPEncoder(_Encoder):
    """784 -> hidden -> (out features), ReLU."""

    @nn.compact
    def __call__(self, x):
        return self.outputs(nn.relu(nn.Dense(self.hidden, name="hidden")(x.reshape(x.shape[0], -1))))


class ConvEncoder(_Encoder):
    """28x28x1 -> 14x14x32 -> 7x7x64 (stride-2 convs) -> hidden -> (out features)."""

    hidden: int = 256

    @nn.compact
    def __call__(self, x):
        h = x.reshape(x.shape[0], *IMAGE_SHAPE)
        h = nn.relu(nn.Conv(32, (3, 3), strides=2, name="conv1")(h))
        h = nn.relu(nn.Conv(64, (3, 3), strides=2, name="conv2")(h))
        return self.outputs(nn.relu(nn.Dense(self.hidden, name="hidden")(h.reshape(h.shape[0], -1))))


class MLPDecoder(nn.Module):
    """latents -> hidden -> 784 logits."""

    hidden: int = 500

    @nn.compact
    def __call__(self, z):
        h = nn.relu(nn.Dense(self.hidden, name="hidden")(z))
        return nn.Dense(NUM_PIXELS, name="logits")(h)


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


# ---------------------------------------------------------------------------------------------------- training


def model_from_config(config) -> VAE | AutoEncoder:
    """``VAE`` or ``AutoEncoder`` of ``config``; checks ``config.pixels`` too, before any training starts."""
    cls = VAE if config.model == "vae" else AutoEncoder
    if config.model not in ("vae", "ae"):
        raise ValueError(f"unknown model {config.model!r}; choose 'vae' or 'ae'")
    if config.pixels not in ("binarized", "continuous"):
        raise ValueError(f"unknown pixels {config.pixels!r}; choose 'binarized' or 'continuous'")
    return cls(arch=config.arch, hidden=config.hidden, latents=config.latents)


def init_params(model: VAE | AutoEncoder, rng: jax.Array):
    """Parameters of ``model`` for [B, 784] inputs (the VAE's posterior sample uses ``rng`` too)."""
    dummy = jnp.zeros((1, NUM_PIXELS), jnp.float32)
    if isinstance(model, VAE):
        return model.init(rng, dummy, rng)["params"]
    return model.init(rng, dummy)["params"]


def elbo_loss_fn(model, config):
    """``loss_fn(params, batch, rng) -> (mean negative ELBO in nats, {rec, kl})``; batch = {"image": [B, 784]}.

    With ``config.pixels == "binarized"`` each step draws fresh binary pixels (grey level = probability);
    the autoencoder's KL term is zero, so its loss is the reconstruction alone.
    """

    def loss_fn(params, batch, rng):
        bin_key, z_key = jax.random.split(rng)
        x = batch["image"]
        if config.pixels == "binarized":
            x = jax.random.bernoulli(bin_key, x).astype(x.dtype)
        if config.model == "vae":
            logits, mean, logvar = model.apply({"params": params}, x, z_key)
            kl = gaussian_kl(mean, logvar)
        else:
            logits, _ = model.apply({"params": params}, x)
            kl = jnp.zeros(x.shape[0])
        rec = -bernoulli_log_likelihood(logits, x)
        return jnp.mean(rec + kl), {"rec": jnp.mean(rec), "kl": jnp.mean(kl)}

    return loss_fn


# ---------------------------------------------------------------------------------------------------- evaluation


def evaluate(model, params, x_test: np.ndarray, config, rng: jax.Array) -> dict[str, float]:
    """Test-set mean ELBO terms (one posterior sample) and, for the VAE, the IWAE estimate.

    x_test: [N, 784], already binarized (or continuous by choice). Returns ``rec, kl, neg_elbo`` and,
    with ``config.iwae_samples``, ``nll_iwae`` (nats per image), in batches of ``config.eval_batch_size``.
    """
    eval_config = config.copy_and_resolve_references()
    eval_config.pixels = "continuous"  # x_test is already binarized (or continuous by choice)
    loss_fn = jax.jit(elbo_loss_fn(model, eval_config))
    sums = {"rec": 0.0, "kl": 0.0}
    bs = config.eval_batch_size
    for i in range(0, len(x_test), bs):
        xb = x_test[i : i + bs]
        _, aux = loss_fn(params, {"image": jnp.asarray(xb)}, jax.random.fold_in(rng, i))
        for k in sums:
            sums[k] += float(aux[k]) * len(xb)
    out = {k: v / len(x_test) for k, v in sums.items()}
    out["neg_elbo"] = out["rec"] + out["kl"]
    if config.model == "vae" and config.iwae_samples:
        posterior = lambda x: model.apply({"params": params}, x, method=VAE.posterior)
        decode = lambda z: model.apply({"params": params}, z, method=VAE.generate)
        iwae = jax.jit(
            lambda x, key: iwae_log_likelihood(posterior, decode, x, key, config.iwae_samples, min(100, config.iwae_samples))
        )
        total = 0.0
        for i in progress(range(0, len(x_test), bs), desc=f"IWAE k={config.iwae_samples}"):
            total += float(jnp.sum(iwae(jnp.asarray(x_test[i : i + bs]), jax.random.fold_in(rng, 10**6 + i))))
        out["nll_iwae"] = -total / len(x_test)
    return out


def reconstruct(model, params, x: np.ndarray, rng: jax.Array) -> jax.Array:
    """[B, 784] pixel probabilities of the reconstructions (the VAE decodes one posterior sample)."""
    if isinstance(model, VAE):
        logits, _, _ = model.apply({"params": params}, jnp.asarray(x), rng)
    else:
        logits, _ = model.apply({"params": params}, jnp.asarray(x))
    return jax.nn.sigmoid(logits)


def sample(model: VAE, params, rng: jax.Array, num: int) -> jax.Array:
    """[num, 784] pixel probabilities decoded from standard-normal draws of the prior."""
    z = jax.random.normal(rng, (num, model.latents))
    return jax.nn.sigmoid(model.apply({"params": params}, z, method=VAE.generate))


def embed(model, params, x: np.ndarray, batch: int = 1000) -> np.ndarray:
    """[N, latents] static embeddings (the VAE's posterior means, the autoencoder's codes)."""
    return np.concatenate(
        [np.asarray(model.apply({"params": params}, jnp.asarray(x[i : i + batch]), method=type(model).encode))
         for i in range(0, len(x), batch)]
    )
