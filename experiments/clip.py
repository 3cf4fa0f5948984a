"""CLIP-style dual encoder on Fashion-MNIST and MNIST with template captions; CLIP vs SigLIP loss.

Each training image is paired with a caption made from its class name and one of several training
templates ("a blurry picture of the sneaker."); other templates are held out and used only at test time
(``embeddings_jax.data.class_captions``). Reported on the test set, for each dataset and loss: zero-shot
accuracy, image->text and text->image recall@1/5, and a linear probe on the frozen image embeddings
(``embeddings_jax.models.dual_encoder.evaluate``).

Config args (comma-separated): ``runlocal`` (seconds, CPU), ``fashion_mnist`` / ``mnist`` (one dataset
instead of both), ``clip`` / ``siglip`` (one loss instead of both), ``vit`` (ViT image tower instead of CNN).
"""

from __future__ import annotations

import pathlib
from collections.abc import Sequence

import ml_collections
import numpy as np

from embeddings_jax.config import parse_arg
from embeddings_jax.data.class_captions import token_tables
from embeddings_jax.data.images import load_mnist
from embeddings_jax.models import dual_encoder
from embeddings_jax.train import make_mesh
from experiments.reports import clip as report

DATASETS = ("fashion_mnist", "mnist")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    args = parse_arg(arg, {"runlocal", "vit", *dual_encoder.LOSSES, *DATASETS}, "clip")
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.datasets = (  # comma-separated image-text datasets to train on
        ",".join(d for d in DATASETS if d in args) or ",".join(DATASETS))
    c.losses = (  # comma-separated contrastive losses (clip, siglip)
        ",".join(x for x in dual_encoder.LOSSES if x in args) or ",".join(dual_encoder.LOSSES))
    c.image_tower = "vit" if "vit" in args else "cnn"  # image encoder: cnn or vit
    c.embed_dim = 64
    c.width = 64  # text transformer (and ViT) width; the CNN's dense layer has 2 x width units
    c.depth = 2
    c.heads = 4
    c.max_len = 40
    c.piece_dropout = 0.1  # word-piece dropout on training captions
    c.piece_variants = 8  # pre-tokenized spellings of each training caption
    c.batch_size = 256
    c.num_epochs = 1
    c.learning_rate = 2e-3
    c.weight_decay = 1e-4
    c.warmup_steps = 100
    c.num_devices = 0  # 0: every local device
    c.loss_block_size = 0  # 0: reference loss; k > 0: blockwise loss with row tiles of k
    c.shard_map = True  # shard_map loss over the mesh (False: global view under jit)
    c.train_subset = 0  # 0: all 60,000 training images
    c.test_subset = 0  # 0: all 10,000 test images
    c.probe_train_subset = 20000  # training images the linear probe fits on
    c.probe_steps = 500  # optimiser steps of the linear probe
    c.log_every = 50
    c.checkpoint_every = 1000
    c.write_results = True  # also write experiments/results/clip.{md,json} and the similarity picture
    if "runlocal" in args:  # seconds on a CPU
        c.datasets = ",".join(d for d in DATASETS if d in args) or "fashion_mnist"
        c.update(embed_dim=32, width=32, depth=1, batch_size=64, num_epochs=1, warmup_steps=5, train_subset=1024,
                 test_subset=256, probe_train_subset=512, probe_steps=50, log_every=4, checkpoint_every=8,
                 write_results=False)
    return c


def _names(csv: str, allowed: Sequence[str], what: str) -> list[str]:
    names = [x for x in csv.split(",") if x]
    if not names or any(x not in allowed for x in names):
        raise ValueError(f"config.{what}={csv!r}: choose a comma-separated subset of {list(allowed)}")
    return names


def _load(dataset: str, config) -> dict:
    """Train and test images (uint8 [N, 28, 28]) and labels, cut to the config's subsets (0: all)."""
    out = {}
    for split, subset in (("train", config.train_subset), ("test", config.test_subset)):
        images, labels = load_mnist(split, dataset)
        out[f"{split}_images"], out[f"{split}_labels"] = images[: subset or None], labels[: subset or None]
    return out


def run(config, workdir: str) -> dict:
    workdir = pathlib.Path(workdir)
    datasets = _names(config.datasets, DATASETS, "datasets")
    loss_names = _names(config.losses, dual_encoder.LOSSES, "losses")
    mesh = make_mesh(config.num_devices or None)
    result, example = {}, None
    for dataset in datasets:
        data = _load(dataset, config)
        tok, tables = token_tables(dataset, config.max_len, seed=config.seed, piece_dropout=config.piece_dropout,
                                   piece_variants=config.piece_variants)
        for loss in loss_names:
            model = dual_encoder.model_from_config(config, len(tok), loss)
            params = dual_encoder.train_dual_encoder(
                model, loss, data["train_images"], data["train_labels"], tables["train_dropout"], config,
                workdir / f"{dataset}_{loss}", mesh,
            )
            for k, v in dual_encoder.evaluate(model, params, data, tables, config).items():
                result[f"{dataset}_test_{k}_{loss}"] = v
            result[f"{dataset}_learned_scale_{loss}"] = float(np.exp(params["log_scale"]))
            if example is None:  # the similarity picture shows the first model
                example = dual_encoder.similarity_example(
                    model, params, data["test_images"], data["test_labels"], tables["heldout"]
                ) | {"dataset": dataset, "loss": loss}
    report.write(config, result, datasets, loss_names, example, workdir)
    return result
