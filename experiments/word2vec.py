"""word2vec: skip-gram / CBOW x negative sampling / hierarchical softmax, beside gensim.

    embeddings-jax word2vec                      # built-in synthetic world, ~20 s on 2 CPU cores
    embeddings-jax word2vec --config runlocal    # a few seconds (tests, notebook)
    embeddings-jax word2vec --config ptb_brown   # paper-style run behind results/word2vec.md

Each run trains the configured variants (and their gensim twins) over the configured seeds and
reports analogy accuracy (total / semantic / syntactic) and word-pair Spearman correlations;
:mod:`experiments.reports.word2vec` writes ``metrics.json``, ``neighbours.md``, the vectors
(word2vec text format) and a 2-D PCA plot to ``workdir``.
"""

from __future__ import annotations

import json
import pathlib
import time

import ml_collections

from embeddings_jax.config import parse_arg
from embeddings_jax.data import synthetic, text
from embeddings_jax.eval.analogy import evaluate_word_analogies
from embeddings_jax.eval.word_similarity import default_pair_files, evaluate_word_pairs
from embeddings_jax.models.word2vec import VARIANTS, Word2Vec
from embeddings_jax.vectors import KeyedVectors
from experiments.common import command_line
from experiments.reports import word2vec as report


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    args = parse_arg(arg, ("runlocal", "ptb_brown"), "word2vec")
    c = ml_collections.ConfigDict()
    c.corpus = "synthetic"  # synthetic | ptb | brown | ptb_brown | path to a text file
    c.synthetic_sentences = 20_000  # sentences of the synthetic-world corpus
    c.analogy_file = ""  # "" = the synthetic world's file, or questions-words.txt for real text
    c.pair_files = ""  # comma-separated word-pair files; "" = WordSim-353/SimLex-999 from gensim
    c.variants = "sgns"  # comma-separated subset of sgns,cbowns,sghs,cbowhs
    c.compare_gensim = False  # also train gensim with identical settings (needs gensim)
    c.gensim_workers = 2  # gensim's worker threads when compare_gensim
    c.vector_size = 50
    c.window = 5
    c.min_count = 5
    c.sample = 1e-3
    c.negative = 5
    c.ns_exponent = 0.75
    c.cbow_mean = 1
    c.alpha = 0.025
    c.min_alpha = 0.0001
    c.epochs = 10
    c.seed = 1
    c.seeds = ""  # comma-separated: every variant (and twin) per seed, reported as mean ± s.d.
    c.chunk_size = 0  # centre words per jitted step (0: automatic)
    c.negative_group = 8  # consecutive pairs sharing one draw of negatives
    c.neighbour_words = "france,tokyo,king,horse,went"  # words the report lists neighbours of
    c.plot_words = (  # words drawn in the 2-D PCA plot
        "france,paris,franc,french,japan,tokyo,yen,japanese,germany,berlin,mark,german,"
        "king,queen,prince,princess,father,mother,dog,dogs,horse,horses"
    )
    c.results_dir = ""  # when set, writes word2vec.{md,json,png} there (the committed results)
    c.merge_metrics = ""  # metrics.json of an earlier run (other variants) to report alongside
    if "runlocal" in args:
        c.synthetic_sentences = 8_000
        c.vector_size = 32
        c.epochs = 15
    if "ptb_brown" in args:
        c.corpus = "ptb_brown"
        c.variants = "sgns,cbowns,sghs,cbowhs"
        c.compare_gensim = True
        c.vector_size = 100
        c.sample = 1e-4
        c.epochs = 5
        c.seeds = "1,2,3,4,5"
        c.neighbour_words = "money,president,water,good,run,city"
        c.plot_words = (
            "man,woman,king,queen,boy,girl,father,mother,son,daughter,brother,sister,"
            "monday,friday,january,march,one,two,three,dollar,money,stock,market,water,food"
        )
        c.results_dir = "experiments/results"
    return c


def _load(config, workdir: pathlib.Path):
    """``(sentences, analogy file)`` of the configured corpus."""
    if config.corpus == "synthetic":
        world = synthetic.make_world(config.seed)
        sentences = synthetic.generate_corpus(world, config.synthetic_sentences, config.seed)
        analogy = config.analogy_file or synthetic.write_analogies(world, workdir / "analogies.txt")
    else:
        sentences = text.load_corpus(config.corpus)
        analogy = config.analogy_file or text.analogy_path()
    return sentences, pathlib.Path(analogy)


def _pair_files(config) -> dict[str, pathlib.Path]:
    if config.pair_files:
        return {pathlib.Path(p).stem: pathlib.Path(p) for p in config.pair_files.split(",")}
    return default_pair_files() if config.corpus != "synthetic" else {}


def _evaluate(kv, analogy, pairs) -> dict:
    a = evaluate_word_analogies(kv, analogy)
    out = {"analogy_acc": a.accuracy, "analogy_semantic": a.semantic,
           "analogy_syntactic": a.syntactic, "analogy_answered": a.n_answered,
           "analogy_sections": a.summary()["sections"]}  # fmt: skip
    for name, path in pairs.items():
        r = evaluate_word_pairs(kv, path)
        out[f"{name}_spearman"], out[f"{name}_oov_pct"] = r.spearman, r.oov_ratio
    return out


def _settings(config, variant: str, seed: int) -> dict:
    """The gensim keyword arguments both implementations train ``variant`` with."""
    sg, hs, negative = VARIANTS[variant]
    return {"vector_size": config.vector_size, "window": config.window,
            "min_count": config.min_count, "sample": config.sample, "sg": sg, "hs": hs,
            "negative": negative, "ns_exponent": config.ns_exponent,
            "cbow_mean": config.cbow_mean, "alpha": config.alpha, "min_alpha": config.min_alpha,
            "epochs": config.epochs, "seed": seed}  # fmt: skip


def _train_ours(config, variant: str, seed: int, sentences):
    """``(vectors, timings)`` of our model."""
    t0 = time.perf_counter()
    model = Word2Vec(chunk_size=config.chunk_size or None, negative_group=config.negative_group,
                     progress=True, **_settings(config, variant, seed))  # fmt: skip
    model.build_vocab(sentences)
    t1 = time.perf_counter()
    model.train(sentences)
    stats = model.last_train_timing
    return model.wv, {"vocab_seconds": t1 - t0, "train_seconds": stats["seconds"],
                      "words_per_second": stats["words_per_second"], "vocab_size": len(model.vocab)}  # fmt: skip


def _train_gensim(config, variant: str, seed: int, sentences):
    """``(vectors, timings)`` of gensim's twin, same settings."""
    from gensim.models import Word2Vec as GensimWord2Vec

    t0 = time.perf_counter()
    m = GensimWord2Vec(workers=config.gensim_workers, **_settings(config, variant, seed))
    m.build_vocab(sentences)
    t1 = time.perf_counter()
    m.train(sentences, total_examples=m.corpus_count, epochs=config.epochs)
    t2 = time.perf_counter()
    words = sum(len(s) for s in sentences) * config.epochs
    return KeyedVectors(m.wv.index_to_key, m.wv.vectors), {
        "vocab_seconds": t1 - t0, "train_seconds": t2 - t1, "words_per_second": words / (t2 - t1),
    }  # fmt: skip


def run(config: ml_collections.ConfigDict, workdir: str) -> dict:
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    variants = [v.strip() for v in config.variants.split(",") if v.strip()]
    for v in variants:
        if v not in VARIANTS:
            raise ValueError(f"unknown variant {v!r}; choose from {sorted(VARIANTS)}")
    sentences, analogy = _load(config, workdir)
    pairs = _pair_files(config)
    n_words = sum(len(s) for s in sentences)
    print(
        f"corpus {config.corpus}: {len(sentences)} sentences, {n_words} words; analogies {analogy}"
    )
    metrics: dict = {"corpus": config.corpus, "corpus_words": n_words}
    if config.merge_metrics:
        metrics.update(json.loads(pathlib.Path(config.merge_metrics).read_text()))
    # Every command behind these metrics, merged runs first, for the Reproduce section.
    metrics["commands"] = [*metrics.get("commands", []), command_line()]
    seeds = [int(x) for x in config.seeds.split(",") if x.strip()] or [config.seed]
    trainers = {"ours": _train_ours}
    if config.compare_gensim:
        trainers["gensim"] = _train_gensim
    kvs = {}  # model name -> the vectors of its first seed
    for v in variants:
        runs = {impl: [] for impl in trainers}
        for seed in seeds:
            for impl, train in trainers.items():
                kv, timings = train(config, v, seed, sentences)
                res = _evaluate(kv, analogy, pairs) | timings
                print(report.run_line(impl, v, seed, res, pairs))
                runs[impl].append(res)
                kvs.setdefault(v if impl == "ours" else f"{impl}_{v}", kv)
        for impl, results in runs.items():
            metrics[v if impl == "ours" else f"{impl}_{v}"] = report.aggregate(results, seeds)
    report.write(config, metrics, kvs, variants[0], analogy, workdir)
    return metrics
