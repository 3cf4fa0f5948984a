"""Report of the seq2seq experiment: the attention heat map of a run, and the rows it adds to
``experiments/results/seq2seq.{md,json}`` (other runs' rows are kept, keyed by run tag)."""

from __future__ import annotations

import json
import pathlib

import numpy as np

from embeddings_jax.train.atomic import atomic_write
from experiments.common import RESULTS_DIR, git_sha, hardware, publish, write_results
from experiments.reports.plots import new_figure, save_figure

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


def write(run_info: dict, result: dict, attention, workdir, *, to_results: bool) -> None:
    """Writes ``<workdir>/result.json`` (the run record) and, when ``attention`` (the triple of
    ``models.seq2seq.attention_map``), ``seq2seq_attention_<tag>.png``; with ``to_results`` merges
    the run into the results."""
    text = json.dumps(run_info, indent=2, ensure_ascii=False) + "\n"
    with atomic_write(pathlib.Path(workdir) / "result.json") as f:
        f.write(text)
    figure = None
    if attention is not None:
        figure = pathlib.Path(workdir) / f"seq2seq_attention_{run_info['tag']}.png"
        attention_heatmap(*attention, figure)
    if to_results:
        merge_results(run_info, result, figure)


def attention_heatmap(weights: np.ndarray, source: list[str], target: list[str], path) -> None:
    """Attention weights [T, S] as an image, source tokens across, translation tokens down."""

    fig, ax = new_figure(figsize=(0.45 * len(source) + 2, 0.4 * len(target) + 1.5))
    ax.imshow(weights, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(source)), source, rotation=60, ha="right")
    ax.set_yticks(range(len(target)), target)
    ax.set_xlabel("source")
    ax.set_ylabel("translation (greedy)")
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def merge_results(run_info: dict, result: dict, figure) -> None:
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
        publish(figure)
    write_results("seq2seq", markdown(runs), {**flat, "runs": runs}, [RESULTS_DIR])


def markdown(runs: dict) -> str:
    """The results page from the ``runs`` of ``seq2seq.json`` (tag -> run record)."""
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
