"""GRU encoder-decoder (context-concat or Bahdanau attention): BLEU of greedy vs beam search.

Config args (comma-separated): ``runlocal`` (seconds, CPU), ``cpu`` (the reduced CPU run of
the results table), ``medium`` (the CPU-trainable run aimed at the BLEU target: about an hour
of a 2-core CPU with ``bpe``), ``fra-eng`` (Tatoeba eng->fra; default Multi30k en->de), ``concat`` (the d2l
context-concat decoder instead of attention), ``bpe`` (subword tokens instead of words).
Without ``runlocal``/``cpu`` it is the accelerator-scale configuration (not run in this repo:
see ``experiments/results/seq2seq.md``).

BLEU is corpus BLEU on the detokenised validation translations against the raw references
(``eval.bleu.corpus_bleu``, equal to ``sacrebleu.corpus_bleu(hyps, [refs]).score``); cased, except
for runs whose tokeniser lower-cases (fra-eng, as in d2l), which are scored case-insensitively.
Every run adds its rows to ``experiments/results/seq2seq.{md,json}`` (when ``write_results``).
"""

from __future__ import annotations

import functools
import json
import pathlib
import time

import jax
import ml_collections
import numpy as np

from embeddings_jax.config import parse_arg
from embeddings_jax.data import translation
from embeddings_jax.models import seq2seq as s2s
from embeddings_jax.train import LoopConfig, create_train_state, make_mesh, train
from experiments.common import command_line
from experiments.reports import seq2seq as report

ARGS = {"runlocal", "cpu", "medium", "fra-eng", "concat", "bpe"}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    args = parse_arg(arg, ARGS, "seq2seq")
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.dataset = "fra-eng" if "fra-eng" in args else "multi30k"
    c.src, c.tgt = ("en", "fr") if c.dataset == "fra-eng" else ("en", "de")
    c.fra_eng_val_fraction = 0.02  # sentence pairs of fra-eng held out for validation
    c.tokenizer = "bpe" if "bpe" in args else "word"  # word or bpe tokens
    c.vocab_size = 8000  # BPE vocabulary size (bpe only)
    c.min_freq = 2  # word: keep tokens seen this often; bpe: merge frequency
    c.lowercase = c.dataset == "fra-eng"  # d2l lower-cases fra-eng; Multi30k BLEU is cased
    c.max_len = 48  # tokens incl. <eos>; longer training pairs are dropped
    c.boundaries = (8, 12, 16, 24, 32, 48)  # length buckets of the batches (tokens)
    c.train_subset = 0  # 0: every training pair
    # Model.
    c.attention = "concat" not in args  # Bahdanau attention (False: context-concat)
    c.embed_dim = 256  # token embedding width
    c.hidden_dim = 512
    c.attention_dim = 512  # width of the additive attention
    c.num_layers = 2
    c.bidirectional = True  # bidirectional encoder GRU
    c.dropout = 0.3
    c.readout_dim = 256  # Bahdanau deep output; 0: logits from the top GRU state
    c.tie_embeddings = True  # output matrix = target embeddings (needs readout_dim == embed_dim)
    c.label_smoothing = 0.1
    # Optimisation: Adam, global-norm clipping, linear warm-up then cosine decay.
    c.batch_size = 128
    c.num_steps = 9000  # optimiser steps (~40 epochs of Multi30k)
    c.learning_rate = 1e-3
    c.warmup_steps = 500
    c.clip_norm = 1.0
    c.num_devices = 0  # 0: every local device
    c.log_every = 50
    c.checkpoint_every = 500
    # Evaluation.
    c.beams = (0, 1, 4, 8)  # beam widths evaluated (0: greedy search)
    c.alpha = 0.6  # beam-search length penalty exponent
    c.eval_sentences = 0  # 0: the whole validation set
    c.eval_batch_size = 128
    c.reference_check_sentences = 16  # jitted beam 4 vs the Python-loop reference
    c.write_results = True
    c.run_name = ""  # appended to the run's tag (rows of the results table are keyed by tag)
    if "medium" in args:  # one bi-GRU layer, 20 epochs (9,000 steps of 64): ~1 h of a laptop CPU
        c.update(num_layers=1, attention_dim=256, batch_size=64, learning_rate=2e-3)
        c.update(boundaries=(12, 16, 24, 48), checkpoint_every=1000)
    if "cpu" in args:  # the reduced run of the results table: ~10 min of a shared 2-core CPU
        c.update(embed_dim=128, hidden_dim=256, attention_dim=128, num_layers=1, dropout=0.2)
        c.update(readout_dim=0, tie_embeddings=False, label_smoothing=0.0, batch_size=64)
        c.update(num_steps=600, learning_rate=3e-3, warmup_steps=50, max_len=32)
        c.boundaries = (10, 16, 32)  # few shapes: each one is a compile
        c.eval_sentences = 1014 if c.dataset == "multi30k" else 1000
        c.update(checkpoint_every=100, log_every=25)
        if c.dataset == "fra-eng":
            c.update(min_freq=3, max_len=16, boundaries=(8, 16), num_steps=500)
    if "runlocal" in args:
        c.update(train_subset=512, embed_dim=16, hidden_dim=32, attention_dim=16, readout_dim=16)
        c.update(num_layers=1, batch_size=32, num_steps=30, warmup_steps=5, learning_rate=3e-3)
        c.update(max_len=16, boundaries=(16,), min_freq=1, vocab_size=300, beams=(0, 4))
        c.update(eval_sentences=32, eval_batch_size=32, reference_check_sentences=2)
        c.update(log_every=10, checkpoint_every=15, write_results=False)
    return c


def run_tag(config) -> str:
    return (
        f"{config.dataset.replace('-', '_')}_{config.src}_{config.tgt}"
        + ("" if config.attention else "_concat")
        + ("_bpe" if config.tokenizer == "bpe" else "")
        + (f"_{config.run_name}" if config.get("run_name") else "")
    )


def run(config, workdir: str) -> dict:
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    t_start, tag = time.perf_counter(), run_tag(config)
    # Data: raw sentence pairs, tokenisers trained on the training side, bucketed batches.
    train_src, train_tgt, val_src, val_ref = translation.load_pairs(
        config.dataset, config.src, config.tgt, config.fra_eng_val_fraction
    )
    if config.train_subset:
        train_src, train_tgt = train_src[: config.train_subset], train_tgt[: config.train_subset]
    if config.eval_sentences:
        val_src, val_ref = val_src[: config.eval_sentences], val_ref[: config.eval_sentences]
    kw = {"vocab_size": config.vocab_size, "min_freq": config.min_freq, "lowercase": config.lowercase}
    src_tok = translation.make_tokenizer(config.tokenizer, train_src, **kw)
    tgt_tok = translation.make_tokenizer(config.tokenizer, train_tgt, **kw)
    src, tgt, stats = translation.encode_pairs(
        train_src, train_tgt, src_tok, tgt_tok, config.max_len, on_long="drop"
    )
    batch_fn, steps_per_epoch = translation.bucket_batch_fn(
        src, tgt, config.batch_size, config.boundaries, config.seed
    )
    # Model and training.
    model = s2s.from_config(config, src_tok.vocab_size, tgt_tok.vocab_size)
    mesh = make_mesh(config.num_devices or None)
    init = functools.partial(s2s.init_params, model)
    state = create_train_state(init, s2s.optimizer(config), config.seed, mesh)
    loop = LoopConfig(num_steps=config.num_steps, log_every=config.log_every,
                      checkpoint_every=config.checkpoint_every, desc=f"seq2seq {tag}")
    loss_fn = s2s.make_loss_fn(model, config.label_smoothing)
    t_train = time.perf_counter()
    state = train(state, loss_fn, batch_fn, mesh=mesh, workdir=workdir, config=loop)
    train_seconds = time.perf_counter() - t_train
    params = jax.device_get(state.params)
    s2s.save_model(workdir, config, params, src_tok, tgt_tok)
    # Evaluation: BLEU of every decoder; the jitted beam search against the Python loop.
    metrics, hyps = s2s.evaluate_bleu(
        model, params, src_tok, tgt_tok, val_src, val_ref, beams=config.beams, alpha=config.alpha,
        max_len=config.max_len, batch_size=config.eval_batch_size, lowercase=config.lowercase,
    )
    metrics["beam4_equals_python_loop_fraction"] = s2s.beam_search_agreement(
        model, params, src_tok, val_src[: config.reference_check_sentences], beam_size=4,
        alpha=config.alpha, max_len=config.max_len,
    )
    examples = [{"source": s, "reference": r, **{n: h[i] for n, h in hyps.items()}}
                for i, (s, r) in enumerate(zip(val_src[:6], val_ref[:6]))]
    run_info = {
        "tag": tag, "command": command_line(), "config": json.loads(config.to_json_best_effort()),
        "train_pairs": stats, "steps": config.num_steps,
        "epochs": round(config.num_steps / steps_per_epoch, 2),
        "train_seconds": round(train_seconds, 1),
        "total_seconds": round(time.perf_counter() - t_start, 1),
        "src_vocab": src_tok.vocab_size, "tgt_vocab": tgt_tok.vocab_size,
        "val_sentences": len(val_src), "metrics": metrics, "examples": examples,
    }
    attention = None
    if config.attention:  # the model re-reading its greedy translation of a medium-length source
        i = int(np.argmax([min(len(s.split()), 12) for s in val_src[:20]]))
        attention = s2s.attention_map(model, params, src_tok, tgt_tok, val_src[i], hyps["greedy"][i])
    result = {f"{tag}_{k}": v for k, v in metrics.items()}
    report.write(run_info, result, attention, workdir, to_results=config.write_results)
    return result
