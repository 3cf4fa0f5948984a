"""fastText (Bojanowski et al., 2017) beside word2vec, the fasttext package and gensim's FastText:
training speed, analogies, word pairs, and an out-of-vocabulary study.

Every implementation reads the same corpus file with fastText's settings for word vectors
(``benchmarks.fasttext_vs_peers.SETTINGS``: 100-d, window 5, negatives from counts^0.5, sample
1e-4, learning rate 0.05, 5 epochs, 3..6-character n-grams in 2M buckets). Word-pair sets are
scored twice: over the pairs whose words are in the vocabulary (gensim's rule), and over *all*
pairs, out-of-vocabulary words taking their n-gram vectors (word2vec, which has none, scores
those pairs 0). The OOV study raises ``min_count`` so that a large share of WordSim-353 and
SimLex-999 words is never seen in training.

Config args (comma-separated): ``runlocal`` (the synthetic world, seconds, ours only), ``nopeers``
(ours only: word2vec and FastText).
"""

from __future__ import annotations

import os
import pathlib

import ml_collections

from benchmarks import fasttext_vs_peers as bench
from embeddings_jax.config import parse_arg
from embeddings_jax.data import synthetic, text
from embeddings_jax.data.text import LineSentence
from embeddings_jax.models.word2vec import Word2Vec
from embeddings_jax.train.logging import progress
from experiments.reports import fasttext as report

IMPLEMENTATIONS = ("word2vec", "ours", "fasttext", "gensim")  # "ours": embeddings_jax FastText


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    args = parse_arg(arg, {"runlocal", "nopeers"}, "fasttext")
    c = ml_collections.ConfigDict()
    c.corpus = "ptb_brown"  # ptb | brown | ptb_brown | fra_eng | flickr8k | a text file
    c.variants = ("sg", "cbow")  # skip-gram and/or CBOW
    c.min_counts = (5, 50)  # vocabularies: fastText's default, and one that leaves many test words unseen
    c.implementations = IMPLEMENTATIONS if "nopeers" not in args else IMPLEMENTATIONS[:2]  # rows of each table
    s = bench.SETTINGS
    c.settings = ml_collections.ConfigDict()  # the training settings all implementations share
    c.settings.vector_size = s["vector_size"]  # dimension of the vectors
    c.settings.window = s["window"]  # maximum context distance
    c.settings.min_count = s["min_count"]  # replaced by each of min_counts
    c.settings.negative = s["negative"]  # negatives per positive pair (drawn from counts^0.5)
    c.settings.sample = s["sample"]  # subsampling threshold of frequent words
    c.settings.alpha = s["alpha"]  # initial learning rate, decayed linearly to 0
    c.settings.epochs = s["epochs"]  # passes over the corpus
    c.settings.min_n = s["min_n"]  # shortest character n-gram of <word>
    c.settings.max_n = s["max_n"]  # longest character n-gram
    c.settings.bucket = s["bucket"]  # hashed n-gram rows
    c.seed = 1
    c.workers = 0  # peer threads (0: every core)
    c.write_results = True
    if "runlocal" in args:
        c.corpus = "synthetic"
        c.implementations = IMPLEMENTATIONS[:2]
        c.min_counts = (2, 20)
        c.settings.update(epochs=1, bucket=20_000, vector_size=32)
        c.write_results = False
    return c


def corpus(config, workdir: pathlib.Path):
    """``(text file, words, analogy file, word-pair files)`` of the configured corpus."""
    if config.corpus != "synthetic":
        path, n_words = bench.corpus_file(config.corpus)
        return path, n_words, str(text.analogy_path()), None
    world = synthetic.make_world(0)
    analogies = synthetic.write_analogies(world, workdir / "analogies.txt")
    path, n_words = bench.corpus_file("synthetic", synthetic.generate_corpus(world, 3000, seed=0))
    pairs = workdir / "pairs.tsv"  # a handful of pairs over the world's words
    pairs.write_text("paris\tfrance\t9\ntokyo\tjapan\t9\nking\tqueen\t8\nparis\ttokyo\t6\nking\tparis\t1\n"
                     "queen\tjapan\t1\nkings\tqueens\t8\nfrance\tqueen\t1\n")
    return path, n_words, str(analogies), {"synthetic_pairs": pairs}


def train(impl: str, path: str, n_words: int, sg: int, settings: dict, seed: int, workers: int):
    """``(timing dict, vectors)`` of one implementation."""
    if impl == "word2vec":
        w2v = {k: v for k, v in settings.items() if k not in ("min_n", "max_n", "bucket")}
        model = Word2Vec(sg=sg, seed=seed, ns_exponent=0.5, **w2v)
        model.build_vocab(corpus_file=path)
        encoded = model.encode(LineSentence(path))
        model.train(encoded, epochs=1)  # warm-up: compiles the step
        model.reset_params()
        model.train(encoded)
        return {"words_per_second": model.words_per_second}, model.wv
    run = {"ours": lambda: bench._ours(path, sg, seed, settings)[0],
           "gensim": lambda: bench._gensim(path, sg, workers, settings),
           "fasttext": lambda: bench._fasttext(path, sg, workers, n_words, settings)}[impl]()
    return run(seed)


def run(config, workdir: str) -> dict:
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    path, n_words, analogy, pair_files = corpus(config, workdir)
    workers = config.workers or os.cpu_count()
    cells = [(v, m, i) for v in config.variants for m in config.min_counts for i in config.implementations]
    rows = {}
    for variant, min_count, impl in progress(cells, desc="fasttext"):
        settings = dict(config.settings, min_count=min_count)
        timing, kv = train(impl, path, n_words, int(variant == "sg"), settings, config.seed, workers)
        rows[(variant, min_count, impl)] = {"vocab_size": len(kv), **timing,
                                            **bench.quality(kv, analogy, pair_files)}  # fmt: skip
    return report.write(config, rows, {"corpus_words": n_words}, workdir)
