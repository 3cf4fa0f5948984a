"""Doc2Vec training speed: embeddings_jax beside gensim's Doc2Vec, same documents, same settings,
same run.

    python -m benchmarks.doc2vec_vs_gensim                          # Brown and Flickr8k; DBOW, DM, DBOW+words
    python -m benchmarks.doc2vec_vs_gensim --tasks brown --variants dm --repeats 1
    python -m benchmarks.doc2vec_vs_gensim --tasks flickr8k --variants dm_concat

Documents: the 500 Brown Corpus files (long documents, 2,300 words on average) and the 30,000
Flickr8k train-split captions (short ones, 12 words). Settings (both): gensim's Doc2Vec defaults
but 20 epochs: vector_size 100, window 5, negative 5, sample 1e-3, alpha 0.025 to 0.0001;
min_count 5 (Brown) or 2 (captions); gensim with ``workers`` = every core, ours one device (its
XLA threads span the cores). Speed is raw words per second of ``train`` (vocabulary building
apart; ours after a one-epoch warm-up that compiles the step). Runs alternate between the two;
the median of ``--repeats`` is kept.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

from benchmarks.word2vec_vs_gensim import _timed

SETTINGS = {"vector_size": 100, "window": 5, "negative": 5, "sample": 1e-3, "alpha": 0.025,
            "min_alpha": 0.0001, "epochs": 20}  # fmt: skip
MIN_COUNT = {"brown": 5, "flickr8k": 2}
TASKS = tuple(MIN_COUNT)
VARIANTS = {"dbow": {"dm": 0}, "dm": {"dm": 1}, "dbow_words": {"dm": 0, "dbow_words": 1},
            "dm_concat": {"dm": 1, "dm_concat": 1}}
DEFAULT_VARIANTS = ("dbow", "dm", "dbow_words")


def documents(task: str, limit: int = 0):
    """``TaggedDocument``s a task trains on, tagged by position: the Brown files, or the
    Flickr8k train captions (lower-cased, punctuation split off). ``limit``: the first ones."""
    from embeddings_jax.data.documents import TaggedDocument, load_brown_documents

    if task == "brown":
        words = load_brown_documents().documents
    elif task == "flickr8k":
        words = caption_tokens("train")
    else:
        raise ValueError(f"unknown task {task!r}; choose from {TASKS}")
    words = words[:limit] if limit else words
    return [TaggedDocument(w, [i]) for i, w in enumerate(words)]


def caption_tokens(split: str, images: int = 0) -> list[list[str]]:
    """Flickr8k captions of a split (its first ``images`` images; 0: all) as token lists."""
    from embeddings_jax.data.captions import load_flickr8k
    from embeddings_jax.data.translation import preprocess

    captions = load_flickr8k(split)
    captions = captions.first_images(images) if images else captions
    return [preprocess(s).split() for s in captions.captions]


def ours(docs, variant: str, settings: dict, seed: int, **engine):
    """Our model trained on ``docs`` and its timing: vocabulary, a one-epoch warm-up (compiles
    the step), then the timed training from fresh tables."""
    from embeddings_jax.models.word2vec import Doc2Vec

    (model, vocab_s, _) = _timed(lambda: Doc2Vec(seed=seed, **VARIANTS[variant], **settings, **engine).build_vocab(docs))
    _, warm_s, _ = _timed(lambda: model.train(docs, epochs=1))
    model.reset_params()
    _, wall, cores = _timed(lambda: model.train(docs))
    return model, {"words_per_second": model.last_train_timing["words_per_second"], "cores": cores,
                   "vocab_seconds": vocab_s, "train_seconds": wall, "chunk_size": model.chunk_size,
                   "compile_seconds": max(warm_s - wall / model.epochs, 0.0)}  # fmt: skip


def gensim(docs, variant: str, settings: dict, seed: int, workers: int):
    """gensim's Doc2Vec trained on the same documents, and its timing."""
    from gensim.models.doc2vec import Doc2Vec as G
    from gensim.models.doc2vec import TaggedDocument as T

    theirs = [T(d.words, d.tags) for d in docs]
    (model, vocab_s, _) = _timed(lambda: _built(G(seed=seed, workers=workers, **VARIANTS[variant], **settings), theirs))
    _, wall, cores = _timed(lambda: model.train(theirs, total_examples=model.corpus_count,
                                                epochs=settings["epochs"]))  # fmt: skip
    return model, {"words_per_second": model.corpus_total_words * settings["epochs"] / wall, "cores": cores,
                   "vocab_seconds": vocab_s, "train_seconds": wall}  # fmt: skip


def _built(model, docs):
    model.build_vocab(docs)
    return model


def compare(task: str, variant: str, repeats: int, workers: int) -> dict:
    """Alternating timed runs of ours and gensim's; the median of each timing."""
    docs = documents(task)
    settings = dict(SETTINGS, min_count=MIN_COUNT[task])
    runs = {"ours": lambda s: ours(docs, variant, settings, s)[1],
            "gensim": lambda s: gensim(docs, variant, settings, s, workers)[1]}  # fmt: skip
    timed = {k: [] for k in runs}
    for r in range(repeats):
        for impl, run in runs.items():
            timed[impl].append(run(1 + r))
    out = {}
    for impl, results in timed.items():
        out[impl] = {k: statistics.median(x[k] for x in results) for k in results[0]}
        out[impl]["runs_words_per_second"] = [x["words_per_second"] for x in results]
    out["words"] = sum(len(d.words) for d in docs)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", default=",".join(TASKS), help="comma-separated: brown, flickr8k")
    ap.add_argument("--variants", default=",".join(DEFAULT_VARIANTS),
                    help=f"comma-separated: {', '.join(VARIANTS)}")  # fmt: skip
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--workers", type=int, default=os.cpu_count(), help="gensim workers")
    args = ap.parse_args(argv)

    from benchmarks.common import write_result

    metrics, peers, rows = {}, {"gensim": {}}, []
    command = "python -m benchmarks.doc2vec_vs_gensim " + " ".join(sys.argv[1:] if argv is None else argv)
    for task in args.tasks.split(","):
        for variant in args.variants.split(","):
            if variant not in VARIANTS:
                raise SystemExit(f"--variants takes {', '.join(VARIANTS)}, got {variant!r}")
            print(f"{task} {variant}: ", end="", flush=True)
            out = compare(task, variant, args.repeats, args.workers)
            key = f"{task}_{variant}"
            metrics.update({f"{key}_{k}": x for k, x in out["ours"].items()})
            peers["gensim"].update({f"{key}_{k}": x for k, x in out["gensim"].items()})
            ratio = out["ours"]["words_per_second"] / out["gensim"]["words_per_second"]
            metrics[f"{key}_words_per_second_speedup_vs_gensim"] = ratio
            rows.append((key, out, ratio))
            print(f"{ratio:.2f}x gensim", flush=True)
            config = dict(SETTINGS, min_count=MIN_COUNT, cells=[k for k, *_ in rows], repeats=args.repeats,
                          peer_workers=args.workers)  # fmt: skip
            path = write_result("doc2vec_vs_gensim", config=config, metrics=metrics, peers=peers,
                                command=command.strip())  # fmt: skip
    print("\n| cell | words | ours words/s | gensim words/s | speed-up |\n|---|---:|---:|---:|---:|")
    for key, o, ratio in rows:
        print(f"| {key} | {o['words']:,} | {o['ours']['words_per_second']:,.0f} | "
              f"{o['gensim']['words_per_second']:,.0f} | {ratio:.2f}x |")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
