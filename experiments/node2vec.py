"""node2vec / DeepWalk on graphs (Perozzi et al., 2014; Grover & Leskovec, 2016).

1. Zachary's karate club: do the node vectors separate the two factions after the split?
   (cross-validated accuracy of a linear probe, and a 2-D picture).
2. Planted-partition graphs (stochastic block models, 10 blocks) of 10k and 100k nodes: 10% of the
   edges held out, node classification macro-F1 (linear probe, stratified 5-fold) and
   link-prediction ROC AUC (cosine, held-out edges against as many non-edges) of one embedding of
   the training graph; beside pecanpy + gensim with equal settings where pecanpy is installed
   (``pip install -e ".[graph-bench]"``). Speed over 5 seeds: ``benchmarks/node2vec_vs_pecanpy.py``.
3. MovieLens-100K: the recsys experiment's node2vec row (user-item graph, top-10 under the
   Recommenders protocol), so the table here reads beside that one.

Config args (comma-separated): ``runlocal`` (seconds; no results files), ``nopeers``.
"""

from __future__ import annotations

import pathlib
import time
import warnings

import ml_collections
import numpy as np

from embeddings_jax.config import parse_arg
from embeddings_jax.data import ratings as R
from embeddings_jax.data.graphs import karate_club
from embeddings_jax.eval import recommend as rec
from embeddings_jax.eval.classification import cross_validate
from embeddings_jax.models.recsys import node2vec_embeddings
from embeddings_jax.models.word2vec.node2vec import Node2Vec
from experiments.reports import node2vec as report


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    args = parse_arg(arg, {"runlocal", "nopeers"}, "node2vec")
    c = ml_collections.ConfigDict()
    c.seed = 0
    # The node2vec paper's and pecanpy's defaults, q = 0.5 (outward-leaning walks).
    c.node2vec = ml_collections.ConfigDict({
        "dimensions": 128, "walk_length": 80, "num_walks": 10, "window": 10, "p": 1.0, "q": 0.5,
        "epochs": 1})
    c.karate = ml_collections.ConfigDict({"dimensions": 16, "epochs": 5, "folds": 5})
    # Walks per node by graph size: 5 on the 100k-node graph keeps the run under half an hour on 2
    # cores (fewer than ~3 leave one epoch of skip-gram under-trained, for pecanpy + gensim too).
    c.sbm = ml_collections.ConfigDict({
        "sizes": [10_000, 100_000], "num_walks": [10, 5], "blocks": 10, "mean_degree": 10.0,
        "mixing": 0.3, "holdout": 0.1, "folds": 5})
    c.peers = "nopeers" not in args  # also run pecanpy + gensim (graph-bench extra)
    c.peer_max_nodes = 10_000  # pecanpy + gensim beside ours on graphs up to this size
    c.movielens = True  # also run node2vec recommendations on MovieLens-100k
    c.write_results = True
    if "runlocal" in args:
        c.node2vec.update(dimensions=16, walk_length=40, num_walks=5)
        c.sbm.update(sizes=[2_000], num_walks=[5], folds=3)
        c.peers, c.movielens, c.write_results = False, False, False
    return c


def run(config, workdir: str) -> dict:
    from benchmarks import node2vec_vs_pecanpy as peer

    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    settings = config.node2vec.to_dict()
    warnings.filterwarnings("ignore", message=".*nodes have no edges.*")

    # 1. Karate club: faction separation.
    graph, factions = karate_club()
    model = Node2Vec(graph, seed=config.seed, **{**settings, "dimensions": config.karate.dimensions,
                                                 "epochs": config.karate.epochs}).fit(progress=True)
    karate_vectors = model.node_vectors()
    cv = cross_validate(karate_vectors, factions, folds=config.karate.folds, seed=config.seed)
    karate = {"accuracy": float(np.mean(cv["accuracy"])), "macro_f1": float(np.mean(cv["macro_f1"]))}

    # 2. Planted partitions: classification and link prediction, beside pecanpy where installed.
    sbm, has_peer = [], config.peers and _pecanpy_installed()
    for nodes, walks in zip(config.sbm.sizes, config.sbm.num_walks):
        labels, split = peer.sbm_task(nodes, config.seed, config.sbm.to_dict())
        run_settings = dict(settings, num_walks=walks)
        methods = ["ours"] + (["pecanpy"] if has_peer and nodes <= config.peer_max_nodes else [])
        for method in methods:
            embed = peer.ours_embed(split.train, run_settings, config.seed) if method == "ours" else \
                peer.pecanpy_embed(split.train, run_settings, config.seed, workers=2)
            sbm.append({"nodes": nodes, "edges": split.train.num_edges, "num_walks": walks,
                        "method": method, **{k: embed[k] for k in ("walk_seconds", "seconds")},
                        **peer.quality(embed["vectors"], labels, split, config.seed)})
            print(f"sbm {nodes:,} nodes, {method}: macro-F1 {sbm[-1]['macro_f1']:.4f}, "
                  f"AUC {sbm[-1]['link_auc']:.4f}, {embed['seconds']:.0f} s", flush=True)

    # 3. MovieLens-100K under the recsys experiment's protocol and node2vec settings.
    movielens = _movielens(config.seed) if config.movielens else None
    return report.write(config, karate, karate_vectors, factions, sbm, movielens, workdir)


def _movielens(seed: int) -> dict:
    """The recsys experiment's node2vec row, with popularity beside it for scale."""
    from experiments import recsys

    rc = recsys.get_config()
    train_r, test_r = R.stratified_split(R.load_ratings("u.data", dataset=rc.dataset),
                                         rc.tt.split_ratio, seed=rc.tt.split_seed)
    seen = rec.seen_lists(train_r, R.NUM_USERS)
    n2v = rc.node2vec.to_dict()
    del n2v["enabled"]
    t0 = time.time()
    emb = node2vec_embeddings(train_r.user, train_r.item, R.NUM_USERS, R.NUM_ITEMS, seed=seed, **n2v)
    seconds = time.time() - t0
    return {"settings": n2v, "seconds": seconds,
            "node2vec": rec.topk_metrics(rec.top_k_unseen(emb.users @ emb.items.T, seen, 10), test_r),
            "popularity": rec.topk_metrics(rec.popularity_top_k(train_r.item, R.NUM_ITEMS, seen, 10),
                                           test_r)}


def _pecanpy_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("pecanpy") is not None
