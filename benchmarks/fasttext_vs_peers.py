"""fastText training speed and quality: embeddings_jax beside the fasttext package and gensim's
FastText, same corpus file, same settings, same run.

    python -m benchmarks.fasttext_vs_peers                       # PTB, Brown, PTB+Brown; SG and CBOW
    python -m benchmarks.fasttext_vs_peers --corpora ptb --variants sg --repeats 1

Settings (all three): fastText's defaults for word vectors: vector_size 100, window 5, min_count 5,
negative 5 drawn from counts^0.5, sample 1e-4, learning rate 0.05, 5 epochs, n-grams of 3..6
characters hashed into 2,000,000 buckets; every core (fastText ``thread`` and gensim ``workers`` =
``os.cpu_count()``; ours one device, whose XLA threads span the cores). All read the same text
file (one sentence a line). Speed is raw corpus words per second of *training*: our vocabulary and
compilation are timed apart; gensim's ``build_vocab`` is timed apart from ``train``; the fasttext
package has no separate vocabulary call, so its training time is its 5-epoch run minus a 0-epoch
run (reading the file, building the dictionary and matrices). End-to-end seconds (everything from
the file to trained vectors) are recorded too. Runs alternate between the three; the median of
``--repeats`` is kept. Quality: questions-words analogy accuracy and WordSim-353 / SimLex-999
Spearman over the pairs in the vocabulary (gensim's rules), and over *all* pairs with
out-of-vocabulary words given their n-gram vectors (the OOV study: ``*_all_pairs_spearman``,
beside the share of pairs with an OOV word) — the fasttext package's vectors are read from its
``.bin`` by ``load_facebook_vectors`` (the same vectors, tested to 1e-6), so all three are scored
by the same code.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

from benchmarks.word2vec_vs_gensim import _timed

SETTINGS = {"vector_size": 100, "window": 5, "min_count": 5, "negative": 5, "sample": 1e-4,
            "alpha": 0.05, "epochs": 5, "min_n": 3, "max_n": 6, "bucket": 2_000_000}  # fmt: skip
CORPORA = ("ptb", "brown", "ptb_brown")
PEERS = ("fasttext", "gensim")
QUALITY = ("analogy_acc", "wordsim353_spearman", "simlex999_spearman", "wordsim353_all_pairs_spearman",
           "simlex999_all_pairs_spearman", "wordsim353_oov_pairs_pct", "simlex999_oov_pairs_pct")  # fmt: skip


def corpus_file(name: str, sentences=None) -> tuple[str, int]:
    """The corpus (named, or ``sentences``) as a text file, one sentence a line (written once to
    the temp dir), and its words."""
    from embeddings_jax.data import text

    sentences = text.load_corpus(name) if sentences is None else sentences
    path = os.path.join(tempfile.gettempdir(), f"embeddings_jax_fasttext_{name}.txt")
    if not os.path.exists(path):
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            f.writelines(" ".join(s) + "\n" for s in sentences)
        os.replace(path + ".tmp", path)
    return path, sum(len(s) for s in sentences)


def quality(kv, analogy: str | None, pair_files: dict | None = None) -> dict:
    """Analogy accuracy (``analogy=None``: NaN) and word-pair Spearman over the pairs in the
    vocabulary and over all pairs: OOV words from n-grams (FastTextKeyedVectors), or scored 0
    where the vectors have none (plain KeyedVectors, gensim's ``dummy4unknown``)."""
    from embeddings_jax.eval.analogy import evaluate_word_analogies
    from embeddings_jax.eval.word_similarity import default_pair_files, evaluate_word_pairs
    from embeddings_jax.vectors.fasttext import FastTextKeyedVectors

    acc = evaluate_word_analogies(kv, analogy).accuracy if analogy else float("nan")
    out = {"analogy_acc": acc}
    subwords = isinstance(kv, FastTextKeyedVectors)
    for name, path in (default_pair_files() if pair_files is None else pair_files).items():
        every = evaluate_word_pairs(kv, path, infer_oov=subwords, dummy4unknown=not subwords)
        try:
            out[f"{name}_spearman"] = evaluate_word_pairs(kv, path).spearman
        except ValueError:  # fewer than 2 pairs in the vocabulary
            out[f"{name}_spearman"] = float("nan")
        out[f"{name}_all_pairs_spearman"], out[f"{name}_oov_pairs_pct"] = every.spearman, every.oov_ratio
    return out


# ---------------------------------------------------------------- the three implementations
def _ours(path: str, sg: int, seed: int, settings: dict = SETTINGS):
    from embeddings_jax.data.text import LineSentence
    from embeddings_jax.models.word2vec import FastText

    t0 = time.perf_counter()
    model = FastText(sg=sg, seed=seed, ns_exponent=0.5, **settings)
    model.build_vocab(corpus_file=path)
    encoded = model.encode(LineSentence(path))
    vocab_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    model.train(encoded, epochs=1)  # warm-up: compiles the step
    warmup_s = time.perf_counter() - t1

    def run(seed):
        model.seed = seed
        model.reset_params()
        _, wall, cores = _timed(lambda: model.train(encoded))
        compile_s = max(warmup_s - wall / settings["epochs"], 0.0)  # the warm-up epoch less one epoch
        return {"words_per_second": model.last_train_timing["words_per_second"], "cores": cores,
                "compile_seconds": compile_s, "end_to_end_seconds": vocab_s + compile_s + wall}, model.wv  # fmt: skip

    return run, {"vocab_seconds": vocab_s, "chunk_size": model.chunk_size, "vocab_size": len(model.vocab),
                 "trained_buckets": int(model.trained_buckets.size),
                 "subword_slots": model.step_config.subword_slots}  # fmt: skip


def _gensim(path: str, sg: int, workers: int, settings: dict = SETTINGS):
    from gensim.models import FastText as G

    from embeddings_jax.vectors.fasttext import FastTextKeyedVectors

    def run(seed):
        t0 = time.perf_counter()
        m = G(sg=sg, seed=seed, workers=workers, ns_exponent=0.5, **settings)
        m.build_vocab(corpus_file=path)
        vocab_s = time.perf_counter() - t0
        _, wall, cores = _timed(lambda: m.train(corpus_file=path, total_examples=m.corpus_count,
                                                total_words=m.corpus_total_words, epochs=settings["epochs"]))  # fmt: skip
        kv = FastTextKeyedVectors(m.wv.index_to_key, m.wv.vectors_vocab, m.wv.vectors_ngrams,
                                  settings["min_n"], settings["max_n"], settings["bucket"])  # fmt: skip
        return {"words_per_second": m.corpus_total_words * settings["epochs"] / wall, "cores": cores,
                "vocab_seconds": vocab_s, "end_to_end_seconds": vocab_s + wall}, kv  # fmt: skip

    return run


def _fasttext(path: str, sg: int, workers: int, n_words: int, settings: dict = SETTINGS):
    import fasttext

    from embeddings_jax.models.word2vec import load_facebook_vectors

    s = settings
    args = {"model": "skipgram" if sg else "cbow", "dim": s["vector_size"], "ws": s["window"],
            "minCount": s["min_count"], "neg": s["negative"], "t": s["sample"], "lr": s["alpha"],
            "minn": s["min_n"], "maxn": s["max_n"], "bucket": s["bucket"], "thread": workers, "verbose": 0}  # fmt: skip

    def run(seed):
        _, setup, _ = _timed(lambda: fasttext.train_unsupervised(path, epoch=0, **args))
        model, wall, cores = _timed(lambda: fasttext.train_unsupervised(path, epoch=s["epochs"], **args))
        with tempfile.TemporaryDirectory() as d:
            model.save_model(os.path.join(d, "model.bin"))
            kv = load_facebook_vectors(os.path.join(d, "model.bin"))
        train = max(wall - setup, 1e-9)
        return {"words_per_second": n_words * s["epochs"] / train, "cores": cores, "vocab_seconds": setup,
                "end_to_end_seconds": wall}, kv  # fmt: skip

    return run


def compare(name: str, sg: int, repeats: int, seeds: int, workers: int, analogy: str):
    """Alternating timed runs of the three, then ``seeds`` seeds' quality (the first ones timed)."""
    path, n_words = corpus_file(name)
    ours_run, ours = _ours(path, sg, 1)
    runs = {"ours": ours_run, "gensim": _gensim(path, sg, workers), "fasttext": _fasttext(path, sg, workers, n_words)}
    timed = {k: [] for k in runs}
    q = {k: [] for k in runs}
    for r in range(max(repeats, seeds)):
        for impl, run in runs.items():
            res, kv = run(1 + r)
            if r < repeats:
                timed[impl].append(res)
            if r < seeds:
                q[impl].append(quality(kv, analogy))
    out = {"ours": ours, "gensim": {}, "fasttext": {}}
    for impl in runs:
        for key in timed[impl][0]:
            out[impl][key] = statistics.median(x[key] for x in timed[impl])
        out[impl]["runs_words_per_second"] = [x["words_per_second"] for x in timed[impl]]
        for key in QUALITY:
            out[impl][key] = statistics.fmean(x[key] for x in q[impl])
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpora", default=",".join(CORPORA), help="comma-separated: ptb, brown, ptb_brown, "
                    "fra_eng, flickr8k or text files")  # fmt: skip
    ap.add_argument("--variants", default="sg,cbow")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--workers", type=int, default=os.cpu_count(), help="fastText threads, gensim workers")
    args = ap.parse_args(argv)

    from benchmarks.common import write_result
    from embeddings_jax.data import text

    analogy = str(text.analogy_path())
    metrics, peers, rows = {}, {p: {} for p in PEERS}, []
    command = "python -m benchmarks.fasttext_vs_peers " + " ".join(sys.argv[1:] if argv is None else argv)
    for name in args.corpora.split(","):
        for variant in args.variants.split(","):
            if variant not in ("sg", "cbow"):
                raise SystemExit(f"--variants takes sg and cbow, got {variant!r}")
            print(f"{name} {variant}: ", end="", flush=True)
            out = compare(name, int(variant == "sg"), args.repeats, args.seeds, args.workers, analogy)
            key = f"{os.path.basename(name).split('.')[0]}_{variant}"
            metrics.update({f"{key}_{k}": x for k, x in out["ours"].items()})
            for peer in PEERS:
                peers[peer].update({f"{key}_{k}": x for k, x in out[peer].items()})
                metrics[f"{key}_words_per_second_speedup_vs_{peer}"] = (
                    out["ours"]["words_per_second"] / out[peer]["words_per_second"])
                metrics[f"{key}_end_to_end_speedup_vs_{peer}"] = (
                    out[peer]["end_to_end_seconds"] / out["ours"]["end_to_end_seconds"])
                for q in QUALITY:
                    if not q.endswith("_pct"):
                        metrics[f"{key}_{q}_delta_vs_{peer}"] = out["ours"][q] - out[peer][q]
            rows.append((key, out))
            print(", ".join(f"{metrics[f'{key}_words_per_second_speedup_vs_{p}']:.2f}x {p}" for p in PEERS), flush=True)
            config = dict(SETTINGS, ns_exponent=0.5, cells=[k for k, _ in rows], repeats=args.repeats,
                          seeds=args.seeds, peer_threads=args.workers)  # fmt: skip
            path = write_result("fasttext_vs_peers", config=config, metrics=metrics, peers=peers, command=command.strip())
    print("\n| cell | ours words/s | fasttext | gensim | vs fasttext | vs gensim | analogy ours / fasttext / gensim "
          "| WS353 all pairs ours / fasttext / gensim |\n|---|---:|---:|---:|---:|---:|---|---|")
    for key, o in rows:
        w = {k: o[k]["words_per_second"] for k in o}
        a = " / ".join(f"{o[k]['analogy_acc']:.1%}" for k in ("ours", "fasttext", "gensim"))
        s = " / ".join(f"{o[k]['wordsim353_all_pairs_spearman']:.3f}" for k in ("ours", "fasttext", "gensim"))
        print(f"| {key} | {w['ours']:,.0f} | {w['fasttext']:,.0f} | {w['gensim']:,.0f} | "
              f"{w['ours'] / w['fasttext']:.2f}x | {w['ours'] / w['gensim']:.2f}x | {a} | {s} |")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
