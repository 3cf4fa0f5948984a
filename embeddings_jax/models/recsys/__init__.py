"""User and item embeddings from ratings: matrix factorization and two-tower retrieval.

* `factorization`: biased MF with optional SVD++ and side-feature terms (explicit ratings);
  `fold_errors` scores any rating model on MovieLens' predefined folds.
* `bpmf`: Bayesian PMF, Gibbs-sampled.
* `two_tower`: the towers over one shared feature table (`FeatureLayout`, `TwoTower`) and the
  pairwise losses; `two_tower_training`: `TwoTowerConfig`, `train_two_tower`, `embed`.
* `graph_embeddings`: node2vec on the user-item graph (`ratings_graph`, `node2vec_embeddings`).
* `movielens_features`: MovieLens-100K users and items as tower rows (`build_features`) and MF
  side-feature rows (`mf_side_features`).

Ranking, seen-item filtering and the Recommenders metrics live in `embeddings_jax.eval.recommend`.
"""

from embeddings_jax.models.recsys import bpmf, factorization, two_tower
from embeddings_jax.models.recsys.graph_embeddings import node2vec_embeddings, ratings_graph
from embeddings_jax.models.recsys.movielens_features import (
    Features,
    build_features,
    mf_side_features,
)
from embeddings_jax.models.recsys.two_tower import FeatureLayout, TwoTower
from embeddings_jax.models.recsys.two_tower_training import (
    Embeddings,
    TwoTowerConfig,
    TwoTowerFit,
    build_model,
    embed,
    make_loss_fn,
    train_two_tower,
)

__all__ = [
    "Embeddings",
    "FeatureLayout",
    "Features",
    "TwoTower",
    "TwoTowerConfig",
    "TwoTowerFit",
    "bpmf",
    "build_features",
    "build_model",
    "embed",
    "factorization",
    "make_loss_fn",
    "mf_side_features",
    "node2vec_embeddings",
    "ratings_graph",
    "train_two_tower",
    "two_tower",
]
