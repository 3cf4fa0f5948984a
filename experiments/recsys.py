"""User and item embeddings on MovieLens-100K: matrix factorization and two-tower retrieval.

1. Biased MF (optionally SVD++, with side features) and Bayesian PMF on the dataset's own 5 folds
   u1..u5: test RMSE / MAE, mean and std over folds.
2. Two-tower retrieval under the Microsoft Recommenders MovieLens-100K protocol: every rating is an
   implicit positive, a 75/25 per-user stratified random split (``python_stratified_split``, seed
   42), items seen in training removed, top-10 Precision / Recall / nDCG / MAP, with popularity and
   random baselines, BPR and WARP-style losses, separate vs multiplexed feature tables at the same
   parameter count, a seed spread and its ensemble, retrieval through the vector index (flat: same
   top-10 as brute force; IVF: recall against it), node2vec on the user-item graph, and cold start
   (10% of users never seen in training, ranked from their features only).

Config args (comma-separated): ``runlocal`` (seconds, CPU; no results files), ``nomf``,
``notwotower``.
"""

from __future__ import annotations

import dataclasses
import functools
import pathlib
import time

import ml_collections
import numpy as np

from embeddings_jax.config import parse_arg
from embeddings_jax.data import ratings as R
from embeddings_jax.eval import recommend as rec
from embeddings_jax.index import FlatIndex, IVFIndex
from embeddings_jax.models import recsys
from embeddings_jax.models.recsys import bpmf
from embeddings_jax.models.recsys import factorization as mf
from embeddings_jax.train import make_mesh
from experiments.reports import recsys as report

K = 10


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    args = parse_arg(arg, {"runlocal", "nomf", "notwotower"}, "recsys")
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.dataset = R.DATASET
    # Matrix factorization (explicit ratings, folds u1..u5).
    c.mf = ml_collections.ConfigDict(dataclasses.asdict(mf.MFConfig()))
    c.mf.enabled = "nomf" not in args
    c.mf.folds = [1, 2, 3, 4, 5]
    c.mf.svdpp = False  # also run the SVD++ variant (off: its implicit term makes it much slower)
    c.mf.side_features = True  # also run MF with user demographics and item genres (SVDFeature)
    # Bayesian PMF (Gibbs); settings chosen on the same 10% validation carve of u1.base.
    c.bpmf = ml_collections.ConfigDict(dataclasses.asdict(
        bpmf.BPMFConfig(dim=30, samples=400, burn_in=100)))
    c.bpmf.enabled = "nomf" not in args
    # Two-tower (implicit, Recommenders protocol): the model's hyper-parameters, then the protocol.
    c.tt = ml_collections.ConfigDict(dataclasses.asdict(recsys.TwoTowerConfig()))
    c.tt.enabled = "notwotower" not in args
    c.tt.split_ratio = 0.75  # fraction of each user's interactions used for training
    c.tt.split_seed = 42  # Recommenders' DEFAULT SEED
    c.tt.zip_buckets = 128  # hash buckets of the user zip-code feature
    c.tt.losses = ["softmax", "bpr", "warp"]  # two-tower losses to train (softmax, bpr, warp)
    c.tt.multiplexing = True  # also train the multiplexed-table model
    c.tt.extra_seeds = [1, 2, 3, 4]  # the softmax model retrained with these seeds: seed spread
    c.tt.cold_fraction = 0.1  # fraction of users held out as cold-start users
    c.tt.cold_popularity_weight = 0.5  # extra cold-start row: scores / T + w log p(item)
    c.tt.train_subset = 0  # 0: every training pair; else the first n (runlocal)
    c.tt.ivf_nlist = 16  # IVF lists of the retrieval index
    # node2vec on the user-item graph of the same training pairs (models.recsys.graph_embeddings);
    # chosen on the same validation carve (80/20, seed 1): nDCG@10 0.217 there, popularity 0.138.
    c.node2vec = ml_collections.ConfigDict({
        "enabled": True, "dimensions": 64, "walk_length": 80, "num_walks": 10, "window": 10,
        "p": 1.0, "q": 1.0, "epochs": 5})
    c.tt.ivf_nprobe = 4  # IVF lists searched per query
    c.num_devices = 0  # 0: every local device
    c.write_results = True
    if "runlocal" in args:
        c.mf.folds = [1]
        c.mf.epochs = 1
        c.tt.epochs = 1
        c.tt.batch_size = 512
        c.tt.train_subset = 4096
        c.tt.losses = ["softmax"]  # bpr / warp / multiplexed paths are unit-tested separately
        c.tt.multiplexing = False
        c.tt.extra_seeds = []
        c.mf.side_features = False
        c.bpmf.dim, c.bpmf.samples, c.bpmf.burn_in = 4, 3, 1
        c.tt.ivf_nlist = 4
        c.node2vec.num_walks, c.node2vec.walk_length, c.node2vec.epochs = 1, 10, 1
        c.write_results = False
    return c


def run(config, workdir: str) -> dict:
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    users, items = R.load_users(dataset=config.dataset), R.load_items(dataset=config.dataset)
    tables, item_emb = {}, None

    # 1. Rating models (explicit ratings) on the folds u1..u5.
    if config.mf.enabled:
        tables["mf"] = {name: mf.fold_errors(fit, config.mf.folds, dataset=config.dataset)._asdict()
                        for name, fit in _rating_models(config, users, items).items()}

    if config.tt.enabled:
        c, tt = config.tt, _dataclass(recsys.TwoTowerConfig, config.tt)
        train_r, test_r = R.stratified_split(R.load_ratings("u.data", dataset=config.dataset),
                                             c.split_ratio, seed=c.split_seed)
        if c.train_subset:
            train_r = train_r.take(np.arange(min(c.train_subset, len(train_r))))
        seen, mesh = rec.seen_lists(train_r, R.NUM_USERS), make_mesh(config.num_devices or None)
        rank = lambda e: rec.top_k_unseen(e.users @ e.items.T, seen, K)
        score = lambda e, users=None: rec.topk_metrics(rank(e), test_r, users)

        def fit_embed(name, train, feats, loss="softmax", seed=config.seed, cold_users=None):
            fit = recsys.train_two_tower(train, feats, tt, loss=loss, seed=seed,
                                         workdir=workdir / name, mesh=mesh)
            return fit, recsys.embed(fit.model, fit.params, feats, cold_users)

        # 2. The baselines, then one two-tower model per loss and table layout.
        models = {
            "random": rec.topk_metrics(rec.random_top_k(R.NUM_ITEMS, seen, K, config.seed), test_r),
            "popularity": rec.topk_metrics(
                rec.popularity_top_k(train_r.item, R.NUM_ITEMS, seen, K), test_r)}
        feats = {m: recsys.build_features(users, items, train_r, mode=m, zip_buckets=c.zip_buckets)
                 for m in ("separate", "multiplexed")}
        emb, runs = {}, [(x, "separate") for x in c.losses]
        for loss, mode in runs + [("softmax", "multiplexed")] * c.multiplexing:
            name = f"two_tower_{loss}" + ("" if mode == "separate" else "_multiplexed")
            t0 = time.time()
            fit, emb[name] = fit_embed(f"two_tower_{loss}_{mode}", train_r, feats[mode], loss)
            models[name] = {**score(emb[name]), "train_seconds": time.time() - t0,
                            "parameters": fit.num_parameters}
        if config.node2vec.enabled:
            t0, n2v = time.time(), config.node2vec.to_dict()
            del n2v["enabled"]
            graph_emb = recsys.node2vec_embeddings(train_r.user, train_r.item, R.NUM_USERS,
                                                   R.NUM_ITEMS, seed=config.seed, **n2v)
            models["node2vec"] = {**score(graph_emb), "train_seconds": time.time() - t0,
                                  "parameters": 2 * (R.NUM_USERS + R.NUM_ITEMS) * n2v["dimensions"]}
        out = {"split": {"train": len(train_r), "test": len(test_r)}, "models": models}
        main = "two_tower_softmax" if "two_tower_softmax" in emb else next(iter(emb))

        # 3. Seed spread of the softmax model, and those seeds' ensemble served as one model.
        if c.extra_seeds and "softmax" in c.losses:
            t0 = time.time()
            parts = [emb[main]] + [fit_embed(f"two_tower_softmax_seed{s}", train_r,
                                             feats["separate"], seed=s)[1] for s in c.extra_seeds]
            per_seed = [models[main]] + [score(e) for e in parts[1:]]
            out["seeds"] = {"seeds": [config.seed, *c.extra_seeds], **{
                m: [p[m] for p in per_seed] for m in ("precision", "recall", "ndcg", "map")}}
            emb["ensemble"] = recsys.Embeddings.concatenate(parts)
            models[f"two_tower_softmax_ensemble{len(parts)}"] = {
                **score(emb["ensemble"]),
                "train_seconds": models[main]["train_seconds"] + time.time() - t0,
                "parameters": len(parts) * models[main]["parameters"]}

        # 4. Serving through the vector index: exact (flat) and IVF, against brute force.
        out["index"] = _serving(emb, main, seen, rank, test_r, c)

        # 5. Cold start: users held out of training entirely, ranked from their features only.
        kept, _, cold = R.holdout_users(train_r, c.cold_fraction, seed=config.seed)
        kept_feats = recsys.build_features(users, items, kept, zip_buckets=c.zip_buckets)
        _, cold_emb = fit_embed("two_tower_cold_start", kept, kept_feats, cold_users=cold)
        prior = (cold_emb.users @ cold_emb.items.T / tt.temperature
                 + c.cold_popularity_weight * rec.log_popularity(kept.item, R.NUM_ITEMS))
        out["cold_start"] = {
            "num_cold_users": len(cold),
            "two_tower_features_only": score(cold_emb, cold),
            "two_tower_features_only_popularity_prior": rec.topk_metrics(
                rec.top_k_unseen(prior, seen, K), test_r, cold),
            "popularity": rec.topk_metrics(
                rec.popularity_top_k(kept.item, R.NUM_ITEMS, seen, K), test_r, cold),
            "two_tower_warm_users": score(cold_emb, np.setdiff1d(np.arange(R.NUM_USERS), cold)),
        }
        tables["tt"], item_emb = out, emb[main].items

    # 6. The report: results table (markdown + JSON) and the item-embedding plot.
    return report.write(config, tables, item_emb, items, workdir)


def _rating_models(config, users: R.Users, items: R.Items) -> dict:
    """Name -> ``fit(train)`` returning a model with ``predict(user, item)``, in table order."""
    sizes = {"num_users": R.NUM_USERS, "num_items": R.NUM_ITEMS}
    side_u, side_i = recsys.mf_side_features(users, items)
    variants = {"biased_mf": (False, {})}
    if config.mf.side_features:
        variants["biased_mf_side_features"] = (False, {"user_features": side_u,
                                                       "item_features": side_i})
    if config.mf.svdpp:
        variants["svdpp"] = (True, {})
    fits = {name: functools.partial(mf.fit, config=_dataclass(
        mf.MFConfig, config.mf, implicit=implicit, seed=config.seed), **sizes, **kw)
        for name, (implicit, kw) in variants.items()}
    if config.bpmf.enabled:
        fits["bpmf"] = functools.partial(
            bpmf.fit, config=_dataclass(bpmf.BPMFConfig, config.bpmf), **sizes)
    return fits


def _serving(emb: dict, main: str, seen, rank, test_r: R.Ratings, c) -> dict:
    """The main model's (and the ensemble's) top-10 served from `FlatIndex` and `IVFIndex`."""
    users, items = emb[main]
    via_flat = rec.serve_top_k_unseen(FlatIndex(items.shape[1], "ip"), items, users, seen, K)
    ivf = IVFIndex(items.shape[1], "ip", nlist=c.ivf_nlist, nprobe=c.ivf_nprobe)
    via_ivf = rec.serve_top_k_unseen(ivf, items, users, seen, K)
    brute_force = rank(emb[main])
    flat = rec.agreement(via_flat, brute_force)
    out = {"model": main, "flat_same_top10_fraction": flat["same_list_fraction"],
           "flat_same_top10_set_fraction": flat["same_set_fraction"],
           "ivf_nlist": c.ivf_nlist, "ivf_nprobe": c.ivf_nprobe,
           "ivf_recall_at_10_vs_brute_force": rec.agreement(via_ivf, brute_force)["recall"],
           "ivf_metrics": rec.topk_metrics(via_ivf, test_r)}
    if "ensemble" in emb:
        users, items = emb["ensemble"]
        via_flat = rec.serve_top_k_unseen(FlatIndex(items.shape[1], "ip"), items, users, seen, K)
        out["ensemble_flat_same_top10_fraction"] = rec.agreement(
            via_flat, rank(emb["ensemble"]))["same_list_fraction"]
    return out


def _dataclass(cls, c: ml_collections.ConfigDict, **overrides):
    """The dataclass config ``cls`` from the keys of ``c`` it names, then ``overrides``."""
    return cls(**{**{f.name: c[f.name] for f in dataclasses.fields(cls)}, **overrides})
