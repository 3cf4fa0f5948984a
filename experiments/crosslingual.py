"""Cross-lingual word mapping (Mikolov et al., 2013; Conneau et al., 2018; Artetxe et al., 2018).

Word2vec vectors are trained on each side of a corpus of two languages, and the source space
is mapped onto the target space; bilingual lexicon induction on held-out FreeDict headwords
scores each method: the least-squares translation matrix, orthogonal Procrustes, CSLS
retrieval, self-learning refinement, VecMap's map, and VecMap's unsupervised mode (no
dictionary at all). precision@k is the share of test source words with a gold translation in
their top k (the MUSE / VecMap definition).

Config args (comma-separated): ``runlocal`` (seconds), ``de`` (English-German on Multi30k
instead of English-French on Tatoeba). ``--config.test_dictionary=FILE`` scores a dictionary
file instead of the held-out part of the training dictionary (then every registered pair fits).
"""

from __future__ import annotations

import pathlib

import ml_collections

from embeddings_jax.config import parse_arg
from embeddings_jax.data.dictionaries import load_dictionary, split_dictionary, tokenize_corpus
from embeddings_jax.data.translation import load_fra_eng, load_multi30k
from embeddings_jax.models.crosslingual import CrossLingualMapping, SelfLearning
from embeddings_jax.models.word2vec import Word2Vec
from experiments.reports import crosslingual as report

# Rows of the table: (name, method, retrieval, supervised, refinement iterations; None: the config's).
ROWS = (
    ("least squares + NN (Mikolov 2013)", "least_squares", "nn", True, 0),
    ("Procrustes + NN", "procrustes", "nn", True, 0),
    ("Procrustes + CSLS", "procrustes", "csls", True, 0),
    ("Procrustes + CSLS + refinement", "procrustes", "csls", True, None),
    ("VecMap + CSLS", "vecmap", "csls", True, 0),
    ("VecMap + CSLS + refinement", "vecmap", "csls", True, None),
    ("VecMap unsupervised + CSLS", "vecmap", "csls", False, None),
)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    args = parse_arg(arg, {"runlocal", "de"}, "crosslingual")
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.pair = "en-de" if "de" in args else "en-fr"  # FreeDict language pair (en-fr, en-de)
    c.corpus = "multi30k" if "de" in args else "fra_eng"  # parallel corpus whose two sides train the two vector sets
    c.max_sentences = 0  # sentence pairs read (0: all)
    c.word2vec = ml_collections.ConfigDict(  # the monolingual word2vec settings of both languages
        {"vector_size": 300, "window": 5, "min_count": 3, "sg": 1, "negative": 10, "sample": 1e-4,
         "epochs": 10})
    c.test_fraction = 0.2  # of the dictionary's source words, held out (split by word)
    c.test_dictionary = ""  # a TSV file to score instead of the held-out part
    c.csls_k = 10  # neighbours of the CSLS hubness correction
    c.refine_iterations = 10  # Procrustes refinement rounds on mutual nearest neighbours
    c.init_vocab = 2500  # unsupervised initialisation: most frequent words matched
    c.self_learning_vocab = 5000  # most frequent words the self-learning dictionary is induced from
    c.unsupervised_iterations = 100  # maximum self-learning rounds of the unsupervised mapping
    c.keep_prob = 0.1
    c.patience = 10
    c.examples = (  # source words whose translations the report lists
        "one", "house", "dog", "water", "happy", "quickly", "king", "eat")
    c.write_results = True
    if "runlocal" in args:
        c.update(max_sentences=20000, refine_iterations=2, init_vocab=500, self_learning_vocab=1000,
                 unsupervised_iterations=4, patience=1, write_results=False)
        c.word2vec.update(vector_size=50, epochs=1)
    return c


def load_sides(config) -> tuple[list[list[str]], list[list[str]]]:
    """Tokenised (source, target) sentences of the configured corpus."""
    if config.corpus == "fra_eng":
        src, trg = load_fra_eng("all")
    elif config.corpus == "multi30k":
        src, trg = load_multi30k("train", "en", config.pair.split("-")[1])
    else:
        raise ValueError(f"corpus must be 'fra_eng' or 'multi30k', got {config.corpus!r}")
    n = config.max_sentences or None
    return tokenize_corpus(src[:n]), tokenize_corpus(trg[:n])


def run(config, workdir: str) -> dict:
    workdir = pathlib.Path(workdir)
    src_sentences, trg_sentences = load_sides(config)
    w2v = dict(config.word2vec, seed=config.seed + 1, progress=True)
    source, target = Word2Vec(src_sentences, **w2v).wv, Word2Vec(trg_sentences, **w2v).wv

    pairs = load_dictionary(config.pair)
    if config.test_dictionary:
        train_pairs, test_pairs = pairs, load_dictionary(config.test_dictionary)
    else:
        train_pairs, test_pairs = split_dictionary(pairs, config.test_fraction, config.seed)
    rows, best = {}, None
    for name, method, retrieval, supervised, refine in ROWS:
        m = CrossLingualMapping(source, target, method, retrieval, config.csls_k, config.seed)
        if supervised:
            m.fit(train_pairs, refine=config.refine_iterations if refine is None else refine,
                  self_learning=SelfLearning(vocab=config.self_learning_vocab))
        else:
            m.fit_unsupervised(config.init_vocab, SelfLearning(
                vocab=config.self_learning_vocab, max_iterations=config.unsupervised_iterations,
                keep_prob=config.keep_prob, patience=config.patience))
        rows[name] = {**m.evaluate(test_pairs), "iterations": len(m.history)}
        if best is None or rows[name]["precision@1"] > rows[best[0]]["precision@1"]:
            best = (name, m)
    words = [w for w in config.examples if w in source.key_to_index]
    examples = dict(zip(words, best[1].translate(words, topn=3))) if words else {}
    stats = {"source_vocab": len(source), "target_vocab": len(target),
             "train_pairs": len(train_pairs), "test_pairs": len(test_pairs)}
    return report.write(config, rows, best[0], examples, stats, workdir)
