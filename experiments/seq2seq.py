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

import json
import pathlib
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from embeddings_jax import decoding
from embeddings_jax.data import parallel
from embeddings_jax.eval.bleu import corpus_bleu
from embeddings_jax.models import seq2seq as s2s
from embeddings_jax.train import LoopConfig, create_train_state, make_mesh, train
from experiments.common import RESULTS_DIR, command_line, git_sha, hardware, write_results

ARGS = {"runlocal", "cpu", "medium", "fra-eng", "concat", "bpe"}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    args = set(filter(None, (arg or "").split(",")))
    if args - ARGS:
        raise ValueError(f"unknown seq2seq config args {sorted(args - ARGS)}; use {sorted(ARGS)}")
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.dataset = "fra-eng" if "fra-eng" in args else "multi30k"
    c.src, c.tgt = ("en", "fr") if c.dataset == "fra-eng" else ("en", "de")
    c.fra_eng_val_fraction = 0.02
    c.tokenizer = "bpe" if "bpe" in args else "word"
    c.vocab_size = 8000  # bpe only
    c.min_freq = 2  # word: keep tokens seen this often; bpe: merge frequency
    c.lowercase = c.dataset == "fra-eng"  # d2l lower-cases fra-eng; Multi30k BLEU is cased
    c.max_len = 48  # tokens incl. <eos>; longer training pairs are dropped
    c.boundaries = (8, 12, 16, 24, 32, 48)
    c.train_subset = 0  # 0: every training pair
    # Model.
    c.attention = "concat" not in args
    c.embed_dim = 256
    c.hidden_dim = 512
    c.attention_dim = 512
    c.num_layers = 2
    c.bidirectional = True
    c.dropout = 0.3
    c.readout_dim = 256  # Bahdanau deep output; 0: logits from the top GRU state
    c.tie_embeddings = True  # output matrix = target embeddings (needs readout_dim == embed_dim)
    c.label_smoothing = 0.1
    # Optimisation: Adam, global-norm clipping, linear warm-up then cosine decay.
    c.batch_size = 128
    c.num_steps = 9000  # ~40 epochs of Multi30k
    c.learning_rate = 1e-3
    c.warmup_steps = 500
    c.clip_norm = 1.0
    c.num_devices = 0  # 0: every local device
    c.log_every = 50
    c.checkpoint_every = 500
    # Evaluation.
    c.beams = (0, 1, 4, 8)  # 0 = greedy
    c.alpha = 0.6
    c.eval_sentences = 0  # 0: the whole validation set
    c.eval_batch_size = 128
    c.reference_check_sentences = 16  # jitted beam 4 vs the Python-loop reference
    c.write_results = True
    c.run_name = ""  # appended to the run's tag (rows of the results table are keyed by tag)
    if "medium" in args:  # one bi-GRU layer, 20 epochs: trainable on a laptop CPU in ~1 h
        c.num_layers = 1
        c.attention_dim = 256
        c.batch_size = 64  # the default 9,000 steps are then ~20 epochs of Multi30k
        c.learning_rate = 2e-3
        c.boundaries = (12, 16, 24, 48)
        c.checkpoint_every = 1000
    if "cpu" in args:  # the reduced run of the results table: ~10 min of a shared 2-core CPU
        c.embed_dim, c.hidden_dim, c.attention_dim = 128, 256, 128
        c.num_layers = 1
        c.dropout = 0.2
        c.readout_dim, c.tie_embeddings, c.label_smoothing = 0, False, 0.0
        c.batch_size = 64
        c.num_steps = 600
        c.learning_rate = 3e-3
        c.warmup_steps = 50
        c.max_len = 32
        c.boundaries = (10, 16, 32)  # few shapes: each one is a compile
        c.eval_sentences = 1014 if c.dataset == "multi30k" else 1000
        c.checkpoint_every = 100
        c.log_every = 25
        if c.dataset == "fra-eng":
            c.min_freq = 3
            c.max_len = 16
            c.boundaries = (8, 16)
            c.num_steps = 500
    if "runlocal" in args:
        c.train_subset = 512
        c.embed_dim, c.hidden_dim, c.attention_dim = 16, 32, 16
        c.readout_dim = 16
        c.num_layers = 1
        c.batch_size = 32
        c.num_steps = 30
        c.warmup_steps = 5
        c.learning_rate = 3e-3
        c.max_len = 16
        c.boundaries = (16,)
        c.min_freq = 1
        c.vocab_size = 300
        c.beams = (0, 4)
        c.eval_sentences = 32
        c.eval_batch_size = 32
        c.reference_check_sentences = 2
        c.log_every = 10
        c.checkpoint_every = 15
        c.write_results = False
    return c


def run_tag(config) -> str:
    return (
        f"{config.dataset.replace('-', '_')}_{config.src}_{config.tgt}"
        + ("" if config.attention else "_concat")
        + ("_bpe" if config.tokenizer == "bpe" else "")
        + (f"_{config.run_name}" if config.get("run_name") else "")
    )


def load_data(config):
    """Raw (train_src, train_tgt, val_src, val_tgt) sentences."""
    if config.dataset == "multi30k":
        return (
            *parallel.load_multi30k("train", config.src, config.tgt),
            *parallel.load_multi30k("val", config.src, config.tgt),
        )
    if config.dataset == "fra-eng":
        if (config.src, config.tgt) not in (("en", "fr"), ("fr", "en")):
            raise ValueError(f"fra-eng pairs are en/fr, got {config.src}->{config.tgt}")
        tr = parallel.load_fra_eng("train", config.fra_eng_val_fraction)
        va = parallel.load_fra_eng("val", config.fra_eng_val_fraction)
        flip = config.src == "fr"
        return (tr[1], tr[0], va[1], va[0]) if flip else (*tr, *va)
    raise ValueError(f"dataset must be 'multi30k' or 'fra-eng', got {config.dataset!r}")


def build_model(config, src_vocab: int, tgt_vocab: int) -> s2s.Seq2Seq:
    return s2s.Seq2Seq(
        src_vocab=src_vocab,
        tgt_vocab=tgt_vocab,
        embed_dim=config.embed_dim,
        hidden_dim=config.hidden_dim,
        num_layers=config.num_layers,
        bidirectional=config.bidirectional,
        attention=config.attention,
        attention_dim=config.attention_dim,
        dropout=config.dropout,
        readout_dim=config.get("readout_dim", 0),
        tie_embeddings=config.get("tie_embeddings", False),
    )


def make_batch_fn(src, tgt, config):
    """Deterministic ``batch_fn(step)``: epoch e is a seeded shuffle of length buckets."""
    plans: dict[int, list] = {}

    def plan(epoch):
        if epoch not in plans:
            plans.clear()
            plans[epoch] = parallel.bucket_plan(
                src, tgt, config.batch_size, config.boundaries, seed=config.seed + epoch
            )
        return plans[epoch]

    steps_per_epoch = len(plan(0))

    def batch_fn(step):
        length, idx = plan(step // steps_per_epoch)[step % steps_per_epoch]
        return parallel.make_batch(
            [src[i] for i in idx], [tgt[i] for i in idx], length, length, config.batch_size
        )

    return batch_fn, steps_per_epoch


def optimizer(config):
    schedule = optax.warmup_cosine_decay_schedule(
        0.0,
        config.learning_rate,
        config.warmup_steps,
        max(config.num_steps, config.warmup_steps + 1),
        0.05 * config.learning_rate,
    )
    return optax.chain(optax.clip_by_global_norm(config.clip_norm), optax.adam(schedule))


def save_model(workdir, config, params) -> None:
    """``<workdir>/params.msgpack`` + ``model.json`` (+ ``tokenizers.json``): enough to translate."""
    from flax import serialization

    workdir = pathlib.Path(workdir)
    (workdir / "params.msgpack").write_bytes(serialization.to_bytes(params))
    (workdir / "model.json").write_text(config.to_json_best_effort(indent=2))


def load_model(workdir):
    """(model, params, src_tok, tgt_tok, config) saved by ``run`` in ``workdir``."""
    from flax import serialization

    workdir = pathlib.Path(workdir)
    for f in ("params.msgpack", "model.json", "tokenizers.json"):
        if not (workdir / f).exists():
            raise FileNotFoundError(
                f"{workdir / f} is missing; run the seq2seq experiment with --workdir {workdir}"
            )
    config = ml_collections.ConfigDict(json.loads((workdir / "model.json").read_text()))
    toks = json.loads((workdir / "tokenizers.json").read_text())
    src_tok, tgt_tok = (
        parallel.tokenizer_from_json(toks["src"]),
        parallel.tokenizer_from_json(toks["tgt"]),
    )
    model = build_model(config, src_tok.vocab_size, tgt_tok.vocab_size)
    dummy = (jnp.zeros((1, 4), jnp.int32), jnp.ones((1, 4), bool), jnp.zeros((1, 3), jnp.int32))
    target = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), *dummy)["params"])
    params = serialization.from_bytes(target, (workdir / "params.msgpack").read_bytes())
    return model, params, src_tok, tgt_tok, config


def evaluate(model, params, src_tok, tgt_tok, val_src, val_ref, config) -> tuple[dict, dict]:
    """BLEU and timing of every decoder in ``config.beams``; returns (metrics, hypotheses)."""
    try:
        import sacrebleu
    except ImportError:
        sacrebleu = None
    metrics, hyps = {}, {}
    for k in config.beams:
        name = "greedy" if k == 0 else f"beam{k}"
        t0 = time.perf_counter()
        out = s2s.translate(
            model,
            params,
            val_src,
            src_tok,
            tgt_tok,
            beam_size=k,
            alpha=config.alpha,
            max_src_len=config.max_len,
            max_len=config.max_len,
            batch_size=config.eval_batch_size,
        )
        metrics[f"val_bleu_{name}"] = corpus_bleu(out, val_ref, lowercase=config.lowercase)
        if sacrebleu is not None:  # the peer, when installed: must print the same number
            score = sacrebleu.corpus_bleu(out, [val_ref], lowercase=config.lowercase).score
            metrics[f"val_sacrebleu_{name}"] = score
        metrics[f"val_decode_seconds_{name}"] = time.perf_counter() - t0
        hyps[name] = out
    return metrics, hyps


def reference_check(model, params, src_tok, val_src, config, beam_size=4) -> float:
    """Fraction of sentences where the jitted beam search equals the Python-loop reference."""
    ids = parallel.encode_sources(
        val_src[: config.reference_check_sentences], src_tok, config.max_len
    )
    src, mask = parallel.pad(ids, max(map(len, ids)))
    cache = s2s.encode(model, params, src, mask)
    kw = {"beam_size": beam_size, "alpha": config.alpha, "max_len": config.max_len}
    ours = s2s.beam_search_ids(model, params, cache, **kw)
    ref = decoding.python_beam_search(
        cache, s2s.jitted_step_fn(model, params), **kw, eos_id=parallel.EOS, bos_id=parallel.BOS
    )
    return float(np.mean(np.all(np.asarray(ours[0][:, 0]) == ref[0][:, 0], axis=-1)))


def attention_heatmap(model, params, src_tok, tgt_tok, sentence, translation, path):
    """Attention weights of the model re-reading its own translation (teacher forcing)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = src_tok.encode(sentence) + [parallel.EOS]
    t = tgt_tok.encode(translation) + [parallel.EOS]
    src, mask = parallel.pad([s], len(s))
    tgt_in = np.array([[parallel.BOS] + t[:-1]], np.int32)
    w = s2s.attention_weights(model, params, src, mask, tgt_in)
    labels = lambda tok, ids: [tok.decode([i]) or "<eos>" for i in ids]
    fig, ax = plt.subplots(figsize=(0.45 * len(s) + 2, 0.4 * len(t) + 1.5))
    ax.imshow(np.asarray(w[0]), cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(s)), labels(src_tok, s[:-1]) + ["<eos>"], rotation=60, ha="right")
    ax.set_yticks(range(len(t)), labels(tgt_tok, t[:-1]) + ["<eos>"])
    ax.set_xlabel("source")
    ax.set_ylabel("translation (greedy)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(config, workdir: str) -> dict:
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    train_src, train_tgt, val_src, val_ref = load_data(config)
    if config.train_subset:
        train_src, train_tgt = train_src[: config.train_subset], train_tgt[: config.train_subset]
    if config.eval_sentences:
        val_src, val_ref = val_src[: config.eval_sentences], val_ref[: config.eval_sentences]
    kw = {
        "vocab_size": config.vocab_size,
        "min_freq": config.min_freq,
        "lowercase": config.lowercase,
    }
    src_tok = parallel.make_tokenizer(config.tokenizer, train_src, **kw)
    tgt_tok = parallel.make_tokenizer(config.tokenizer, train_tgt, **kw)
    (workdir / "tokenizers.json").write_text(
        json.dumps({"src": src_tok.to_json(), "tgt": tgt_tok.to_json()})
    )
    src, tgt, stats = parallel.encode_pairs(
        train_src, train_tgt, src_tok, tgt_tok, config.max_len, on_long="drop"
    )

    model = build_model(config, src_tok.vocab_size, tgt_tok.vocab_size)
    mesh = make_mesh(config.num_devices or None)
    dummy = (jnp.zeros((1, 4), jnp.int32), jnp.ones((1, 4), bool), jnp.zeros((1, 3), jnp.int32))
    state = create_train_state(
        lambda key: model.init(key, *dummy)["params"], optimizer(config), config.seed, mesh
    )
    batch_fn, steps_per_epoch = make_batch_fn(src, tgt, config)
    loop = LoopConfig(
        num_steps=config.num_steps,
        log_every=config.log_every,
        checkpoint_every=config.checkpoint_every,
        desc=f"seq2seq {run_tag(config)}",
    )
    t_train = time.perf_counter()
    state = train(state, s2s.make_loss_fn(model, config.label_smoothing), batch_fn, mesh=mesh, workdir=workdir, config=loop)
    train_seconds = time.perf_counter() - t_train
    params = jax.device_get(state.params)
    save_model(workdir, config, params)

    metrics, hyps = evaluate(model, params, src_tok, tgt_tok, val_src, val_ref, config)
    metrics["beam4_equals_python_loop_fraction"] = reference_check(
        model, params, src_tok, val_src, config
    )
    tag = run_tag(config)
    result = {f"{tag}_{k}": v for k, v in metrics.items()}
    examples = [
        {"source": s, "reference": r, **{n: h[i] for n, h in hyps.items()}}
        for i, (s, r) in enumerate(zip(val_src[:6], val_ref[:6]))
    ]
    run_info = {
        "tag": tag,
        "command": command_line(),
        "config": json.loads(config.to_json_best_effort()),
        "train_pairs": stats,
        "steps": config.num_steps,
        "epochs": round(config.num_steps / steps_per_epoch, 2),
        "train_seconds": round(train_seconds, 1),
        "total_seconds": round(time.perf_counter() - t_start, 1),
        "src_vocab": src_tok.vocab_size,
        "tgt_vocab": tgt_tok.vocab_size,
        "val_sentences": len(val_src),
        "metrics": metrics,
        "examples": examples,
    }
    (workdir / "result.json").write_text(json.dumps(run_info, indent=2, ensure_ascii=False) + "\n")
    figure = None
    if config.attention:
        figure = workdir / f"seq2seq_attention_{tag}.png"
        i = int(np.argmax([min(len(s.split()), 12) for s in val_src[:20]]))
        attention_heatmap(model, params, src_tok, tgt_tok, val_src[i], hyps["greedy"][i], figure)
    if config.write_results:
        _merge_results(run_info, result, figure)
    return result


def _merge_results(run_info: dict, result: dict, figure) -> None:
    """Adds this run to experiments/results/seq2seq.{md,json} (other runs' rows are kept)."""
    path = RESULTS_DIR / "seq2seq.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    runs = {
        **old.get("runs", {}),
        run_info["tag"]: {k: v for k, v in run_info.items() if k != "config"}
        | {"config": run_info["config"], "git_sha": git_sha(), "hardware": hardware()},
    }
    flat = {
        k: v for k, v in old.items() if k not in ("runs", "command", "hardware", "git_sha")
    } | result
    if figure is not None:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        (RESULTS_DIR / figure.name).write_bytes(figure.read_bytes())
    write_results("seq2seq", _markdown(runs), {**flat, "runs": runs}, [RESULTS_DIR])


NOTES = """
## What these runs are, and what is not measured

- `multi30k_en_de_bpe_medium` is the run behind the 35-BLEU target, on a 2-core CPU (no
  accelerator): `--config medium,bpe`, a 1-layer bi-GRU encoder (hidden 512), embeddings 256,
  Bahdanau attention 256, deep-output readout tied to the target embeddings, dropout 0.3, label
  smoothing 0.1, BPE 8k per language, batch 64, 9,000 Adam steps (about 20 epochs, 2e-3 with
  warm-up + cosine decay, clipping 1.0), beam alpha 0.6. The last checkpoint is scored (no
  selection on the validation set, which is only used for these numbers).
- The other rows are **reduced CPU runs** (`--config cpu`: 1-layer bi-GRU encoder, hidden 256,
  embeddings 128, no readout, batch 64, 600 Adam steps = 1.3 epochs of Multi30k, or 500 steps =
  0.2 epoch of fra-eng; the `_1200steps` row doubles the Multi30k budget), made with code before
  the readout/label-smoothing options existed (git in the commands below). They show the
  pipeline end to end and the decoder comparison and are far from converged.
- "beam4 == Python loop" is the fraction of validation sentences (first 16) where the jitted
  beam search returns the same best sequence as the Python-loop reference on the trained model.
- BLEU here equals `sacrebleu.corpus_bleu(hyps, [refs])` (both are stored in the JSON,
  `val_bleu_*` and `val_sacrebleu_*`). Word-level outputs contain `<unk>` for rare words.
"""


def _markdown(runs: dict) -> str:
    lines = [
        "# seq2seq: GRU encoder-decoder, greedy vs beam search",
        "",
        "Corpus BLEU (sacrebleu-equal, 13a tokenisation) of detokenised translations on the",
        "validation sentences: cased for Multi30k; case-insensitive for fra-eng, whose d2l tokeniser",
        "lower-cases. Beam search uses the GNMT length penalty (alpha in the config).",
        "",
        "| run | decoder | steps (epochs) | train s | val sents | greedy | beam 1 | beam 4 | beam 8 | beam4 == Python loop |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for tag, r in sorted(runs.items()):
        m = r["metrics"]
        cell = lambda k, m=m: f"{m[k]:.2f}" if k in m else "-"
        dec = "attention" if r["config"]["attention"] else "concat"
        lines.append(
            f"| {tag} | {dec} | {r['steps']} ({r['epochs']}) | {r['train_seconds']:.0f} | {r['val_sentences']} | "
            f"{cell('val_bleu_greedy')} | {cell('val_bleu_beam1')} | {cell('val_bleu_beam4')} | {cell('val_bleu_beam8')} | "
            f"{m.get('beam4_equals_python_loop_fraction', float('nan')):.2f} |"
        )
    lines += [
        "",
        "Attention heat maps (the model re-reading its greedy translation of a validation",
        "sentence): `seq2seq_attention_<run>.png` beside this file.",
    ]
    lines += ["", NOTES.strip(), "", "## Commands", ""]
    lines += [
        f"- `{r['tag']}`: `{r['command']}` (git {r['git_sha']}; {r['hardware']})"
        for r in runs.values()
    ]
    lines += ["", "## Example translations", ""]
    for tag, r in sorted(runs.items()):
        lines += [f"### {tag}", ""]
        for e in r["examples"][:4]:
            lines += [f"- src: {e['source']}", f"  - ref: {e['reference']}"]
            lines += [f"  - {k}: {v}" for k, v in e.items() if k not in ("source", "reference")]
        lines.append("")
    return "\n".join(lines)
