"""The word2vec report: seeds aggregated as mean ± s.d., the results table and its flat JSON,
the speed section from the benchmark's JSON, nearest neighbours, analogy examples and a PCA plot.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np

from embeddings_jax.train.atomic import atomic_write
from experiments.common import RESULTS_DIR, git_sha, hardware, publish
from experiments.reports.plots import pca_scatter

BENCHMARK_JSON = RESULTS_DIR.parents[1] / "benchmarks" / "results" / "word2vec_vs_gensim-cpu.json"

SPEED_NOTE = """The first table is the current engine on the named machine, both libraries on every
core: gensim's threads, our workers (one CPU device each, `use_cpu_cores`). The matrix, AVX2,
scaling and memory tables are older runs (their git and machine are named above each) of one
worker, before skip-gram scored its pairs block by block; they are kept until rerun. What limits
the step, measured. (1) Hierarchical softmax pads every Huffman path to the longest code
(PTB+Brown: 19 nodes where a kept token's path averages 13) and, for skip-gram, scores every
path node against all `B + 2W` rows of a block, where gensim walks each word's own code and each
real pair: 0.3-0.4x gensim (open in #19). (2) An XLA:CPU loop of small operations is bound by
per-operation dispatch: skip-gram's band (one batched product per block of centres, 138
operations a step instead of 234 for SG-NS) used 15% less CPU per word and lifted two workers on
2 cores from 1.34x to 1.6-1.9x one worker (Intel Xeon); CBOW keeps shifted rows (one fused pass
per window; the batched form measured 20% slower) and gains less from a second worker.
(3) Short sentences (fra-eng's English side averages 7 words, the Flickr8k captions 12) leave
most window positions empty, where gensim visits only real pairs. (4) Stale copies cost quality
as workers grow (scaling table: 4 lose 1.4 points of analogy, 8 diverge); 2 workers stay within
a point of one. (5) The runs share a virtual machine: each source line gives the share of CPU
time the hypervisor took for other guests during it (a run with 38% measured SG-NS 1.58x and
gensim at 1.26 cores). GPU speed is unmeasured: no GPU was lent."""

QUALITY_NOTE = """What made ours trail gensim before (measured, and fixed): (1) gensim 4 draws
input vectors from U[-1/D, 1/D], twice the C tool's range that we used; output vectors start at
zero, so the smaller range slowed early learning (on the synthetic world a numpy sequential-SGD
reference went from 65% to 80% CBOW analogy accuracy with gensim's range alone); (2) gensim
skips every pair whose score lies beyond +-6 (`MAX_EXP`), which we now do too; (3) a chunk's
updates are computed from one parameter snapshot, so the automatic chunk is smaller for
skip-gram (256 tokens on this corpus, SimLex-999 0.162 at 1024) than for CBOW (1024). The
remaining difference is the mini-batch itself and batch-shared negatives; it shows most on the
built-in synthetic world (`embeddings-jax word2vec --config runlocal --config.seeds=1,2,3,4,5
--config.compare_gensim=True --config.variants=sgns,cbowns`: 503 words, 32 dimensions, 15
epochs): SG-NS 98.1% ± 0.4% analogy accuracy against gensim's 98.2% ± 0.5%, CBOW-NS 75.2% ±
1.5% against 80.9% ± 1.8% (before the fixes: 59.6% against 82.2%)."""


# ---------------------------------------------------------------- seeds
def aggregate(runs: list[dict], seeds: list[int]) -> dict:
    """Mean of every numeric metric over seeds, with ``std`` (sample s.d., 0 for one seed),
    ``seeds`` and ``per_seed`` (each run's numbers); other entries come from the first run."""
    out = dict(runs[0])
    numeric = [k for k, v in runs[0].items() if isinstance(v, (int, float)) and v is not None]
    out.update({k: float(np.mean([r[k] for r in runs])) for k in numeric})
    out["std"] = {k: float(np.std([r[k] for r in runs], ddof=1)) if len(runs) > 1 else 0.0
                  for k in numeric}  # fmt: skip
    out["seeds"] = list(seeds)
    out["per_seed"] = [{k: r[k] for k in numeric} for r in runs]
    return out


def cell(m: dict, key: str, fmt: str) -> str:
    """``mean`` or ``mean ± s.d.`` (several seeds) of one metric, formatted with ``fmt``."""
    value = m.get(key)
    if value is None:
        return "n/a"
    std = m.get("std", {}).get(key)
    return format(value, fmt) + (f" ± {format(std, fmt)}" if len(m.get("seeds", [])) > 1 else "")


def run_line(impl: str, variant: str, seed: int, res: dict, pairs) -> str:
    """The progress line of one trained model."""
    scores = "".join(f"{n} {res[n + '_spearman']:.3f}; " for n in pairs)
    if impl != "ours":
        return (f"[{impl} {variant} seed {seed}] analogy {res['analogy_acc']:.1%}; {scores}"
                f"{res['words_per_second']:,.0f} words/s")  # fmt: skip
    return (f"[{variant} seed {seed}] analogy {res['analogy_acc']:.1%} (semantic "
            f"{res['analogy_semantic']:.1%}, syntactic {res['analogy_syntactic']:.1%}); {scores}"
            f"{res['words_per_second']:,.0f} words/s ({res['train_seconds']:.1f} s incl. "
            f"compilation), vocab {res['vocab_size']}")  # fmt: skip


# ---------------------------------------------------------------- the results table
def json_names(pair_names) -> dict[str, str]:
    """Metric of a run -> its name in ``word2vec.json`` (before the corpus prefix and suffixes)."""
    return {"analogy_acc": "analogy_acc", "analogy_semantic": "analogy_semantic_acc",
            "analogy_syntactic": "analogy_syntactic_acc",
            "words_per_second": "train_words_per_second",
            **{f"{p}_spearman": f"{p}_spearman" for p in pair_names}}  # fmt: skip


def results_table(metrics: dict, corpus: str) -> tuple[list[str], dict]:
    """The markdown rows of every model in ``metrics`` and the flat JSON of their numbers:
    ``<corpus>_<metric>[_std]_<variant>[_gensim]``."""
    pair_names = sorted({k[: -len("_spearman")] for v in metrics.values() if isinstance(v, dict)
                         for k in v if k.endswith("_spearman")})  # fmt: skip
    columns = ["model", "impl", "seeds", "analogy total", "semantic", "syntactic",
               *(f"{p} Spearman" for p in pair_names), "train words/s"]  # fmt: skip
    rows, flat = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)], {}
    for key, m in metrics.items():
        if not isinstance(m, dict):
            continue
        impl, v = ("gensim", key[len("gensim_") :]) if key.startswith("gensim_") else ("ours", key)
        sfx = f"_{v}" + ("_gensim" if impl == "gensim" else "")
        for src, dst in json_names(pair_names).items():
            flat[f"{corpus}_{dst}{sfx}"] = m.get(src)
            if len(m.get("seeds", [])) > 1:
                flat[f"{corpus}_{dst}_std{sfx}"] = m["std"].get(src)
        cells = [v, impl, str(len(m.get("seeds", [None]))), cell(m, "analogy_acc", ".2%"),
                 cell(m, "analogy_semantic", ".2%"), cell(m, "analogy_syntactic", ".2%"),
                 *(cell(m, f"{p}_spearman", ".3f") for p in pair_names),
                 f"{m['words_per_second']:,.0f}"]  # fmt: skip
        rows.append("| " + " | ".join(cells) + " |")
    return rows, flat


def _speed_rows(b: dict) -> list[str]:
    """One row per (corpus, variant) cell of a ``word2vec_vs_gensim`` JSON."""
    m, g = b["metrics"], b["peers"]["gensim"]

    def speed(d, key):
        runs = d.get(key + "_runs_words_per_second", [])
        spread = f" ({min(runs) / 1e6:.2f}-{max(runs) / 1e6:.2f}M)" if len(runs) > 1 else ""
        return f"{d[key + '_words_per_second']:,.0f}{spread}"

    header = ("| corpus | variant | ours words/s | gensim words/s | ratio | cores ours / gensim | "
              "analogy ours / gensim | WS-353 ρ ours / gensim | SimLex ρ ours / gensim |")  # fmt: skip
    rows = [header, "|---|---|---:|---:|---:|---|---|---|---|"]
    for key in b["config"]["cells"]:
        corpus, v = key.rsplit("_", 1)
        rows.append(
            f"| {corpus} | {v} | {speed(m, key)} | {speed(g, key)} | "
            f"{m[key + '_words_per_second_speedup_vs_gensim']:.2f} | "
            f"{m[key + '_cores']:.2f} / {g[key + '_cores']:.2f} | "
            f"{_pair(m, g, key + '_analogy_acc', '.2%')} | "
            f"{_pair(m, g, key + '_wordsim353_spearman', '.3f')} | "
            f"{_pair(m, g, key + '_simlex999_spearman', '.3f')} |"
        )
    return rows


def _pair(m: dict, g: dict, key: str, fmt: str) -> str:
    """``ours / gensim``; a dash for a corpus of made-up words (NaN)."""
    if np.isnan(m[key]):
        return "—"
    return f"{m[key]:{fmt}} / {g[key]:{fmt}}"


def _source(b: dict, path: pathlib.Path) -> str:
    steal = f", {b['cpu_steal']:.0%} of CPU time stolen by the hypervisor" if b.get("cpu_steal") else ""
    return (f"`{b['command']}` on {b['cpu_model']} ({b['isa']}{steal}), `benchmarks/results/{path.name}`, "
            f"git {b['git_sha']}")  # fmt: skip


def speed_section(path: pathlib.Path = BENCHMARK_JSON) -> list[str]:
    """Markdown lines of the ``benchmarks/word2vec_vs_gensim`` JSONs beside ``path`` (the default
    run, then the matrix, the worker scaling and the memory runs, where they were run)."""
    if not path.exists():
        return ["(run `python -m benchmarks.word2vec_vs_gensim` for the speed comparison)"]
    out = []
    for name, title in (("", None), ("_isa_avx2", "The same run with XLA held to AVX2"),
                        ("_matrix", "Every corpus and variant"), ("_scaling", "Workers (one CPU device each)"),
                        ("_memory", "Memory")):  # fmt: skip
        p = path.with_name(path.name.replace("-", name + "-", 1))
        if not p.exists():
            continue
        b = json.loads(p.read_text())
        m = b["metrics"]
        if title:
            out += [f"### {title}", ""]
        out += [_source(b, p) + ":", ""]
        if b["config"].get("cells"):
            out += [*_speed_rows(b), ""]
        if "scaling" in m:
            out += ["| workers | sync_every | words/s | cores | analogy | WS-353 ρ | SimLex ρ |",
                    "|---:|---:|---:|---:|---|---|---|"]  # fmt: skip
            out += [f"| {r['workers']} | {r['sync_every']} | {r['words_per_second']:,.0f} | {r['cores']:.2f} | "
                    f"{r['analogy_acc']:.2%} | {r['wordsim353_spearman']:.3f} | {r['simlex999_spearman']:.3f} |"
                    for r in m["scaling"]]  # fmt: skip
            out.append("")
        if "memory_peak_rss_mb" in m:
            g = b["peers"]["gensim"]
            out += [(f"`corpus_file` training of the Zipf corpus ({m['memory_tokens']:,} tokens kept, "
                     f"{m['memory_vocab_size']:,} words): peak RSS {m['memory_peak_rss_mb']:,.0f} MB, "
                     f"{m['memory_peak_rss_mb'] - m['memory_baseline_rss_mb']:,.0f} MB above the runtime's "
                     f"{m['memory_baseline_rss_mb']:,.0f} MB, i.e. "
                     f"{m['memory_peak_over_baseline_vs_tokens_x4_plus_tables']:.2f}x of 4 bytes per "
                     f"token + two tables ({m['memory_tokens_x4_plus_tables_mb']:,.0f} MB); gensim "
                     f"{g['memory_peak_rss_mb']:,.0f} MB."), ""]  # fmt: skip
    return [*out, SPEED_NOTE]


def results_markdown(config, metrics: dict, neighbours: str, plot) -> tuple[str, dict]:
    """``word2vec.md`` and the flat ``word2vec.json`` of a run's ``metrics``."""
    rows, flat = results_table(metrics, config.corpus)
    settings = (f"vector_size={config.vector_size}, window={config.window}, min_count={config.min_count}, "
                f"sample={config.sample}, negative={config.negative} (NS variants), hs=1 (HS variants), "
                f"alpha={config.alpha}->{config.min_alpha}, epochs={config.epochs}")  # fmt: skip
    md = [
        "# word2vec on PTB + Brown, beside gensim",
        "",
        (f"Corpus: {config.corpus} ({metrics['corpus_words']:,} words). Analogies: "
         "questions-words.txt (3CosAdd, restrict_vocab=300000, out-of-vocabulary questions skipped "
         "as in gensim). Word pairs: WordSim-353 and SimLex-999 from gensim's test data."),
        f"Settings (identical for both): {settings}; gensim with {config.gensim_workers} worker threads.",
        ("Each row is the mean ± sample standard deviation over the listed number of seeds (the same "
         "seeds for both implementations): on a 2M-word corpus a single seed moves analogy accuracy by "
         "about half a point and Spearman by one to two points."),
        "", *rows, "", QUALITY_NOTE, "",
        ("Words/second here: raw corpus words per second of training (vocabulary building "
         "excluded; ours includes jit compilation), taken while the table was computed; the "
         "speed comparison below is the benchmark's."),
        "", "## Speed", "", *speed_section(), "",
        "## Nearest neighbours (first seed)", "", neighbours, "",
        "## Embedding space", "",
        "![PCA of chosen words](word2vec_pca.png)" if plot
        else "(no plot: too few plot words in vocabulary)",
        "", "## Reproduce", "", "```",
        *(f"EMBEDDINGS_JAX_DATA=/path/to/data {cmd}" for cmd in metrics["commands"]),
        "```", "",
        ("`--config ptb_brown` alone trains all four variants and their gensim twins over five "
         "seeds (about 8 minutes on 2 CPU cores, most of it hierarchical softmax and gensim); "
         "`--config.variants=` and `--config.merge_metrics=<metrics.json of an earlier run>` split "
         "the work, as for the table above."),
        "", f"Hardware: {hardware()}. git sha: {git_sha()}.",
    ]  # fmt: skip
    return "\n".join(md) + "\n", flat


# ---------------------------------------------------------------- vectors
def neighbour_table(kv, words, topn: int = 5) -> str:
    rows = ["| word | nearest neighbours (cosine) |", "|---|---|"]
    for w in words:
        if w in kv:
            nn = ", ".join(f"{n} {s:.2f}" for n, s in kv.most_similar(w, topn=topn))
            rows.append(f"| {w} | {nn} |")
    return "\n".join(rows)


def analogy_examples(kv, path, per_section: int = 1, max_sections: int = 6) -> str:
    """A few answered questions, one line each: ``a : b :: c : ? -> answer (expected)``."""
    from embeddings_jax.eval.analogy import read_analogies

    lines = []
    for name, questions in read_analogies(path)[:max_sections]:
        asked = 0
        for a, b, c, d in questions:
            if asked == per_section:
                break
            if all(w.lower() in kv for w in (a, b, c)):
                a, b, c = a.lower(), b.lower(), c.lower()
                got = kv.most_similar(positive=[b, c], negative=[a], topn=1)[0][0]
                mark = "ok" if got == d.lower() else f"expected {d.lower()}"
                lines.append(f"  {name}: {a} : {b} :: {c} : ? -> {got} ({mark})")
                asked += 1
    return "analogy examples:\n" + "\n".join(lines)


def pca_plot(kv, words, path: pathlib.Path, title: str) -> pathlib.Path | None:
    """2-D PCA of the unit vectors of ``words`` (those in the vocabulary), saved as a PNG."""
    words = [w for w in words if w in kv]
    if len(words) < 3:
        return None
    return pca_scatter(np.stack([kv.get_vector(w, norm=True) for w in words]), path, title,
                       annotations=words)  # fmt: skip


def write(config, metrics: dict, kvs: dict, first: str, analogy, workdir: pathlib.Path) -> None:
    """Writes a run to ``workdir``: the vectors of model ``first`` (its first seed), its
    neighbours (and its gensim twin's), its PCA plot and ``metrics.json``; with
    ``config.results_dir``, also ``word2vec.{md,json,png}`` there."""
    kv = kvs[first]
    kv.save_word2vec_format(workdir / f"vectors_{first}.txt")
    print(analogy_examples(kv, analogy))
    words = [w for w in config.neighbour_words.split(",") if w]
    tables = [f"### {first} (ours)\n\n" + neighbour_table(kv, words)]
    if f"gensim_{first}" in kvs:
        tables.append(f"### {first} (gensim)\n\n" + neighbour_table(kvs[f"gensim_{first}"], words))
    neighbours = "\n\n".join(tables)
    with atomic_write(workdir / "neighbours.md") as f:
        f.write(neighbours + "\n")
    plot = pca_plot(kv, config.plot_words.split(","), workdir / "word2vec_pca.png",
                    f"word2vec {first} on {config.corpus}: PCA of chosen words")  # fmt: skip
    with atomic_write(workdir / "metrics.json") as f:  # read back by merge_metrics runs
        f.write(json.dumps(metrics, indent=1, default=float))
    if config.results_dir:
        out = pathlib.Path(config.results_dir)
        out.mkdir(parents=True, exist_ok=True)
        md, flat = results_markdown(config, metrics, neighbours, plot)
        with atomic_write(out / "word2vec.md") as f:
            f.write(md)
        with atomic_write(out / "word2vec.json") as f:
            f.write(json.dumps(flat, indent=1, default=float))
        if plot:
            publish(plot, directory=out)
