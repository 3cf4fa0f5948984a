"""word2vec training speed, quality and memory: embeddings_jax beside gensim, same data, same run.

    python -m benchmarks.word2vec_vs_gensim                  # PTB + Brown, SG-NS and CBOW-NS
    python -m benchmarks.word2vec_vs_gensim --matrix         # 6 corpora x SG/CBOW x NS/HS
    python -m benchmarks.word2vec_vs_gensim --scaling        # words/s of 1, 2, 4, 8 workers
    python -m benchmarks.word2vec_vs_gensim --memory         # corpus_file peak RSS, Zipf corpus

Settings (both): vector_size 100, window 5, min_count 5, sample 1e-4, negative 5 (NS) or hs=1,
negative=0 (HS), 5 epochs (1 on the generated Zipf corpus); both use every core: gensim
``workers = os.cpu_count()`` threads, ours as many workers, one CPU device each (``use_cpu_cores``,
set before JAX starts; ``--ours-workers 1`` gives one device whose XLA threads span the cores). Per cell: raw corpus words per
second of training (vocabulary building timed apart; our compilation excluded by a warm-up), the
median over ``--repeats`` runs, ours and gensim's alternating; CPU seconds per wall second of
training ("cores"); questions-words analogy accuracy and WordSim-353 / SimLex-999 Spearman
(gensim's copies of both sets), as the mean over ``--seeds`` seeds. The Zipf corpus (25M tokens
over 500k word types, 382k of them kept by min_count 5) is generated once into a text file
and trained from it through ``corpus_file`` by both.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time

# Importing the library imports JAX without starting it, so --scaling can still set the CPU devices.
from embeddings_jax.models.word2vec import VARIANTS

SETTINGS = {"vector_size": 100, "window": 5, "min_count": 5, "sample": 1e-4, "epochs": 5}
MATRIX_CORPORA = ("ptb", "brown", "ptb_brown", "fra_eng", "flickr8k", "zipf")
ZIPF = {"tokens": 25_000_000, "types": 500_000, "sentence_length": 20, "epochs": 1}


# ---------------------------------------------------------------- corpora and quality
def zipf_corpus_file(tokens: int, types: int, sentence_length: int) -> str:
    """A text file of ``tokens`` words drawn from a Zipf(1) law over ``types`` word types, written
    once (temp dir) and reused: the large-vocabulary corpus of the matrix."""
    import numpy as np

    path = os.path.join(tempfile.gettempdir(), f"embeddings_jax_zipf_{tokens}_{types}_{sentence_length}.txt")
    if os.path.exists(path):
        return path
    rng = np.random.default_rng(0)
    p = 1.0 / np.arange(1, types + 1)
    p /= p.sum()
    words = np.array([f"w{i}" for i in range(types)])
    tmp, block = path + ".tmp", sentence_length * 10_000
    with open(tmp, "w") as f:
        for start in range(0, tokens, block):
            ids = rng.choice(types, size=min(block, tokens - start), p=p)
            rows = words[ids].reshape(-1, sentence_length).tolist()
            f.write("\n".join(" ".join(row) for row in rows) + "\n")
    os.replace(tmp, path)
    return path


QUALITY = ("analogy_acc", "wordsim353_spearman", "simlex999_spearman")


def quality(kv, analogy: str | None) -> dict:
    """Analogy accuracy and word-pair Spearman (WordSim-353, SimLex-999) of ``kv``; NaN for a
    corpus of made-up words (``analogy=None``)."""
    if analogy is None:
        return dict.fromkeys(QUALITY, float("nan"))
    from embeddings_jax.eval.analogy import evaluate_word_analogies
    from embeddings_jax.eval.word_similarity import default_pair_files, evaluate_word_pairs

    out = {"analogy_acc": evaluate_word_analogies(kv, analogy).accuracy}
    for name, path in default_pair_files().items():
        out[f"{name}_spearman"] = evaluate_word_pairs(kv, path).spearman
    return out


def _timed(fn):
    """``(result, wall seconds, CPU seconds per wall second)`` of ``fn()``."""
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    wall = time.perf_counter() - t0
    return out, wall, (time.process_time() - c0) / wall


# ---------------------------------------------------------------- one cell: ours vs gensim
def _ours(corpus, variant, settings, seed, workers=1):
    """Builds our model (vocabulary timed, step compiled) and returns ``run(seed) -> dict``."""
    import jax

    from embeddings_jax.data.text import LineSentence
    from embeddings_jax.models.word2vec import Word2Vec

    sg, hs, negative = VARIANTS[variant]
    t0 = time.perf_counter()
    model = Word2Vec(sg=sg, hs=hs, negative=negative, seed=seed, devices=jax.devices()[:workers],
                     chunks_per_step=workers, **settings)  # fmt: skip
    if isinstance(corpus, str):
        model.build_vocab(corpus_file=corpus)
        encoded = model.encode(LineSentence(corpus))
    else:
        model.build_vocab(corpus)
        encoded = model.encode(corpus)
    vocab_s = time.perf_counter() - t0
    model.train(encoded, epochs=1)  # warm-up: compiles the step

    def run(seed):
        model.seed = seed
        model.reset_params()
        _, _, cores = _timed(lambda: model.train(encoded))
        return {"words_per_second": model.last_train_timing["words_per_second"], "cores": cores}

    return model, run, {"vocab_seconds": vocab_s, "chunk_size": model.chunk_size, "vocab_size": len(model.vocab)}


def _gensim(corpus, variant, settings, workers):
    """``run(seed) -> (dict, KeyedVectors)``: builds and trains gensim's model."""
    from gensim.models import Word2Vec as G

    from embeddings_jax.vectors import KeyedVectors

    sg, hs, negative = VARIANTS[variant]

    def run(seed):
        t0 = time.perf_counter()
        m = G(sg=sg, hs=hs, negative=negative, seed=seed, workers=workers, **settings)
        source = {"corpus_file": corpus} if isinstance(corpus, str) else {"corpus_iterable": corpus}
        m.build_vocab(**source)
        vocab_s = time.perf_counter() - t0
        extra = {"total_words": m.corpus_total_words} if isinstance(corpus, str) else {}
        _, wall, cores = _timed(lambda: m.train(**source, total_examples=m.corpus_count,
                                                       epochs=settings["epochs"], **extra))  # fmt: skip
        out = {"words_per_second": m.corpus_total_words * settings["epochs"] / wall, "cores": cores,
               "vocab_seconds": vocab_s}  # fmt: skip
        return out, KeyedVectors(m.wv.index_to_key, m.wv.vectors)

    return run


def compare(corpus, variant, settings, repeats, seeds, workers, analogy, ours_workers=1) -> tuple[dict, dict]:
    """``repeats`` timed runs of each implementation alternating (slow drifts of the machine's
    speed hit both alike), then ``seeds`` seeds' quality (the first seeds are the timed runs')."""
    model, ours_run, ours = _ours(corpus, variant, settings, 1, ours_workers)
    gensim_run = _gensim(corpus, variant, settings, workers)
    runs = {"ours": [], "gensim": []}
    q = {"ours": [], "gensim": []}
    for r in range(max(repeats, seeds)):
        seed = 1 + r
        mine = ours_run(seed)
        theirs, kv = gensim_run(seed)
        if r < repeats:
            runs["ours"].append(mine)
            runs["gensim"].append(theirs)
        if r < seeds:
            q["ours"].append(quality(model.wv, analogy))
            q["gensim"].append(quality(kv, analogy))
    theirs = {"vocab_seconds": statistics.median(r["vocab_seconds"] for r in runs["gensim"])}
    for name, out in (("ours", ours), ("gensim", theirs)):
        out["words_per_second"] = statistics.median(r["words_per_second"] for r in runs[name])
        out["runs_words_per_second"] = [r["words_per_second"] for r in runs[name]]
        out["cores"] = statistics.median(r["cores"] for r in runs[name])
        for key in q[name][0]:
            out[key] = statistics.fmean(x[key] for x in q[name])
    return ours, theirs


# ---------------------------------------------------------------- scaling and memory
def scaling(corpus, variant, settings, workers_list, analogy) -> list[dict]:
    """Words/s and quality of ``w`` workers (one CPU device each, merging every ``sync_every``
    steps) for each ``w``; needs ``max(workers_list)`` CPU devices."""
    rows = []
    for w in workers_list:
        model, run, _ = _ours(corpus, variant, settings, 1, workers=w)
        res = run(1)
        rows.append({"workers": w, "sync_every": model.sync_every, **res, **quality(model.wv, analogy)})
        print(f"  {w} worker(s): {res['words_per_second']:,.0f} words/s, {res['cores']:.2f} cores", flush=True)
    return rows


def _memory_child(impl: str, path: str) -> dict:
    """One epoch of SG-NS from ``corpus_file`` (fresh process): peak RSS above the baseline."""
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kw = dict(SETTINGS, negative=5, epochs=1, sg=1)
    if impl == "ours":
        import jax

        jax.numpy.zeros(1).block_until_ready()  # the runtime itself is part of the baseline
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        from embeddings_jax.models.word2vec import Word2Vec

        m = Word2Vec(corpus_file=path, **kw)
        tokens, vocab = m.last_train_timing["effective_words"], len(m.vocab)
    else:
        from gensim.models import Word2Vec as G

        m = G(corpus_file=path, workers=os.cpu_count(), **kw)
        tokens, vocab = m.corpus_total_words, len(m.wv)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"peak_rss_mb": peak / 1024, "baseline_rss_mb": base / 1024, "tokens": tokens, "vocab_size": vocab}


def memory(path: str) -> dict:
    out = {}
    for impl in ("ours", "gensim"):
        cmd = [sys.executable, "-m", "benchmarks.word2vec_vs_gensim", "--memory-child", impl, "--memory-file", path]
        res = subprocess.run(cmd, capture_output=True, text=True, check=True, env=os.environ | {"XLA_FLAGS": ""})
        out[impl] = json.loads(res.stdout.strip().splitlines()[-1])
    ours = out["ours"]
    need_mb = (4 * ours["tokens"] + 2 * ours["vocab_size"] * SETTINGS["vector_size"] * 4) / 2**20
    ours["tokens_x4_plus_tables_mb"] = need_mb
    ours["peak_over_baseline_vs_tokens_x4_plus_tables"] = (ours["peak_rss_mb"] - ours["baseline_rss_mb"]) / need_mb
    return out


# ---------------------------------------------------------------- main
def _cells(args):
    """The (corpus, variant) cells to compare: the matrix, the chosen ones, or none for a
    ``--scaling`` / ``--memory`` run."""
    if args.matrix:
        return [(c, v) for c in MATRIX_CORPORA for v in VARIANTS]
    if args.scaling or args.memory:
        return []
    return [(args.corpus, v) for v in args.variants.split(",")]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default="ptb_brown", help="ptb | brown | ptb_brown | fra_eng | flickr8k | zipf | a file")
    ap.add_argument("--variants", default="sgns,cbowns", help=",".join(VARIANTS))
    ap.add_argument("--matrix", action="store_true", help="every corpus x every variant")
    ap.add_argument("--scaling", action="store_true", help="words/s of 1, 2, 4, 8 workers (SG-NS, PTB+Brown)")
    ap.add_argument("--memory", action="store_true", help="corpus_file peak RSS on the Zipf corpus")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--workers", type=int, default=os.cpu_count(), help="gensim's threads")
    ap.add_argument("--ours-workers", type=int, default=os.cpu_count(), help="our workers (CPU devices)")
    ap.add_argument("--memory-child", choices=["ours", "gensim"], help=argparse.SUPPRESS)
    ap.add_argument("--memory-file", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.memory_child:
        print(json.dumps(_memory_child(args.memory_child, args.memory_file)))
        return
    if args.scaling or args.ours_workers > 1:  # one CPU device per worker, set before JAX starts
        from embeddings_jax.train.sharding import use_cpu_cores

        use_cpu_cores(8 if args.scaling else args.ours_workers)

    from benchmarks.common import write_result
    from embeddings_jax.data import text

    analogy = str(text.analogy_path())
    metrics, peers, rows = {}, {"gensim": {}}, []

    def save(rows):
        from embeddings_jax.ops import xla_cpu
        from embeddings_jax.train.sharding import make_mesh

        mode = "matrix" if args.matrix else "scaling" if args.scaling else "memory" if args.memory else ""
        name = "word2vec_vs_gensim" + (f"_{mode}" if mode else "")
        forced_isa = re.search(r"--xla_cpu_max_isa=(\w+)", os.environ.get("XLA_FLAGS", ""))
        if forced_isa:  # the code path XLA was told to use, beside the machine's own
            name += f"_isa_{forced_isa.group(1).lower()}"
        config = dict(SETTINGS, cells=[f"{c}_{v}" for c, v, *_ in rows], repeats=args.repeats, seeds=args.seeds,
                      gensim_workers=args.workers, ours_workers=args.ours_workers, zipf=ZIPF,
                      xla_cpu_step_options=xla_cpu.cpu_compiler_options(make_mesh(1)))  # fmt: skip
        command = "python -m benchmarks.word2vec_vs_gensim " + " ".join(sys.argv[1:] if argv is None else argv)
        return write_result(name, config=config, metrics=metrics, peers=peers, command=command.strip())

    corpora = {}
    for corpus_name, v in _cells(args):
        if corpus_name not in corpora:
            if corpus_name == "zipf":
                corpora[corpus_name] = zipf_corpus_file(ZIPF["tokens"], ZIPF["types"], ZIPF["sentence_length"])
            else:
                corpora[corpus_name] = text.load_corpus(corpus_name)
        corpus = corpora[corpus_name]
        settings = dict(SETTINGS, epochs=ZIPF["epochs"]) if corpus_name == "zipf" else SETTINGS
        print(f"{corpus_name} {v}: ", end="", flush=True)
        real_words = None if corpus_name == "zipf" else analogy
        ours, theirs = compare(corpus, v, settings, args.repeats, args.seeds, args.workers, real_words,
                               args.ours_workers)  # fmt: skip
        key = f"{corpus_name}_{v}"
        metrics.update({f"{key}_{k}": x for k, x in ours.items()})
        metrics[f"{key}_words_per_second_speedup_vs_gensim"] = ours["words_per_second"] / theirs["words_per_second"]
        for q in QUALITY:
            metrics[f"{key}_{q}_delta_vs_gensim"] = ours[q] - theirs[q]
        peers["gensim"].update({f"{key}_{k}": x for k, x in theirs.items()})
        rows.append((corpus_name, v, ours, theirs))
        print(f"{ours['words_per_second'] / theirs['words_per_second']:.2f}x gensim", flush=True)
        save(rows)  # after every cell: a long matrix run keeps what it measured
    if args.scaling:
        print("scaling (SG-NS, PTB+Brown):")
        scale = scaling(corpora.get("ptb_brown") or text.load_corpus("ptb_brown"), "sgns", SETTINGS, (1, 2, 4, 8), analogy)
        metrics["scaling"] = scale
        base = scale[0]["words_per_second"]
        for r in scale:
            metrics[f"scaling_{r['workers']}_workers_words_per_second_speedup_vs_1_worker"] = r["words_per_second"] / base
    if args.memory:
        mem = memory(zipf_corpus_file(ZIPF["tokens"], ZIPF["types"], ZIPF["sentence_length"]))
        metrics.update({f"memory_{k}": x for k, x in mem["ours"].items()})
        peers["gensim"].update({f"memory_{k}": x for k, x in mem["gensim"].items()})

    print("\n| corpus | variant | ours words/s | gensim words/s | speedup | ours cores | gensim cores "
          "| analogy ours / gensim | WS353 ours / gensim | SimLex ours / gensim |\n|---|---|---:|---:|---:|---:|---:|---|---|---|")
    for c, v, o, t in rows:
        print(f"| {c} | {v} | {o['words_per_second']:,.0f} | {t['words_per_second']:,.0f} | "
              f"{o['words_per_second'] / t['words_per_second']:.2f}x | {o['cores']:.2f} | {t['cores']:.2f} | "
              f"{o['analogy_acc']:.1%} / {t['analogy_acc']:.1%} | {o['wordsim353_spearman']:.3f} / {t['wordsim353_spearman']:.3f} | "
              f"{o['simlex999_spearman']:.3f} / {t['simlex999_spearman']:.3f} |")  # fmt: skip
    if args.memory:
        o = mem["ours"]
        print(f"\nZipf corpus_file, 1 epoch SG-NS: peak RSS ours {o['peak_rss_mb']:.0f} MB (baseline "
              f"{o['baseline_rss_mb']:.0f} MB; 4 B/token + tables = {o['tokens_x4_plus_tables_mb']:.0f} MB), "
              f"gensim {mem['gensim']['peak_rss_mb']:.0f} MB")  # fmt: skip
    path = save(rows)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
