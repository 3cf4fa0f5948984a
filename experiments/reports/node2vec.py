"""Report of the node2vec experiment: karate club, planted partitions, MovieLens (markdown, JSON,
the karate picture)."""

from __future__ import annotations

import pathlib

import numpy as np

from experiments.common import RESULTS_DIR, publish, write_results
from experiments.reports.plots import pca_scatter


def metrics(karate: dict, sbm: list[dict], movielens: dict | None) -> dict:
    """The flat JSON metrics: ``karate_cv_accuracy``, ``sbm_10000_ours_macro_f1``, ..."""
    out = {f"karate_cv_{k}": v for k, v in karate.items()}
    for r in sbm:
        for k in ("macro_f1", "accuracy", "link_auc", "seconds", "walk_seconds"):
            out[f"sbm_{r['nodes']}_{r['method']}_{k}"] = r[k]
    if movielens:
        for name in ("node2vec", "popularity"):
            for k, v in movielens[name].items():
                out[f"ml100k_stratified_{k}_at_10_{name}"] = v
    return out


def write(config, karate: dict, karate_vectors: np.ndarray, factions: np.ndarray, sbm: list[dict],
          movielens: dict | None, workdir: pathlib.Path) -> dict:
    """Writes ``node2vec.{md,json}`` and ``node2vec_karate.png`` to ``workdir`` (and, with
    ``config.write_results``, to results/); returns the flat metrics."""
    figure = pca_scatter(
        karate_vectors, workdir / "node2vec_karate.png",
        f"Karate club node2vec vectors (PCA), CV accuracy {karate['accuracy']:.2f}",
        annotations=[str(i) for i in range(len(factions))],
        groups=[("Mr. Hi's faction", factions == 0), ("Officer's faction", factions == 1)],
        figsize=(6, 5), dpi=90, point_size=30)
    result = metrics(karate, sbm, movielens)
    dirs = [workdir] + ([RESULTS_DIR] if config.write_results else [])
    if config.write_results:
        publish(figure)
    write_results("node2vec", markdown(config, karate, sbm, movielens, figure.name),
                  {"config": config.to_dict(), "sbm": sbm, "movielens": movielens, **result}, dirs)
    return result


def markdown(config, karate: dict, sbm: list[dict], movielens: dict | None, figure: str) -> str:
    s, g = config.node2vec, config.sbm
    rows = "\n".join(
        f"| {r['nodes']:,} | {r['edges']:,} | {r['num_walks']} | {r['method']} | {r['macro_f1']:.4f} | "
        f"{r['accuracy']:.4f} | {r['link_auc']:.4f} | {r['walk_seconds']:.1f} | {r['seconds']:.0f} |"
        for r in sbm)
    parts = [f"""# node2vec on graphs

Settings (the node2vec paper's and pecanpy's defaults): {s.dimensions}-d, walks of {s.walk_length}
nodes, {s.num_walks} from every node, window {s.window}, p = {s.p}, q = {s.q}, skip-gram with 5
negatives, {s.epochs} epoch, seed {config.seed}; `embeddings_jax.models.word2vec.Node2Vec`.

## Zachary's karate club

{config.karate.dimensions}-d, {config.karate.epochs} epochs (34 nodes give a tiny corpus); linear
probe, stratified {config.karate.folds}-fold: faction accuracy **{karate['accuracy']:.3f}**, macro-F1
{karate['macro_f1']:.3f}.

![karate]({figure})

## Planted partitions: node classification and link prediction

Stochastic block models with {g.blocks} equal blocks, expected degree {g.mean_degree:g} of which
{g.mixing:.0%} crosses blocks (`data.graphs.planted_partition`, `block_probabilities`); {g.holdout:.0%}
of the edges held out (`split_edges`: every node keeps an edge) and as many non-edges drawn. One
embedding of the training graph per row: macro-F1 and accuracy of a linear probe (stratified
{g.folds}-fold, mean), ROC AUC of the cosine of held-out edges against the non-edges. `pecanpy` =
pecanpy `SparseOTF` walks + gensim `Word2Vec` with the same settings (what its `embed` runs),
where installed and on graphs up to {config.peer_max_nodes:,} nodes; speed over 5 seeds is
`benchmarks/node2vec_vs_pecanpy.py`'s job. Seconds: walks, and end to end (tables + walks +
training), on the machine below.

| nodes | training edges | walks / node | method | macro-F1 | accuracy | link AUC | walk s | total s |
|---:|---:|---:|---|---:|---:|---:|---:|---:|
{rows}
"""]
    if movielens:
        m, n = movielens["node2vec"], movielens["settings"]
        pop = movielens["popularity"]
        parts.append(f"""## MovieLens-100K top-10 (the recsys experiment's protocol)

The training pairs as a user-item graph; node2vec {n['dimensions']}-d, {n['num_walks']} walks of
{n['walk_length']} nodes, window {n['window']}, p = {n['p']}, q = {n['q']}, {n['epochs']} epochs;
items ranked by `in(user) . out(item) + log p(item)` (`models.recsys.node2vec_embeddings`). The
same row, beside the two-tower and BPR models, is in `recsys.md`.

| model | Precision@10 | Recall@10 | nDCG@10 | MAP@10 |
|---|---:|---:|---:|---:|
| popularity | {pop['precision']:.4f} | {pop['recall']:.4f} | {pop['ndcg']:.4f} | {pop['map']:.4f} |
| node2vec | {m['precision']:.4f} | {m['recall']:.4f} | {m['ndcg']:.4f} | {m['map']:.4f} |
""")
    return "\n".join(parts)
