"""Phrase detection speed: :mod:`embeddings_jax.data.phrases` beside gensim's ``Phrases``, same data.

Per corpus (Brown, PTB train) and connector setting (none, ``ENGLISH_CONNECTOR_WORDS``), with
gensim's defaults otherwise (``scoring="default"``, ``min_count=5``, ``threshold=10``): raw corpus
words per second of counting (``Phrases(sentences)``), of transforming the corpus with the trained
model (``list(model[sentences])``) and with the frozen one; the median over ``--repeats`` runs,
ours and gensim's alternating (who goes first swaps each repeat). Both are pure Python on one core.
Before timing, the two models are checked to agree (counts, exported phrases, transformed corpus).

    python -m benchmarks.phrases_vs_gensim                 # brown + ptb, 5 repeats
    python -m benchmarks.phrases_vs_gensim --corpora brown --repeats 3

Writes ``benchmarks/results/phrases_vs_gensim-<device>.json``.
"""

from __future__ import annotations

import argparse
import statistics
import time

from benchmarks.common import write_result
from embeddings_jax.data import phrases, text

CONNECTORS = {"none": frozenset(), "english": phrases.ENGLISH_CONNECTOR_WORDS}
SETTINGS = {"scoring": "default", "min_count": 5, "threshold": 10.0}
STAGES = ("count", "transform", "frozen_transform")


def stages(cls, sentences, connectors) -> dict:
    """Seconds of each stage with one implementation's ``Phrases`` class, and the models."""
    t0 = time.perf_counter()
    model = cls(sentences, connector_words=connectors, **SETTINGS)
    t1 = time.perf_counter()
    out = list(model[sentences])
    t2 = time.perf_counter()
    frozen = model.freeze()
    t3 = time.perf_counter()
    frozen_out = list(frozen[sentences])
    t4 = time.perf_counter()
    assert frozen_out == out
    return {"seconds": {"count": t1 - t0, "transform": t2 - t1, "frozen_transform": t4 - t3},
            "model": model, "out": out}


def compare(sentences, connectors, repeats: int) -> dict:
    from gensim.models.phrases import Phrases as GensimPhrases

    impls = {"ours": phrases.Phrases, "gensim": GensimPhrases}
    times = {name: {s: [] for s in STAGES} for name in impls}
    for r in range(repeats):
        order = ("ours", "gensim") if r % 2 == 0 else ("gensim", "ours")
        runs = {name: stages(impls[name], sentences, connectors) for name in order}
        if r == 0:  # the same answer, or the timing means nothing
            ours, theirs = runs["ours"]["model"], runs["gensim"]["model"]
            assert dict(ours.vocab) == theirs.vocab and ours.export_phrases() == theirs.export_phrases()
            assert runs["ours"]["out"] == runs["gensim"]["out"]
            phrases_found = len(theirs.export_phrases())
        for name in impls:
            for s in STAGES:
                times[name][s].append(runs[name]["seconds"][s])
    words = text.count_words(sentences)
    metrics = {"words": words, "sentences": len(sentences), "phrases": phrases_found}
    for s in STAGES:
        ours_s, theirs_s = statistics.median(times["ours"][s]), statistics.median(times["gensim"][s])
        metrics[f"ours_{s}_words_per_second"] = words / ours_s
        metrics[f"gensim_{s}_words_per_second"] = words / theirs_s
        metrics[f"{s}_speedup_vs_gensim"] = theirs_s / ours_s
    return metrics


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpora", nargs="+", default=["brown", "ptb"])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    import gensim

    metrics = {}
    print(f"{'corpus':8} {'connectors':10} {'stage':17} {'ours w/s':>11} {'gensim w/s':>11} {'speedup':>8}")
    for corpus in args.corpora:
        sentences = text.load_corpus(corpus)
        for label, connectors in CONNECTORS.items():
            cell = compare(sentences, connectors, args.repeats)
            metrics[f"{corpus}_{label}"] = cell
            for s in STAGES:
                print(f"{corpus:8} {label:10} {s:17} {cell[f'ours_{s}_words_per_second']:11,.0f} "
                      f"{cell[f'gensim_{s}_words_per_second']:11,.0f} {cell[f'{s}_speedup_vs_gensim']:8.2f}")
    path = write_result("phrases_vs_gensim", config={**SETTINGS, "corpora": args.corpora,
                                                      "connectors": list(CONNECTORS), "repeats": args.repeats},
                        metrics=metrics, peers={"gensim": gensim.__version__})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
