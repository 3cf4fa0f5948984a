"""The plots the reports share: a 2-D PCA scatter of embeddings."""

from __future__ import annotations

import pathlib
from collections.abc import Sequence

import numpy as np


def pca_2d(x: np.ndarray) -> np.ndarray:
    """``[N, D] -> [N, 2]``: the centred rows projected on their two leading principal axes."""
    x = np.asarray(x, np.float64)
    x = x - x.mean(0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    return x @ vt[:2].T


def pca_scatter(x: np.ndarray, path: pathlib.Path, title: str, *,
                annotations: Sequence[str] | None = None,
                groups: Sequence[tuple[str, np.ndarray]] | None = None,
                rest_label: str | None = None, figsize=(7, 6), dpi: int = 110,
                point_size: float = 12) -> pathlib.Path:
    """Saves a PNG of ``pca_2d(x)``.

    ``annotations``: one text label per point. ``groups``: ``(legend label, boolean mask [N])``
    pairs, each drawn in its own colour; with ``rest_label`` the points of no group are drawn
    first in light grey under that label.
    """

    xy = pca_2d(x)
    fig, ax = new_figure(figsize=figsize)
    if groups is None:
        ax.scatter(xy[:, 0], xy[:, 1], s=point_size)
    else:
        if rest_label is not None:
            ax.scatter(xy[:, 0], xy[:, 1], s=point_size * 0.7, c="lightgrey", label=rest_label)
        for label, mask in groups:
            ax.scatter(xy[mask, 0], xy[mask, 1], s=point_size, label=label)
        ax.legend(markerscale=2, fontsize=7, loc="best")
    for (px, py), text in zip(xy, annotations or ()):
        ax.annotate(text, (px, py), fontsize=9, xytext=(3, 3), textcoords="offset points")
    ax.set_title(title)
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    fig.tight_layout()
    return save_figure(fig, path, dpi=dpi)


def new_figure(nrows: int = 1, ncols: int = 1, *, figsize=None, **subplots_kwargs):
    """``(figure, axes)`` as ``plt.subplots`` gives them, on a figure of its own: no pyplot state and
    no global backend switch, so a notebook's inline plots keep working after a report draws."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols, **subplots_kwargs)


def save_figure(fig, path: pathlib.Path, **savefig_kwargs) -> pathlib.Path:
    """Saves a matplotlib figure as a PNG, atomically (a killed run leaves no half image); under
    ``jax.distributed`` only process 0 writes it."""
    import jax

    from embeddings_jax.train.atomic import atomic_write

    path = pathlib.Path(path)
    if jax.process_index() == 0:
        with atomic_write(path, "wb") as f:
            fig.savefig(f, format="png", **savefig_kwargs)
    return path
