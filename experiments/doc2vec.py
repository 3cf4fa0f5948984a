"""Doc2Vec (Le & Mikolov, 2014) beside gensim's Doc2Vec: Brown genre classification and Flickr8k
caption retrieval, PV-DBOW and PV-DM, with mean word2vec / fastText vectors and BERT as references.

Protocols. *Brown*: the 500 files are the documents; their vectors are learnt without labels,
then softmax regression on the unit-normalised vectors (`eval.classification.cross_validate`:
stratified 5-fold over the 15 genres of NLTK's ``cats.txt``) gives accuracy and macro-F1.
*Flickr8k*: vectors are learnt from the train split's 30,000 captions; the test split's 5,000
captions, never trained on, get ``infer_vector`` vectors (the model's epochs and learning rate);
every test caption queries all the others by cosine and the 4 other captions of its image are
the hits (`eval.retrieval.self_retrieval_metrics`), the protocol of ``embeddings-jax bert``, whose
zero-shot MiniLM rows (``results/bert.json``) join the table. Ours and gensim's share every setting
(``benchmarks.doc2vec_vs_gensim.SETTINGS``) and each seed; the word-vector rows are skip-gram
Word2Vec and FastText (5 epochs) trained on the same text, a document being the mean of its unit
word vectors. Speed: training words/s (ours after the warm-up that compiles the step).
``study_chunk_sizes`` adds Brown rows of ours with other chunk sizes: PV-DBOW's default puts
about two mean documents in a chunk (so a long document's vector takes its whole document's
gradient in one step), and the study row shows it without; PV-DM's default does not, and the
study row shows it with.

Config args (comma-separated): ``runlocal`` (a seconds-long run: 60 Brown files cut to 300 words,
200 Flickr8k images, 2 epochs, one seed, no peers).
"""

from __future__ import annotations

import os
import pathlib

import ml_collections
import numpy as np

from benchmarks import doc2vec_vs_gensim as bench
from embeddings_jax.config import parse_arg
from embeddings_jax.data.captions import load_flickr8k
from embeddings_jax.data.documents import TaggedDocument, load_brown_documents
from embeddings_jax.eval.classification import cross_validate
from embeddings_jax.eval.retrieval import self_retrieval_metrics
from embeddings_jax.models.word2vec import FastText, Word2Vec
from embeddings_jax.train.logging import progress
from experiments.reports import doc2vec as report


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    args = parse_arg(arg, {"runlocal"}, "doc2vec")
    c = ml_collections.ConfigDict()
    c.tasks = ("brown", "flickr8k")  # genre classification, caption retrieval
    c.variants = ("dbow", "dm")  # PV-DBOW, PV-DM
    c.seeds = (0, 1, 2, 3, 4)  # every row is the mean over these seeds
    c.peers = ("gensim",)  # gensim's Doc2Vec with the same settings ("": none)
    c.word_vectors = ("word2vec", "fasttext")  # mean-of-word-vector rows
    c.word_vector_epochs = 5  # their epochs (word2vec's default)
    c.study_chunk_sizes = ml_collections.ConfigDict()  # extra Brown rows of ours with these chunk sizes
    c.study_chunk_sizes.dbow = 64  # PV-DBOW without whole-document chunks (0: no row)
    c.study_chunk_sizes.dm = 8192  # PV-DM with them (0: no row)
    s = bench.SETTINGS
    c.settings = ml_collections.ConfigDict()  # the training settings ours and gensim's share
    c.settings.vector_size = s["vector_size"]  # dimension of the vectors
    c.settings.window = s["window"]  # maximum context distance
    c.settings.negative = s["negative"]  # negatives per positive
    c.settings.sample = s["sample"]  # subsampling threshold of frequent words
    c.settings.alpha = s["alpha"]  # initial learning rate
    c.settings.min_alpha = s["min_alpha"]  # final learning rate (linear decay)
    c.settings.epochs = s["epochs"]  # passes over the documents (and infer_vector's epochs)
    c.min_count = ml_collections.ConfigDict()  # vocabulary threshold per task
    c.min_count.brown = bench.MIN_COUNT["brown"]  # words seen fewer times in Brown are dropped
    c.min_count.flickr8k = bench.MIN_COUNT["flickr8k"]  # the same in the Flickr8k train captions
    c.brown_limit = 0  # first N Brown files (0: all 500)
    c.brown_words = 0  # each file cut to N words (0: whole)
    c.flickr_images = 0  # first N images of each split (0: all)
    c.folds = 5
    c.workers = 0  # gensim workers (0: every core)
    c.write_results = True
    if "runlocal" in args:
        c.update(seeds=(0,), peers=(), brown_limit=60, brown_words=300, flickr_images=200,
                 word_vectors=("word2vec",), word_vector_epochs=1, write_results=False)
        c.study_chunk_sizes.update(dbow=0, dm=0)
        c.settings.epochs = 2
    return c


def task_data(config, task: str):
    """``(train documents, evaluation)``: Brown's documents and genre labels, or Flickr8k's train
    captions and the test captions with their relevant lists."""
    if task == "brown":
        b = load_brown_documents()
        n = config.brown_limit or len(b.documents)
        words = [d[: config.brown_words] if config.brown_words else d for d in b.documents[:n]]
        genres = sorted(set(b.genres[:n]))
        return [TaggedDocument(w, [i]) for i, w in enumerate(words)], np.array([genres.index(g) for g in b.genres[:n]])
    test = load_flickr8k("test")
    test = test.first_images(config.flickr_images) if config.flickr_images else test
    train = bench.caption_tokens("train", config.flickr_images)
    return [TaggedDocument(w, [i]) for i, w in enumerate(train)], (bench.caption_tokens("test", config.flickr_images),
                                                                    test.relevant())


def evaluate(config, task: str, evaluation, vectors_of) -> dict:
    """Brown: cross-validated genre accuracy / macro-F1 of the training documents' vectors;
    Flickr8k: retrieval metrics of the test captions' vectors. ``vectors_of(test_docs or None)``."""
    if task == "brown":
        v = vectors_of(None)
        scores = cross_validate(v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12), evaluation,
                                config.folds, seed=0)  # fmt: skip
        return {k: float(np.mean(x)) for k, x in scores.items()}
    captions, relevant = evaluation
    return {k.replace("@", "_at_"): x for k, x in self_retrieval_metrics(vectors_of(captions), relevant).items()}


def document_rows(config, task, docs, evaluation, seed, settings, workers):
    """Every row of one task and seed: ``{row name: {metric: value}}``."""
    rows = {}
    for variant in config.variants:
        engines = {"ours": {}}
        study = config.study_chunk_sizes.get(variant, 0)
        if task == "brown" and study:
            engines[f"ours_chunk_{study}"] = {"chunk_size": study}
        for name, engine in engines.items():
            model, timing = bench.ours(docs, variant, settings, seed, **engine)
            rows[f"{name}_{variant}"] = {**timing, **evaluate(config, task, evaluation, _ours_vectors(model))}
        for peer in config.peers:
            model, timing = bench.gensim(docs, variant, settings, seed, workers)
            rows[f"{peer}_{variant}"] = {**timing, **evaluate(config, task, evaluation, _gensim_vectors(model))}
    for kind in config.word_vectors:
        cls = {"word2vec": Word2Vec, "fasttext": FastText}[kind]
        w = {k: v for k, v in settings.items() if k != "epochs"}
        model = cls([d.words for d in docs], sg=1, seed=seed, epochs=config.word_vector_epochs, **w)
        rows[f"{kind}_mean"] = evaluate(config, task, evaluation, _mean_vectors(model.wv, docs))
    return rows


def _ours_vectors(model):
    return lambda test: model.dv.vectors if test is None else model.infer_vectors(test)


def _gensim_vectors(model):
    return lambda test: model.dv.vectors if test is None else np.stack([model.infer_vector(d) for d in test])


def _mean_vectors(kv, docs):
    def mean(words):
        rows = [kv.get_vector(w, norm=True) for w in words if w in kv]
        return np.mean(rows, 0) if rows else np.zeros(kv.vector_size, np.float32)

    return lambda test: np.stack([mean(d) for d in ([d.words for d in docs] if test is None else test)])


def run(config, workdir: str) -> dict:
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    workers = config.workers or os.cpu_count()
    results, sizes = {}, {}
    for task in config.tasks:
        docs, evaluation = task_data(config, task)
        sizes[task] = {"documents": len(docs), "words": sum(len(d.words) for d in docs)}
        settings = dict(config.settings, min_count=config.min_count[task])
        for seed in progress(config.seeds, desc=f"doc2vec {task}"):
            results[(task, seed)] = document_rows(config, task, docs, evaluation, seed, settings, workers)
    return report.write(config, results, sizes, workdir)
