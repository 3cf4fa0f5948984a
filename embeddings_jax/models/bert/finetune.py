"""Contrastive fine-tuning of a `SentenceEncoder` on groups of paraphrases, and the retrieval that
measures it.

The encoder, shared by both towers, is trained on pairs of two different texts of one group (two
captions of one image), one pair per group in a batch so an in-batch negative never shares the
group, with the symmetric in-batch softmax loss on cosine similarities
(`ops.losses.in_batch_softmax_loss`, as sentence-transformers' MultipleNegativesRankingLoss) and
AdamW with linear warm-up and decay. The pieces plug into `embeddings_jax.train.train`::

    state = train_state(encoder.params, optimizer(config), config.seed, mesh)
    batch_fn = pair_batch_fn(tokenizer.encode_batch(texts), groups, 32, seq_len=32, seed=0)
    state = train(state, loss_fn(encoder.config, "mean", 0.05), batch_fn, mesh=mesh, ...)

``retrieval_metrics`` scores an encoder: every text queries all the others (exact cosine search)
and the relevant results are the other texts of its group.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh

from embeddings_jax.data.captions import pair_sampler
from embeddings_jax.eval.retrieval import self_retrieval_metrics
from embeddings_jax.models.bert.encoder import BertConfig
from embeddings_jax.models.bert.sentence_encoder import SentenceEncoder, make_batch, pooled_forward
from embeddings_jax.ops.losses import in_batch_softmax_loss, l2_normalize
from embeddings_jax.train import TrainState, replicated


def pair_batch_fn(encodings: Sequence[Any], groups: np.ndarray, batch_size: int, seq_len: int,
                  seed: int):
    """``batch_fn(step) -> {"a": batch, "b": batch}`` (`make_batch` batches of ``[batch_size,
    seq_len]``) of two texts of ``batch_size`` distinct groups (`data.captions.pair_sampler`)."""
    pairs = pair_sampler(groups, batch_size, seed)

    def batch_fn(step: int):
        p = pairs(step)
        return {side: make_batch([encodings[i] for i in p[:, j]], seq_len)
                for j, side in enumerate(("a", "b"))}

    return batch_fn


def loss_fn(model_config: BertConfig, pooling: str, temperature: float):
    """``loss_fn(params, batch, rng) -> (loss, {"positive_cosine"})``: symmetric in-batch softmax
    on the L2-normalised ``pooling`` vectors of the two sides, dropout on."""

    def loss(params, batch, rng):
        ka, kb = jax.random.split(rng)
        embed = lambda b, key: l2_normalize(pooled_forward(
            params, b, config=model_config, poolings=(pooling,), deterministic=False,
            rngs={"dropout": key})[pooling])
        a, b = embed(batch["a"], ka), embed(batch["b"], kb)
        value = 0.5 * (in_batch_softmax_loss(a, b, temperature=temperature)
                       + in_batch_softmax_loss(b, a, temperature=temperature))
        return value, {"positive_cosine": jnp.mean(jnp.sum(a * b, axis=-1))}

    return loss


def optimizer(config) -> optax.GradientTransformation:
    """AdamW (``weight_decay``), linear warm-up over ``warmup_fraction`` of ``steps`` then linear
    decay to zero, peak ``learning_rate``."""
    warmup = max(1, int(config.warmup_fraction * config.steps))
    schedule = optax.join_schedules(
        [optax.linear_schedule(0.0, config.learning_rate, warmup),
         optax.linear_schedule(config.learning_rate, 0.0, max(1, config.steps - warmup))],
        [warmup],
    )
    return optax.adamw(schedule, weight_decay=config.weight_decay)


def train_state(params, tx: optax.GradientTransformation, seed: int, mesh: Mesh) -> TrainState:
    """A replicated `TrainState` that starts from pretrained ``params``; dropout keys come from
    ``PRNGKey(seed)``."""
    params = jax.device_put(jax.device_get(params), replicated(mesh))
    return TrainState(
        step=jax.device_put(jnp.zeros((), jnp.int32), replicated(mesh)),
        params=params,
        opt_state=jax.jit(tx.init, out_shardings=replicated(mesh))(params),
        rng=jax.device_put(jax.random.PRNGKey(seed), replicated(mesh)),
        tx=tx,
    )


def retrieval_metrics(encoder: SentenceEncoder, texts: Sequence[str], relevant: list[np.ndarray],
                      poolings: Sequence[str], batch_size: int, ks: Sequence[int] = (1, 5, 10)
                      ) -> dict[str, dict[str, float]]:
    """``{pooling: {"recall@k": ..., "ndcg@k": ...}}``: each text queries all the others;
    ``relevant[i]`` are the ids of the texts that count as hits for text ``i``."""
    vectors = encoder.encode_poolings(texts, poolings, batch_size=batch_size, normalize=True)
    return {p: self_retrieval_metrics(x, relevant, ks) for p, x in vectors.items()}
