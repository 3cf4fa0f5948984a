"""VAE / autoencoder on MNIST or Fashion-MNIST: test ELBO, IWAE log-likelihood, samples, latent plot.

Config args (comma-separated): ``runlocal`` (seconds, CPU), ``fashion_mnist``, ``conv``, ``ae``.
Protocol of the Flax VAE example: 784-500-20 MLP, Adam 1e-3, batch 128, 10 epochs, Bernoulli
decoder, test ELBO = mean over test images of one-sample (BCE + KL) in nats. Pixels are
binarized: training images are re-binarized every step (Bernoulli with the grey level as
probability), the test set is binarized once with a fixed seed.
"""

from __future__ import annotations

import functools
import pathlib

import jax
import ml_collections
import optax

from embeddings_jax.config import parse_arg
from embeddings_jax.data.batching import epoch_batches
from embeddings_jax.data.images import binarize_fixed, load_mnist, to_unit_vectors
from embeddings_jax.models import autoencoder
from embeddings_jax.train import LoopConfig, create_train_state, make_mesh, train
from experiments.reports import vae as report


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    args = parse_arg(arg, {"runlocal", "fashion_mnist", "conv", "ae"}, "vae")
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.dataset = "fashion_mnist" if "fashion_mnist" in args else "mnist"
    c.model = "ae" if "ae" in args else "vae"  # vae or plain autoencoder (ae)
    c.arch = "conv" if "conv" in args else "mlp"  # mlp or conv encoder/decoder
    c.hidden = 256 if "conv" in args else 500
    c.latents = 20
    c.pixels = "binarized"  # or "continuous": BCE against grey levels (not a likelihood)
    c.learning_rate = 1e-3
    c.batch_size = 128
    c.num_epochs = 10
    c.num_devices = 0  # 0: every local device
    c.train_subset = 0  # 0: all 60,000 training images
    c.test_subset = 0  # 0: all 10,000 test images
    c.iwae_samples = 1000  # importance samples of the IWAE log-likelihood bound
    c.eval_batch_size = 500
    c.log_every, c.checkpoint_every = 50, 1000  # steps
    c.write_results = True  # also write experiments/results/<name>.{md,json}
    if "runlocal" in args:  # seconds on a CPU
        c.update(num_epochs=1, train_subset=4096, test_subset=500, iwae_samples=20, checkpoint_every=16,
                 log_every=8, write_results=False)
    return c


def run(config, workdir: str) -> dict:
    workdir = pathlib.Path(workdir)
    x_train = to_unit_vectors(load_mnist("train", config.dataset)[0][: config.train_subset or None])
    images, labels = load_mnist("test", config.dataset)
    x_test, y_test = to_unit_vectors(images[: config.test_subset or None]), labels[: config.test_subset or None]
    x_test = binarize_fixed(x_test) if config.pixels == "binarized" else x_test  # one fixed draw, seed 0

    model = autoencoder.model_from_config(config)
    mesh = make_mesh(config.num_devices or None)
    tx = optax.adam(config.learning_rate)
    state = create_train_state(functools.partial(autoencoder.init_params, model), tx, config.seed, mesh)
    batch_fn, steps_per_epoch = epoch_batches({"image": x_train}, config.batch_size, config.seed)
    loop = LoopConfig(
        num_steps=config.num_epochs * steps_per_epoch,
        log_every=config.log_every,
        checkpoint_every=config.checkpoint_every,
        desc=f"{config.model} {config.dataset}",
    )
    state = train(state, autoencoder.elbo_loss_fn(model, config), batch_fn, mesh=mesh, workdir=workdir, config=loop)
    params = jax.device_get(state.params)

    metrics = autoencoder.evaluate(model, params, x_test, config, jax.random.PRNGKey(config.seed + 1))
    key = f"{config.dataset.replace(':', '_')}_test"
    result = {
        f"{key}_elbo_nats": -metrics["neg_elbo"],
        f"{key}_neg_elbo_nats": metrics["neg_elbo"],
        f"{key}_reconstruction_nats": metrics["rec"],
        f"{key}_kl_nats": metrics["kl"],
    }
    if "nll_iwae" in metrics:
        result[f"{key}_nll_iwae{config.iwae_samples}_nats"] = metrics["nll_iwae"]

    rows = {"test image": x_test[:16],
            "reconstruction": autoencoder.reconstruct(model, params, x_test[:16], jax.random.PRNGKey(1))}
    if config.model == "vae":
        rows["sample from prior"] = autoencoder.sample(model, params, jax.random.PRNGKey(2), 16)
    codes = autoencoder.embed(model, params, x_test[:5000])
    report.write(config, result, rows, codes, y_test[: len(codes)], workdir)
    return result
