"""Experiment configs are ``get_config(arg)`` functions returning an ``ml_collections.ConfigDict``.

``arg`` is a comma-separated list of switches (``"runlocal,bpe"``) read by ``parse_arg``; the CLI
applies ``--config.key=value`` overrides with ``ml_collections.config_flags``.
"""

from __future__ import annotations

from collections.abc import Iterable


def parse_arg(arg: str | None, allowed: Iterable[str], experiment: str) -> frozenset[str]:
    """The switches of ``get_config(arg)``: ``"runlocal,bpe" -> {"runlocal", "bpe"}``.

    Every experiment reads its config argument through this one parser, so a misspelt switch is
    always the same clear error naming the experiment's switches.
    """
    allowed = frozenset(allowed)
    args = frozenset(a.strip() for a in (arg or "").split(",") if a.strip())
    unknown = args - allowed
    if unknown:
        raise ValueError(
            f"unknown {experiment} config args {sorted(unknown)}; choose from {sorted(allowed)}"
        )
    return args


# One-line meanings of the config keys that several experiments share, by the key's last name.
# ``embeddings-jax <experiment> --help`` shows them beside each default; a key's own comment in its
# experiment's ``get_config`` (``c.key = value  # meaning``) takes precedence.
KEY_MEANINGS = {
    "seed": "PRNG seed of parameters, data order and sampling",
    "dataset": "dataset name in the data registry",
    "epochs": "passes over the training data",
    "num_epochs": "passes over the training data",
    "steps": "optimiser steps",
    "batch_size": "training examples per step",
    "eval_batch_size": "examples per evaluation batch",
    "encode_batch_size": "sentences per encode batch",
    "learning_rate": "peak learning rate",
    "weight_decay": "AdamW weight decay",
    "warmup_steps": "linear learning-rate warm-up steps",
    "warmup_fraction": "fraction of the steps spent warming the learning rate up",
    "clip_norm": "global gradient-norm clipping threshold",
    "dropout": "dropout rate during training",
    "label_smoothing": "label-smoothing mass spread over the vocabulary",
    "log_every": "steps between logged metrics",
    "checkpoint_every": "steps between Orbax checkpoints (the run resumes from the latest)",
    "write_results": "write the committed results page (experiments/results) besides workdir",
    "enabled": "run this part of the experiment",
    "num_devices": "devices to shard over (0: every local device)",
    "temperature": "softmax temperature of the contrastive loss",
    "embed_dim": "embedding width",
    "hidden_dim": "hidden-state width",
    "dim": "embedding width",
    "dimensions": "embedding width",
    "vector_size": "embedding width",
    "window": "maximum skip-gram context window (each side)",
    "min_count": "words rarer than this are dropped from the vocabulary",
    "sample": "frequent-word down-sampling threshold (0: off)",
    "negative": "negative samples per positive pair",
    "ns_exponent": "exponent of the unigram noise distribution",
    "cbow_mean": "CBOW averages (1) or sums (0) the context vectors",
    "alpha": "initial learning rate, decayed linearly to min_alpha",
    "min_alpha": "final learning rate",
    "walk_length": "nodes per random walk",
    "num_walks": "random walks started from every node",
    "p": "node2vec return parameter (high: fewer steps back)",
    "q": "node2vec in-out parameter (low: outward, DFS-like walks)",
    "folds": "cross-validation folds",
    "holdout": "fraction of edges held out for link prediction",
    "heads": "attention heads",
    "depth": "transformer layers",
    "num_layers": "stacked recurrent layers",
    "max_len": "maximum tokens per text (longer ones are truncated)",
    "hidden": "hidden-layer widths",
    "latents": "latent dimensions",
    "sg": "1: skip-gram, 0: CBOW",
    "src": "source language",
    "tgt": "target language",
    "sizes": "nodes of each planted-partition graph",
    "blocks": "planted communities per graph",
    "mean_degree": "average node degree",
    "mixing": "fraction of each node's edges leaving its community",
}
