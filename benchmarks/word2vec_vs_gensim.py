"""word2vec training speed, quality and memory: embeddings_jax beside gensim, same data, same run.

    python -m benchmarks.word2vec_vs_gensim                 # PTB + Brown, SG-NS and CBOW-NS
    python -m benchmarks.word2vec_vs_gensim --repeats 1 --variants sgns --no-memory

Settings (both): vector_size 100, window 5, min_count 5, sample 1e-4, negative 5, 5 epochs;
gensim uses every core (``workers = os.cpu_count()``). Reported per variant: raw corpus words per
second of training (vocabulary building timed apart; our jit compilation excluded by a warm-up),
median over ``--repeats`` runs (ours and gensim's alternate), and questions-words analogy
accuracy. The memory rows train one epoch with a 1,000,000-word vocabulary in a fresh process
each and report peak resident memory next to the ``2 * V * D * 4`` bytes the two float32 tables
need.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

SETTINGS = {
    "vector_size": 100,
    "window": 5,
    "min_count": 5,
    "sample": 1e-4,
    "negative": 5,
    "epochs": 5,
    "seed": 1,
}
VARIANTS = {"sgns": 1, "cbowns": 0}  # name -> sg


def _ours(sentences, sg, analogy):
    """Builds our model once (vocabulary timed, step compiled) and returns a function that
    trains it from fresh parameters: ``() -> (words/s, analogy accuracy)``."""
    import jax

    from embeddings_jax.eval.analogy import evaluate_word_analogies
    from embeddings_jax.models.word2vec import Word2Vec

    t0 = time.perf_counter()
    model = Word2Vec(sg=sg, devices=jax.devices()[:1], **SETTINGS)
    model.build_vocab(sentences)
    corpus = model.encode(sentences)
    vocab_s = time.perf_counter() - t0
    model.train(corpus, epochs=1)  # warm-up: compiles the step

    def run():
        model.reset_params()
        model.train(corpus)
        return model.last_train_timing["words_per_second"], evaluate_word_analogies(model.wv, analogy).accuracy

    return run, {"vocab_seconds": vocab_s, "chunk_size": model.chunk_size}


def _gensim(sentences, sg, analogy, workers):
    """A function that builds and trains gensim's model: ``() -> (words/s, accuracy, vocab s)``."""
    from gensim.models import Word2Vec as G

    from embeddings_jax.eval.analogy import evaluate_word_analogies
    from embeddings_jax.vectors import KeyedVectors

    words = sum(len(s) for s in sentences) * SETTINGS["epochs"]

    def run():
        t0 = time.perf_counter()
        m = G(sg=sg, workers=workers, **SETTINGS)
        m.build_vocab(sentences)
        t1 = time.perf_counter()
        m.train(sentences, total_examples=m.corpus_count, epochs=SETTINGS["epochs"])
        t2 = time.perf_counter()
        kv = KeyedVectors(m.wv.index_to_key, m.wv.vectors)
        return words / (t2 - t1), evaluate_word_analogies(kv, analogy).accuracy, t1 - t0

    return run


def _compare(sentences, sg, analogy, repeats, workers):
    """``repeats`` runs of each implementation, alternating ours and gensim's so that slow
    drifts of the machine's speed (we measured +-20% between runs) hit both alike."""
    ours_run, ours = _ours(sentences, sg, analogy)
    gensim_run = _gensim(sentences, sg, analogy, workers)
    runs = {"ours": [], "gensim": []}
    for _ in range(repeats):
        runs["ours"].append(ours_run())
        runs["gensim"].append(gensim_run())
    theirs = {"vocab_seconds": statistics.median(r[2] for r in runs["gensim"])}
    for out, rs in ((ours, runs["ours"]), (theirs, runs["gensim"])):
        out.update(words_per_second=statistics.median(r[0] for r in rs),
                   runs_words_per_second=[r[0] for r in rs],
                   analogy_acc=statistics.median(r[1] for r in rs))  # fmt: skip
    return ours, theirs


def _memory_child(impl: str, vocab_size: int, tokens: int, workers: int) -> dict:
    """One epoch of SG-NS with a ``vocab_size`` vocabulary (Zipf-distributed tokens)."""
    import numpy as np

    rng = np.random.default_rng(0)
    counts = np.maximum(
        (tokens / np.log(vocab_size) / np.arange(1, vocab_size + 1)).astype(np.int64), 1
    )
    ids = rng.choice(vocab_size, size=tokens, p=counts / counts.sum()).astype(np.int32)
    words = [f"w{i}" for i in range(vocab_size)]
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    kw = dict(SETTINGS, min_count=1, epochs=1)
    if impl == "ours":
        import jax

        from embeddings_jax.data.vocab import Corpus, Vocab
        from embeddings_jax.models.word2vec import Word2Vec

        model = Word2Vec(sg=1, devices=jax.devices()[:1], **kw)
        model.vocab = Vocab(words, counts)
        model._make_tables()
        model.reset_params()
        sent = (np.arange(tokens) // 20).astype(np.int32)
        model.train(Corpus(ids, sent, tokens))
    else:
        from gensim.models import Word2Vec as G

        sents = [[words[i] for i in ids[s : s + 20]] for s in range(0, tokens, 20)]
        m = G(sg=1, workers=workers, **kw)
        m.build_vocab_from_freq(dict(zip(words, counts.tolist())))
        m.train(sents, total_examples=len(sents), epochs=1)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"peak_rss_mb": peak / 1024, "baseline_rss_mb": base / 1024,
            "seconds": time.perf_counter() - t0}  # fmt: skip


def _memory(impl: str, vocab_size: int, tokens: int, workers: int) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.word2vec_vs_gensim", "--memory-child", impl,
           "--memory-vocab", str(vocab_size), "--memory-tokens", str(tokens)]  # fmt: skip
    out = subprocess.run(
        cmd, capture_output=True, text=True, check=True, env=os.environ | {"XLA_FLAGS": ""}
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--corpus", default="ptb_brown", help="ptb | brown | ptb_brown | text file")
    ap.add_argument("--variants", default="sgns,cbowns")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--memory-vocab", type=int, default=1_000_000)
    ap.add_argument("--memory-tokens", type=int, default=2_000_000)
    ap.add_argument("--memory-child", choices=["ours", "gensim"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.memory_child:
        print(
            json.dumps(
                _memory_child(
                    args.memory_child, args.memory_vocab, args.memory_tokens, args.workers
                )
            )
        )
        return

    from benchmarks.common import write_result
    from embeddings_jax.data import text

    sentences = text.load_corpus(args.corpus)
    analogy = text.analogy_path()
    n_words = sum(len(s) for s in sentences)
    print(
        f"corpus {args.corpus}: {n_words:,} words; settings {SETTINGS}; gensim workers={args.workers}"
    )
    metrics, peers, rows = {}, {"gensim": {}}, []
    for v in args.variants.split(","):
        sg = VARIANTS[v]
        ours, theirs = _compare(sentences, sg, analogy, args.repeats, args.workers)
        metrics[f"{v}_words_per_second"] = ours["words_per_second"]
        metrics[f"{v}_runs_words_per_second"] = ours["runs_words_per_second"]
        metrics[f"{v}_vocab_seconds"] = ours["vocab_seconds"]
        metrics[f"{v}_analogy_acc"] = ours["analogy_acc"]
        metrics[f"{v}_chunk_size"] = ours["chunk_size"]
        metrics[f"{v}_words_per_second_speedup_vs_gensim"] = (
            ours["words_per_second"] / theirs["words_per_second"]
        )
        metrics[f"{v}_analogy_acc_delta_vs_gensim"] = ours["analogy_acc"] - theirs["analogy_acc"]
        peers["gensim"].update({f"{v}_{k}": x for k, x in theirs.items()})
        rows.append((v, ours, theirs))
    if not args.no_memory:
        mo = _memory("ours", args.memory_vocab, args.memory_tokens, args.workers)
        mg = _memory("gensim", args.memory_vocab, args.memory_tokens, args.workers)
        tables_mb = 2 * args.memory_vocab * SETTINGS["vector_size"] * 4 / 2**20
        metrics.update(memory_vocab_size=args.memory_vocab, memory_tables_mb=tables_mb,
                       memory_peak_rss_mb=mo["peak_rss_mb"], memory_baseline_rss_mb=mo["baseline_rss_mb"])  # fmt: skip
        peers["gensim"].update(
            memory_peak_rss_mb=mg["peak_rss_mb"], memory_baseline_rss_mb=mg["baseline_rss_mb"]
        )
    print("\n| variant | impl | words/s (median) | vocab s | analogy acc |\n|---|---|---|---|---|")
    for v, o, t in rows:
        print(
            f"| {v} | embeddings_jax | {o['words_per_second']:,.0f} | {o['vocab_seconds']:.2f} | {o['analogy_acc']:.2%} |"
        )
        print(
            f"| {v} | gensim ({args.workers} threads) | {t['words_per_second']:,.0f} | {t['vocab_seconds']:.2f} | {t['analogy_acc']:.2%} |"
        )
    if not args.no_memory:
        print(f"\n1M-word vocabulary, 1 epoch SG-NS: peak RSS ours {mo['peak_rss_mb']:.0f} MB, gensim "
              f"{mg['peak_rss_mb']:.0f} MB (two float32 V x D tables = {tables_mb:.0f} MB)")  # fmt: skip
    path = write_result("word2vec_vs_gensim", config=dict(SETTINGS, corpus=args.corpus, repeats=args.repeats,
                        gensim_workers=args.workers, variants=args.variants), metrics=metrics, peers=peers)  # fmt: skip
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
