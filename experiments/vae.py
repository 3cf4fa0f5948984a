"""VAE / autoencoder on MNIST or Fashion-MNIST: test ELBO, IWAE log-likelihood, samples, latent plot.

Config args (comma-separated): ``runlocal`` (seconds, CPU), ``fashion_mnist``, ``conv``, ``ae``.
Protocol of the Flax VAE example: 784-500-20 MLP, Adam 1e-3, batch 128, 10 epochs, Bernoulli
decoder, test ELBO = mean over test images of one-sample (BCE + KL) in nats. Pixels are
binarized: training images are re-binarized every step (Bernoulli with the grey level as
probability), the test set is binarized once with a fixed seed.
"""

from __future__ import annotations

import pathlib

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from embeddings_jax.data.batching import epoch_batches
from embeddings_jax.data.images import class_names, load_mnist
from embeddings_jax.eval.likelihood import iwae_log_likelihood
from embeddings_jax.models.autoencoder import (
    VAE,
    AutoEncoder,
    bernoulli_log_likelihood,
    gaussian_kl,
)
from embeddings_jax.train import LoopConfig, create_train_state, make_mesh, progress, train
from experiments.common import RESULTS_DIR, write_results

TEST_BINARIZATION_SEED = 0


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    args = set(filter(None, (arg or "").split(",")))
    unknown = args - {"runlocal", "fashion_mnist", "conv", "ae"}
    if unknown:
        raise ValueError(f"unknown vae config args {sorted(unknown)}; use runlocal, fashion_mnist, conv, ae")
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.dataset = "fashion_mnist" if "fashion_mnist" in args else "mnist"
    c.model = "ae" if "ae" in args else "vae"
    c.arch = "conv" if "conv" in args else "mlp"
    c.hidden = 256 if "conv" in args else 500
    c.latents = 20
    c.pixels = "binarized"  # or "continuous": BCE against grey levels (not a likelihood)
    c.learning_rate = 1e-3
    c.batch_size = 128
    c.num_epochs = 10
    c.num_devices = 0  # 0: every local device
    c.train_subset = 0  # 0: all 60,000 training images
    c.test_subset = 0  # 0: all 10,000 test images
    c.iwae_samples = 1000
    c.eval_batch_size = 500
    c.log_every = 50
    c.checkpoint_every = 1000
    c.write_results = True  # also write experiments/results/<name>.{md,json}
    if "runlocal" in args:
        c.num_epochs = 1
        c.train_subset = 4096
        c.test_subset = 500
        c.iwae_samples = 20
        c.checkpoint_every = 16
        c.log_every = 8
        c.write_results = False
    return c


def _images(split: str, config) -> tuple[np.ndarray, np.ndarray]:
    images, labels = load_mnist(split, config.dataset)
    subset = config.train_subset if split == "train" else config.test_subset
    if subset:
        images, labels = images[:subset], labels[:subset]
    return images.reshape(len(images), -1).astype(np.float32) / 255.0, labels


def binarize_fixed(x: np.ndarray, seed: int = TEST_BINARIZATION_SEED) -> np.ndarray:
    """One stochastic binarization (pixel on with probability = grey level), fixed by ``seed``."""
    return (np.random.default_rng(seed).random(x.shape, dtype=np.float32) < x).astype(np.float32)


def build_model(config):
    cls = VAE if config.model == "vae" else AutoEncoder
    if config.model not in ("vae", "ae"):
        raise ValueError(f"unknown model {config.model!r}; choose 'vae' or 'ae'")
    if config.pixels not in ("binarized", "continuous"):
        raise ValueError(f"unknown pixels {config.pixels!r}; choose 'binarized' or 'continuous'")
    return cls(arch=config.arch, hidden=config.hidden, latents=config.latents)


def make_loss_fn(model, config):
    """``loss_fn(params, batch, rng) -> (mean negative ELBO in nats, {rec, kl})``."""

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


def evaluate(model, params, x_test: np.ndarray, config, rng: jax.Array) -> dict[str, float]:
    """Test-set mean ELBO terms (one posterior sample) and, for the VAE, the IWAE estimate."""
    eval_config = config.copy_and_resolve_references()
    eval_config.pixels = "continuous"  # x_test is already binarized (or continuous by choice)
    loss_fn = jax.jit(make_loss_fn(model, eval_config))
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


def run(config, workdir: str) -> dict:
    workdir = pathlib.Path(workdir)
    x_train, _ = _images("train", config)
    x_test_grey, y_test = _images("test", config)
    x_test = binarize_fixed(x_test_grey) if config.pixels == "binarized" else x_test_grey

    model = build_model(config)
    mesh = make_mesh(config.num_devices or None)
    dummy = jnp.zeros((1, 784), jnp.float32)
    if config.model == "vae":
        init = lambda key: model.init(key, dummy, key)["params"]
    else:
        init = lambda key: model.init(key, dummy)["params"]
    tx = optax.adam(config.learning_rate)
    state = create_train_state(init, tx, config.seed, mesh)
    batch_fn, steps_per_epoch = epoch_batches({"image": x_train}, config.batch_size, config.seed)
    loop = LoopConfig(
        num_steps=config.num_epochs * steps_per_epoch,
        log_every=config.log_every,
        checkpoint_every=config.checkpoint_every,
        desc=f"{config.model} {config.dataset}",
    )
    state = train(state, make_loss_fn(model, config), batch_fn, mesh=mesh, workdir=workdir, config=loop)
    params = jax.device_get(state.params)

    metrics = evaluate(model, params, x_test, config, jax.random.PRNGKey(config.seed + 1))
    figures = _plots(model, params, config, x_test, y_test, workdir)
    key = f"{config.dataset.replace(':', '_')}_test"
    result = {
        f"{key}_elbo_nats": -metrics["neg_elbo"],
        f"{key}_neg_elbo_nats": metrics["neg_elbo"],
        f"{key}_reconstruction_nats": metrics["rec"],
        f"{key}_kl_nats": metrics["kl"],
    }
    if "nll_iwae" in metrics:
        result[f"{key}_nll_iwae{config.iwae_samples}_nats"] = metrics["nll_iwae"]
    name = f"{config.model}_{config.dataset.replace(':', '_')}" + ("_conv" if config.arch == "conv" else "")
    dirs = [workdir] + ([RESULTS_DIR] if config.write_results else [])
    if config.write_results:
        for f in figures:
            (RESULTS_DIR / f.name).write_bytes(f.read_bytes())
    write_results(name, _markdown(config, result, figures), {"config": config.to_dict(), **result}, dirs)
    return result


def _markdown(config, result: dict, figures: list[pathlib.Path]) -> str:
    pixels = (
        "binarized (train: re-sampled Bernoulli every step; test: one fixed Bernoulli draw, seed 0)"
        if config.pixels == "binarized"
        else "continuous grey levels as BCE targets (not a likelihood: not comparable to nats on binary data)"
    )
    rows = "\n".join(f"| `{k}` | {v:.2f} |" for k, v in result.items())
    figs = "\n".join(f"![{f.stem}]({f.name})" for f in figures)
    return f"""# {config.model.upper()} on {config.dataset} ({config.arch})

{config.arch.upper()} {784}-{config.hidden}-{config.latents}, Adam {config.learning_rate}, batch {config.batch_size}, \
{config.num_epochs} epochs, seed {config.seed}. Pixels: {pixels}.
Test ELBO is the mean over the test set of one-sample (reconstruction + KL), in nats per image, as in
the Flax VAE example (which reports about 104 on binarized MNIST after 10 epochs; lower negative ELBO is
better). The NLL is the importance-weighted bound with k = {config.iwae_samples} samples (Burda et al. 2016).

| metric | value |
|---|---:|
{rows}

{figs}
"""


def _plots(model, params, config, x_test, y_test, workdir: pathlib.Path) -> list[pathlib.Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    name = f"{config.model}_{config.dataset.replace(':', '_')}"
    x = jnp.asarray(x_test[:16])
    if config.model == "vae":
        rec_logits, _, _ = model.apply({"params": params}, x, jax.random.PRNGKey(1))
        z = jax.random.normal(jax.random.PRNGKey(2), (16, config.latents))
        samples = jax.nn.sigmoid(model.apply({"params": params}, z, method=VAE.generate))
    else:
        rec_logits, _ = model.apply({"params": params}, x)
        samples = None
    rows = [("test image", x), ("reconstruction", jax.nn.sigmoid(rec_logits))]
    if samples is not None:
        rows.append(("sample from prior", samples))
    fig, axes = plt.subplots(len(rows), 16, figsize=(16, len(rows) * 1.1))
    for r, (title, imgs) in enumerate(rows):
        for c in range(16):
            axes[r, c].imshow(np.asarray(imgs[c]).reshape(28, 28), cmap="gray", vmin=0, vmax=1)
            axes[r, c].axis("off")
        axes[r, 0].set_title(title, fontsize=8, loc="left")
    fig.tight_layout()
    grid = workdir / f"{name}_images.png"
    fig.savefig(grid, dpi=80)
    plt.close(fig)

    method = VAE.encode if config.model == "vae" else AutoEncoder.encode
    codes = np.concatenate(
        [np.asarray(model.apply({"params": params}, jnp.asarray(x_test[i : i + 1000]), method=method))
         for i in range(0, min(len(x_test), 5000), 1000)]
    )
    centred = codes - codes.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    xy = centred @ vt[:2].T
    fig, ax = plt.subplots(figsize=(6, 5))
    labels = y_test[: len(xy)]
    sc = ax.scatter(xy[:, 0], xy[:, 1], c=labels, cmap="tab10", s=3, alpha=0.7)
    names = class_names(config.dataset)
    handles = [plt.Line2D([], [], marker="o", ls="", color=sc.cmap(sc.norm(i)), label=names[i]) for i in range(10)]
    ax.legend(handles=handles, fontsize=7, markerscale=1, loc="best")
    ax.set_title(f"{config.model.upper()} latent means (PCA of {config.latents}-D), test set")
    fig.tight_layout()
    scatter = workdir / f"{name}_latent.png"
    fig.savefig(scatter, dpi=90)
    plt.close(fig)
    return [grid, scatter]
