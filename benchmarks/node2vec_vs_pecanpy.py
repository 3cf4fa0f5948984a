"""node2vec against pecanpy (Liu & Krishnan, 2021) with equal settings, the two run alternately.

For each seed: a planted-partition graph (10 blocks), 10% of its edges held out; both methods embed
the training graph (ours: :class:`~embeddings_jax.models.word2vec.Node2Vec`, walks on device and the
project's word2vec; pecanpy: ``SparseOTF`` walks, its numba rejection sampler, then gensim
``Word2Vec`` as its ``embed`` does), then node classification macro-F1 (linear probe, stratified
5-fold) and link-prediction ROC AUC (cosine, held-out edges against as many non-edges). Timed:
walks (pecanpy's include making the string lists gensim reads), training, end to end (tables +
walks + training); one untimed warm-up each first (on at most 10k nodes), so compilation (XLA,
numba) is reported apart (on larger graphs XLA's recompilation for new shapes stays in ours).

    python -m benchmarks.node2vec_vs_pecanpy                 # 100k nodes, 5 seeds
    python -m benchmarks.node2vec_vs_pecanpy --nodes 10000   # the same at 10k nodes
    python -m benchmarks.node2vec_vs_pecanpy --walks-only    # walks/s alone (no training)

Needs ``pip install -e ".[graph-bench]"`` (pecanpy, numba). Writes
``benchmarks/results/node2vec_vs_pecanpy[_walks]_<nodes>-<device>.json``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings

import numpy as np

from embeddings_jax.data.graphs import Graph, block_probabilities, planted_partition, split_edges
from embeddings_jax.eval.classification import cross_validate
from embeddings_jax.eval.link_prediction import link_prediction_auc
from embeddings_jax.models.word2vec.node2vec import Node2Vec

# node2vec's and pecanpy's defaults (q = 0.5: outward-leaning walks).
SETTINGS = {"dimensions": 128, "walk_length": 80, "num_walks": 10, "window": 10, "p": 1.0,
            "q": 0.5, "epochs": 1}
WARMUP_NODES = 10_000
GRAPH = {"blocks": 10, "mean_degree": 10.0, "mixing": 0.3, "holdout": 0.1}


def _numpy1_names():
    """pecanpy 2.0.9 imports nptyping 2.0, which reads NumPy 1 aliases that NumPy 2 removed."""
    aliases = {"bool8": "bool_", "object0": "object_", "int0": "intp", "uint0": "uintp",
               "void0": "void", "bytes0": "bytes_", "str0": "str_", "float_": "float64",
               "complex_": "complex128", "longfloat": "longdouble", "singlecomplex": "complex64",
               "cfloat": "complex128", "longcomplex": "clongdouble", "clongfloat": "clongdouble",
               "string_": "bytes_", "unicode_": "str_"}
    for old, new in aliases.items():
        if not hasattr(np, old):
            setattr(np, old, getattr(np, new))


def pecanpy_embed(graph: Graph, settings: dict, seed: int, workers: int, train: bool = True) -> dict:
    """pecanpy SparseOTF walks + gensim skip-gram on ``graph``: ``vectors [N, D]`` in node order
    and the seconds of each stage (``train=False``: walks only). pecanpy counts walk length in
    steps, so it is asked for ``walk_length - 1``."""
    _numpy1_names()
    from gensim.models import Word2Vec as GensimWord2Vec
    from pecanpy import pecanpy

    s = settings
    with tempfile.TemporaryDirectory() as tmp:  # the same CSR arrays, read by pecanpy's own reader
        path = os.path.join(tmp, "graph.npz")
        np.savez(path, IDs=np.array(graph.nodes), data=graph.weights, indptr=graph.indptr,
                 indices=graph.indices)
        t0 = time.perf_counter()
        g = pecanpy.SparseOTF(p=s["p"], q=s["q"], workers=workers, verbose=False, random_state=seed)
        g.read_npz(path, weighted=False)
        walks = g.simulate_walks(s["num_walks"], s["walk_length"] - 1)
    t1 = time.perf_counter()
    if not train:
        return {"walks": len(walks), "walk_seconds": t1 - t0}
    w2v = GensimWord2Vec(walks, vector_size=s["dimensions"], window=s["window"], sg=1, min_count=0,
                         workers=workers, epochs=s["epochs"], seed=seed)
    t2 = time.perf_counter()
    return {"vectors": w2v.wv[graph.nodes], "walks": len(walks), "walk_seconds": t1 - t0,
            "train_seconds": t2 - t1, "seconds": t2 - t0}


def ours_embed(graph: Graph, settings: dict, seed: int, train: bool = True) -> dict:
    """Our node2vec on ``graph``: ``vectors [N, D]`` in node order and the seconds of each stage
    (``train=False``: walks only)."""
    t0 = time.perf_counter()
    model = Node2Vec(graph, seed=seed, **settings)
    walks = model.walks()
    t1 = time.perf_counter()
    if not train:
        return {"walks": walks.shape[0], "walk_seconds": t1 - t0}
    model.fit_walks(walks)
    t2 = time.perf_counter()
    return {"vectors": model.node_vectors(), "walks": walks.shape[0], "walk_seconds": t1 - t0,
            "train_seconds": t2 - t1, "seconds": t2 - t0}


def quality(vectors: np.ndarray, labels: np.ndarray, split, seed: int) -> dict:
    """Macro-F1 / accuracy (5-fold mean) and link-prediction AUC of one embedding."""
    cv = cross_validate(vectors, labels, folds=5, seed=seed)
    return {"macro_f1": statistics.mean(cv["macro_f1"]), "accuracy": statistics.mean(cv["accuracy"]),
            "link_auc": link_prediction_auc(vectors, split.positive, split.negative)}


def sbm_task(nodes: int, seed: int, graph: dict = GRAPH):
    """The planted-partition graph of ``seed`` (``graph``: ``blocks``, ``mean_degree``,
    ``mixing``, ``holdout`` as in ``GRAPH``), its labels and its link-prediction split."""
    p_in, p_out = block_probabilities(nodes, graph["blocks"], graph["mean_degree"], graph["mixing"])
    full, labels = planted_partition(nodes, graph["blocks"], p_in, p_out, seed=seed)
    return labels, split_edges(full, graph["holdout"], seed=seed)


def compare(split, labels, settings: dict, seed: int, workers: int, ours_first: bool,
            train: bool = True) -> dict:
    """One seed: both methods on ``split.train`` (order alternating by ``ours_first``), their
    timings and (when they ``train``) quality, under ``ours`` / ``pecanpy``."""
    runs = {}
    for name in (("ours", "pecanpy") if ours_first else ("pecanpy", "ours")):
        run = (ours_embed(split.train, settings, seed, train) if name == "ours"
               else pecanpy_embed(split.train, settings, seed, workers, train))
        runs[name] = {**run, "walks_per_second": run["walks"] / run["walk_seconds"]}
        if train:
            runs[name].update(quality(runs[name].pop("vectors"), labels, split, seed))
    return runs


def summary(per_seed: list[dict], walks_only: bool = False) -> dict:
    """Means over seeds, std of the quality figures, and our speed-ups."""
    out = {}
    keys = ("walks_per_second", "walk_seconds") + (() if walks_only else (
        "train_seconds", "seconds", "macro_f1", "accuracy", "link_auc"))
    for name in ("ours", "pecanpy"):
        for key in keys:
            values = [r[name][key] for r in per_seed]
            out[f"{name}_{key}_mean"] = statistics.mean(values)
            if key in ("macro_f1", "accuracy", "link_auc"):
                out[f"{name}_{key}_std"] = statistics.pstdev(values)
    out["walks_per_second_speedup"] = out["ours_walks_per_second_mean"] / out["pecanpy_walks_per_second_mean"]
    if walks_only:
        return out
    out["end_to_end_speedup"] = out["pecanpy_seconds_mean"] / out["ours_seconds_mean"]
    out["train_speedup"] = out["pecanpy_train_seconds_mean"] / out["ours_train_seconds_mean"]
    for key in ("macro_f1", "link_auc"):
        out[f"{key}_delta"] = out[f"ours_{key}_mean"] - out[f"pecanpy_{key}_mean"]
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, default=100_000)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--num-walks", type=int, default=SETTINGS["num_walks"])
    ap.add_argument("--q", type=float, default=SETTINGS["q"])
    ap.add_argument("--walks-only", action="store_true", help="time walk generation alone")
    ap.add_argument("--workers", type=int, default=os.cpu_count(), help="pecanpy's and gensim's threads")
    args = ap.parse_args(argv)
    from importlib.metadata import version

    from benchmarks.common import write_result

    settings = dict(SETTINGS, num_walks=args.num_walks, q=args.q)
    warnings.filterwarnings("ignore", message=".*nodes have no edges.*")
    # Warmed on at most WARMUP_NODES, not by a full untimed pass at 100k. numba compiles once for
    # any graph; XLA compiles again for a larger graph's shapes, inside our timed run (seconds).
    labels, split = sbm_task(min(args.nodes, WARMUP_NODES), 0)
    t0 = time.perf_counter()
    ours_embed(split.train, settings, 0, train=not args.walks_only)
    cold_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    pecanpy_embed(split.train, settings, 0, args.workers, train=not args.walks_only)
    cold_pecanpy = time.perf_counter() - t0
    print(f"warm-up (compiles): ours {cold_ours:.1f} s, pecanpy {cold_pecanpy:.1f} s", flush=True)
    per_seed = []
    for seed in range(args.seeds):
        labels, split = sbm_task(args.nodes, seed)
        r = compare(split, labels, settings, seed, args.workers, ours_first=seed % 2 == 0,
                    train=not args.walks_only)
        per_seed.append(r)
        line = (f"seed {seed}: walks/s ours {r['ours']['walks_per_second']:,.0f} pecanpy "
                f"{r['pecanpy']['walks_per_second']:,.0f}")
        if not args.walks_only:
            line += (f"; end to end ours {r['ours']['seconds']:.1f} s pecanpy {r['pecanpy']['seconds']:.1f} s; "
                     f"macro-F1 {r['ours']['macro_f1']:.4f} / {r['pecanpy']['macro_f1']:.4f}; AUC "
                     f"{r['ours']['link_auc']:.4f} / {r['pecanpy']['link_auc']:.4f}")
        print(line, flush=True)
    metrics = {**summary(per_seed, walks_only=args.walks_only), "first_run_seconds_ours": cold_ours,
               "first_run_seconds_pecanpy": cold_pecanpy, "per_seed": per_seed}
    config = dict(settings, **GRAPH, nodes=args.nodes, seeds=args.seeds, peer_workers=args.workers,
                  training_edges=split.train.num_edges, walks_only=args.walks_only)
    command = "python -m benchmarks.node2vec_vs_pecanpy " + " ".join(sys.argv[1:] if argv is None else argv)
    name = f"node2vec_vs_pecanpy{'_walks' if args.walks_only else ''}_{args.nodes}"
    path = write_result(name, config=config, metrics=metrics,
                        peers={"pecanpy": {"version": version("pecanpy"), "gensim": version("gensim")}},
                        command=command.strip())
    print(f"walks/s {metrics['walks_per_second_speedup']:.2f}x pecanpy"
          + ("" if args.walks_only else f", end to end {metrics['end_to_end_speedup']:.2f}x")
          + f"; wrote {path}")


if __name__ == "__main__":
    main()
