"""Report of the crosslingual experiment: precision@k per method (markdown, JSON, bar chart)."""

from __future__ import annotations

import pathlib
import re

import numpy as np

from experiments.common import RESULTS_DIR, publish, write_results
from experiments.reports.plots import new_figure, save_figure


def metric_key(config, row: str, metric: str) -> str:
    """``fra_eng_en_fr_test_procrustes_csls_precision_at_1``-style keys."""
    slug = re.sub(r"[^a-z0-9]+", "_", re.sub(r"\(.*\)", "", row.lower())).strip("_")
    split = "heldout" if config.test_dictionary else "test"
    return f"{config.corpus}_{config.pair.replace('-', '_')}_{split}_{slug}_{metric.replace('@', '_at_')}"


def write(config, rows: dict, best: str, examples: dict, stats: dict, workdir: pathlib.Path) -> dict:
    """Writes ``crosslingual_<pair>.{md,json}`` and the bar chart; returns the flat metrics."""
    metrics = {metric_key(config, r, m): v for r, vals in rows.items() for m, v in vals.items()
               if m.startswith("precision")}
    stem = f"crosslingual_{config.pair.replace('-', '_')}"
    figure = bar_chart(rows, workdir / f"{stem}.png", config)
    dirs = [workdir] + ([RESULTS_DIR] if config.write_results else [])
    if config.write_results:
        publish(figure)
    write_results(stem, markdown(config, rows, best, examples, stats, figure.name),
                  {"config": config.to_dict(), **stats, **metrics}, dirs)
    return metrics


def bar_chart(rows: dict, path: pathlib.Path, config) -> pathlib.Path:

    names = list(rows)
    ks = [k for k in rows[names[0]] if k.startswith("precision")]
    fig, ax = new_figure(figsize=(8, 4))
    width = 0.8 / len(ks)
    for i, k in enumerate(ks):
        ax.barh(np.arange(len(names)) + i * width, [100 * rows[n][k] for n in names], width, label=k)
    ax.set_yticks(np.arange(len(names)) + width * (len(ks) - 1) / 2, names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("precision (%)")
    ax.set_title(f"{config.pair} word translation, {config.corpus} word2vec vectors", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path, dpi=90)


def markdown(config, rows: dict, best: str, examples: dict, stats: dict, figure: str) -> str:
    ks = [k for k in rows[next(iter(rows))] if k.startswith("precision")]
    head = "| method | " + " | ".join(ks) + " | self-learning iterations |\n|---|" + "---:|" * (len(ks) + 1)
    body = "\n".join(f"| {n} | " + " | ".join(f"{100 * r[k]:.1f}" for k in ks) + f" | {r['iterations']} |"
                     for n, r in rows.items())
    first = rows[next(iter(rows))]
    ex = "\n".join(f"| {w} | " + ", ".join(f"{t} ({s:.2f})" for t, s in tr) + " |" for w, tr in examples.items())
    w2v = ", ".join(f"{k}={v}" for k, v in config.word2vec.items())
    test = (f"the dictionary file `{config.test_dictionary}`" if config.test_dictionary else
            f"the {config.test_fraction:.0%} of FreeDict {config.pair} source words held out (seed {config.seed})")
    return f"""# Cross-lingual word mapping: {config.pair}

Word2vec ({w2v}) on each side of `{config.corpus}`: {stats['source_vocab']} source and \
{stats['target_vocab']} target words. The map is fitted on {stats['train_pairs']} FreeDict pairs and \
scored on {test}: {first['words']} source words with a translation in the target vocabulary \
({100 * first['coverage']:.0f}% of the test words). precision@k = share of those words with a gold \
translation among their top k (MUSE's definition). CSLS uses k = {config.csls_k}; refinement is up to \
{config.refine_iterations} self-learning iterations over the {config.self_learning_vocab} most frequent \
words of each side; the unsupervised row uses no dictionary (VecMap's similarity-distribution \
initialisation over {config.init_vocab} words, stochastic induction from keep probability {config.keep_prob}).

{head}
{body}

Translations by the best row ({best}), top 3 with CSLS scores:

| source | target |
|---|---|
{ex}

![precision]({figure})
"""
