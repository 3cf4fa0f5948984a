"""Report of the doc2vec experiment: a table per task (mean and s.d. over seeds), the deltas and
speed-ups against gensim (JSON), and a bar chart of each task's main metric."""

from __future__ import annotations

import json
import pathlib

import numpy as np

from experiments.common import RESULTS_DIR, publish, write_results
from experiments.reports.plots import new_figure, save_figure

METRICS = {"brown": ("accuracy", "macro_f1"), "flickr8k": ("recall_at_1", "recall_at_5", "recall_at_10", "ndcg_at_10")}
MAIN = {"brown": "accuracy", "flickr8k": "recall_at_10"}
VARIANT_NAMES = {"dbow": "PV-DBOW", "dm": "PV-DM"}
BERT_POOLINGS = ("mean", "cls")  # zero-shot MiniLM rows taken from results/bert.json


def row_name(row: str) -> str:
    """``ours_dbow`` -> "PV-DBOW (ours)", ``ours_chunk_8192_dm`` -> "PV-DM (ours, chunk_size 8192)"."""
    impl, _, variant = row.rpartition("_")
    if variant in VARIANT_NAMES:
        if impl.startswith("ours_chunk_"):
            return f"{VARIANT_NAMES[variant]} (ours, chunk_size {impl.rsplit('_', 1)[1]})"
        return f"{VARIANT_NAMES[variant]} ({impl})"
    if row.startswith("bert_"):
        return f"MiniLM-L6 `{row[5:]}` pooling, zero-shot (bert.json)"
    return {"word2vec_mean": "mean of word2vec SG vectors (ours)",
            "fasttext_mean": "mean of fastText SG vectors (ours)"}.get(row, row)  # fmt: skip


def summarise(results: dict) -> dict:
    """``{(task, seed): {row: {metric: x}}}`` -> ``{task: {row: {metric: (mean, sd, n)}}}``."""
    out: dict = {}
    for (task, _), rows in results.items():
        for row, values in rows.items():
            for k, x in values.items():
                out.setdefault(task, {}).setdefault(row, {}).setdefault(k, []).append(float(x))
    return {t: {r: {k: (float(np.mean(v)), float(np.std(v)), len(v)) for k, v in m.items()} for r, m in rows.items()}
            for t, rows in out.items()}  # fmt: skip


def bert_rows(config) -> dict:
    """The zero-shot MiniLM rows of ``results/bert.json`` (same test split and protocol), when
    this run scores the whole split."""
    path = RESULTS_DIR / "bert.json"
    if "flickr8k" not in config.tasks or config.flickr_images or not path.exists():
        return {}
    record = json.loads(path.read_text())
    rows = {}
    for pooling in BERT_POOLINGS:
        keys = {m: f"flickr8k_test_zero_shot_{pooling}_{m}" for m in METRICS["flickr8k"]}
        if all(k in record for k in keys.values()):
            rows[f"bert_{pooling}"] = {m: (record[k], 0.0, 1) for m, k in keys.items()}
    return rows


def flatten(summary: dict) -> dict:
    """JSON metrics: ``<task>_<row>_<metric>`` means, and for each variant ours minus gensim
    (``<task>_<variant>_<metric>_delta_vs_gensim``) and the training speed-up over gensim."""
    flat = {f"{t}_{r}_{k}": m[0] for t, rows in summary.items() for r, vals in rows.items() for k, m in vals.items()}
    for t, rows in summary.items():
        for variant in VARIANT_NAMES:
            ours, theirs = rows.get(f"ours_{variant}"), rows.get(f"gensim_{variant}")
            if ours is None or theirs is None:
                continue
            for k in METRICS[t]:
                flat[f"{t}_{variant}_{k}_delta_vs_gensim"] = ours[k][0] - theirs[k][0]
            flat[f"{t}_{variant}_words_per_second_speedup_vs_gensim"] = (
                ours["words_per_second"][0] / theirs["words_per_second"][0])
    return flat


def write(config, results: dict, sizes: dict, workdir: pathlib.Path) -> dict:
    """Writes ``doc2vec.{md,json}`` and ``doc2vec.png``; returns the flat metrics."""
    summary = summarise(results)
    if "flickr8k" in summary:
        summary["flickr8k"].update(bert_rows(config))
    metrics = flatten(summary)
    figure = bar_chart(summary, workdir / "doc2vec.png")
    dirs = [workdir] + ([RESULTS_DIR] if config.write_results else [])
    if config.write_results:
        publish(figure)
    write_results("doc2vec", markdown(config, summary, sizes, figure.name),
                  {"config": config.to_dict(), "sizes": sizes, **metrics}, dirs)
    return metrics


def bar_chart(summary: dict, path: pathlib.Path) -> pathlib.Path:
    tasks = list(summary)
    fig, axes = new_figure(1, len(tasks), figsize=(6 * len(tasks), 3.8), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        rows = list(summary[task])
        means = [summary[task][r][MAIN[task]][0] for r in rows]
        sds = [summary[task][r][MAIN[task]][1] for r in rows]
        colors = ["tab:blue" if "(ours" in row_name(r) else "tab:orange" if "gensim" in r else "tab:grey" for r in rows]
        ax.barh(np.arange(len(rows)), means, xerr=sds, color=colors)
        ax.set_yticks(np.arange(len(rows)), [row_name(r).replace(" (bert.json)", "") for r in rows], fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel(MAIN[task].replace("_at_", "@"))
        ax.set_title({"brown": "Brown genre classification (15 genres, 5-fold)",
                      "flickr8k": "Flickr8k test caption retrieval (inferred vectors)"}[task], fontsize=9)  # fmt: skip
    fig.tight_layout()
    return save_figure(fig, path, dpi=90)


def _cell(m) -> str:
    mean, sd, n = m
    return f"{mean:.3f} ± {sd:.3f}" if n > 1 else f"{mean:.3f}"


def markdown(config, summary: dict, sizes: dict, figure: str) -> str:
    tables = []
    for task, rows in summary.items():
        cols = METRICS[task]
        head = ("| method | words/s | " + " | ".join(c.replace("_at_", "@") for c in cols)
                + " |\n|---|---:|" + "---:|" * len(cols))  # fmt: skip
        body = []
        for r, vals in rows.items():
            speed = f"{vals['words_per_second'][0]:,.0f}" if "words_per_second" in vals else "—"
            body.append(f"| {row_name(r)} | {speed} | " + " | ".join(_cell(vals[c]) for c in cols) + " |")
        title = {"brown": "Brown genre classification", "flickr8k": "Flickr8k caption retrieval (test split)"}[task]
        s = sizes[task]
        tables.append(f"### {title}\n\n{s['documents']:,} training documents, {s['words']:,} words.\n\n"
                      f"{head}\n" + "\n".join(body))
    st = config.settings
    seeds = ", ".join(map(str, config.seeds))
    return f"""# Doc2Vec beside gensim: genre classification and caption retrieval

Settings shared by ours and gensim's `Doc2Vec`: vector_size {st.vector_size}, window {st.window},
negative {st.negative}, sample {st.sample}, alpha {st.alpha} to {st.min_alpha}, {st.epochs} epochs, min_count
{dict(config.min_count)}; seeds {seeds} (each cell: mean ± s.d. over them); gensim with every core.
Brown: the 500 files are the documents, vectors learnt without labels, then softmax regression on
the unit vectors, stratified {config.folds}-fold over the 15 genres. Flickr8k: vectors learnt from the
train captions; the test captions (never trained on) are inferred with the model's epochs, and each
queries all others by cosine, the 4 other captions of its image being the hits (the `embeddings-jax bert`
protocol; its zero-shot MiniLM rows are copied from `bert.json`). Mean-of-word-vector rows: skip-gram
Word2Vec / FastText, {config.word_vector_epochs} epochs, same text. Words/s: training only (ours after the
warm-up that compiles the step). Chunk sizes: ours picks them (`_auto_chunk`): PV-DBOW's hold about
two mean documents (8,192 tokens on Brown, 64 on captions), PV-DM's bound frequent words' pile-ups
(256 on Brown); the rows with a chunk size are ours with that size instead.

{(chr(10) * 2).join(tables)}

![main metric per method]({figure})
"""
