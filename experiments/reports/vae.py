"""Report of the vae experiment: the metrics table (markdown + JSON), an image grid and a latent plot."""

from __future__ import annotations

import pathlib
from collections.abc import Sequence

import numpy as np

from embeddings_jax.data.images import class_names
from experiments.common import RESULTS_DIR, publish, write_results
from experiments.reports.plots import new_figure, pca_scatter, save_figure


def write(config, result: dict, rows: dict, codes: np.ndarray, labels: np.ndarray, workdir: pathlib.Path) -> None:
    """Writes ``<model>_<dataset>[_conv].{md,json}`` and the two pictures to ``workdir`` (and results/).

    rows: title -> [16, 784] pixel probabilities, one grid row each; codes: [N, latents] test embeddings
    with their ``labels`` [N].
    """
    stem = f"{config.model}_{config.dataset.replace(':', '_')}"
    figures = [
        image_grid(rows, workdir / f"{stem}_images.png"),
        pca_scatter(codes, workdir / f"{stem}_latent.png",
                    f"{config.model.upper()} latent means (PCA of {config.latents}-D), test set",
                    groups=[(name, labels == i) for i, name in enumerate(class_names(config.dataset))],
                    figsize=(6, 5), dpi=90, point_size=3),
    ]
    dirs = [workdir] + ([RESULTS_DIR] if config.write_results else [])
    if config.write_results:
        publish(*figures)
    name = stem + ("_conv" if config.arch == "conv" else "")
    write_results(name, markdown(config, result, [f.name for f in figures]), {"config": config.to_dict(), **result}, dirs)


def image_grid(rows: dict, path: pathlib.Path) -> pathlib.Path:
    """One row of 28x28 images per entry of ``rows``, titled by its key."""

    n = len(next(iter(rows.values())))
    fig, axes = new_figure(len(rows), n, figsize=(n, len(rows) * 1.1))
    for r, (title, imgs) in enumerate(rows.items()):
        for c in range(n):
            axes[r, c].imshow(np.asarray(imgs[c]).reshape(28, 28), cmap="gray", vmin=0, vmax=1)
            axes[r, c].axis("off")
        axes[r, 0].set_title(title, fontsize=8, loc="left")
    fig.tight_layout()
    save_figure(fig, path, dpi=80)
    return path


def markdown(config, result: dict, figures: Sequence[str]) -> str:
    pixels = (
        "binarized (train: re-sampled Bernoulli every step; test: one fixed Bernoulli draw, seed 0)"
        if config.pixels == "binarized"
        else "continuous grey levels as BCE targets (not a likelihood: not comparable to nats on binary data)"
    )
    rows = "\n".join(f"| `{k}` | {v:.2f} |" for k, v in result.items())
    figs = "\n".join(f"![{pathlib.PurePath(f).stem}]({f})" for f in figures)
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
