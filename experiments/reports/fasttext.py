"""Report of the fasttext experiment: one table per variant (markdown, JSON) and a bar chart of
word-pair Spearman over all pairs as the vocabulary shrinks."""

from __future__ import annotations

import math
import pathlib

import numpy as np

from experiments.common import RESULTS_DIR, publish, write_results
from experiments.reports.plots import new_figure, save_figure

NAMES = {"word2vec": "word2vec (ours)", "ours": "FastText (ours)", "fasttext": "fasttext package",
         "gensim": "gensim FastText"}  # fmt: skip


def metric_key(config, variant: str, min_count: int, impl: str, metric: str) -> str:
    """``ptb_brown_sg_min_count_50_ours_wordsim353_all_pairs_spearman``-style keys."""
    corpus = pathlib.Path(config.corpus).stem
    return f"{corpus}_{variant}_min_count_{min_count}_{impl}_{metric}"


def write(config, rows: dict, stats: dict, workdir: pathlib.Path) -> dict:
    """Writes ``fasttext.{md,json}`` and ``fasttext_oov.png``; returns the flat metrics."""
    metrics = {metric_key(config, v, m, i, k): x for (v, m, i), vals in rows.items() for k, x in vals.items()}
    for (v, m, i), vals in rows.items():
        if i == "ours":
            for peer in ("fasttext", "gensim", "word2vec"):
                if (v, m, peer) in rows:
                    other = rows[(v, m, peer)]
                    metrics[metric_key(config, v, m, i, f"words_per_second_speedup_vs_{peer}")] = (
                        vals["words_per_second"] / other["words_per_second"])
                    for k in ("analogy_acc", "wordsim353_all_pairs_spearman", "simlex999_all_pairs_spearman"):
                        if k in vals and k in other:
                            metrics[metric_key(config, v, m, i, f"{k}_delta_vs_{peer}")] = vals[k] - other[k]
    figure = bar_chart(config, rows, workdir / "fasttext_oov.png")
    dirs = [workdir] + ([RESULTS_DIR] if config.write_results else [])
    if config.write_results:
        publish(figure)
    write_results("fasttext", markdown(config, rows, stats, figure.name),
                  {"config": config.to_dict(), **stats, **metrics}, dirs)
    return metrics


def _pair_sets(rows: dict) -> list[str]:
    first = next(iter(rows.values()))
    return [k[: -len("_all_pairs_spearman")] for k in first if k.endswith("_all_pairs_spearman")]


def bar_chart(config, rows: dict, path: pathlib.Path) -> pathlib.Path:
    sets = _pair_sets(rows)
    cols = [(v, m) for v in config.variants for m in config.min_counts]
    fig, axes = new_figure(1, len(sets), figsize=(5 * len(sets), 3.6), squeeze=False)
    width = 0.8 / len(config.implementations)
    for ax, name in zip(axes[0], sets):
        for j, impl in enumerate(config.implementations):
            ys = [rows[(v, m, impl)][f"{name}_all_pairs_spearman"] for v, m in cols]
            ax.bar(np.arange(len(cols)) + j * width, ys, width, label=NAMES[impl])
        oov = [rows[(v, m, config.implementations[0])][f"{name}_oov_pairs_pct"] for v, m in cols]
        ax.set_xticks(np.arange(len(cols)) + width * (len(config.implementations) - 1) / 2,
                      [f"{v}, min_count {m}\n({o:.0f}% pairs OOV)" for (v, m), o in zip(cols, oov)], fontsize=7)
        ax.set_ylabel("Spearman, all pairs")
        ax.set_title(f"{name}: out-of-vocabulary words from n-grams (word2vec scores them 0)", fontsize=8)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path, dpi=90)


def _fmt(x, pct=False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    return f"{100 * x:.1f}%" if pct else f"{x:.3f}"


def markdown(config, rows: dict, stats: dict, figure: str) -> str:
    sets = _pair_sets(rows)
    head = ("| min_count | implementation | vocabulary | words/s | analogy | "
            + " | ".join(f"{s} in-vocab ρ | {s} all pairs ρ (OOV pairs)" for s in sets)
            + " |\n|---:|---|---:|---:|---:|" + "---:|---:|" * len(sets))  # fmt: skip
    tables = []
    for v in config.variants:
        body = []
        for m in config.min_counts:
            for impl in config.implementations:
                r = rows[(v, m, impl)]
                pairs = " | ".join(f"{_fmt(r[f'{s}_spearman'])} | {_fmt(r[f'{s}_all_pairs_spearman'])} "
                                   f"({r[f'{s}_oov_pairs_pct']:.0f}%)" for s in sets)
                body.append(f"| {m} | {NAMES[impl]} | {r['vocab_size']:,} | {r['words_per_second']:,.0f} | "
                            f"{_fmt(r['analogy_acc'], pct=True)} | {pairs} |")
        tables.append(f"### {'skip-gram' if v == 'sg' else 'CBOW'}\n\n{head}\n" + "\n".join(body))
    s = config.settings
    return f"""# fastText beside word2vec, the fasttext package and gensim

Corpus `{config.corpus}` ({stats['corpus_words']:,} words), one text file read by all. Settings shared by
all: vector_size {s.vector_size}, window {s.window}, negative {s.negative} (counts^0.5), sample {s.sample},
learning rate {s.alpha}, {s.epochs} epochs, n-grams of {s.min_n}..{s.max_n} characters in {s.bucket:,}
buckets; seed {config.seed}, one run each. Words/s: raw corpus words per second of training (the fasttext
package: its run less a 0-epoch run; ours: compilation excluded). "all pairs" scores every word pair,
out-of-vocabulary words by their n-gram vectors (word2vec: such pairs score 0); "OOV pairs" is the share
of pairs with a word outside the vocabulary. Raising min_count is the OOV study: the same test sets, with
many of their words never trained.

{(chr(10) * 2).join(tables)}

![all-pairs Spearman]({figure})
"""
