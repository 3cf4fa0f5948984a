"""FAISS-like vector indexes in JAX.

``FlatIndex`` (exact), ``SQ8Index`` (int8 scalar quantization + optional exact re-scoring),
``PQIndex`` (product quantization, asymmetric distances), ``BinaryIndex`` (sign codes, Hamming first
stage), ``IVFIndex`` (inverted lists over k-means cells, ``nprobe``), ``IVFPQIndex``, ``LSHIndex``
(random-hyperplane hash tables, Hamming ranking or multi-probe buckets) and ``RefineIndex`` (exact
re-ranking of any index's candidates); ``index_factory`` builds them from FAISS strings. All
share ``train / add / add_with_ids / search / range_search / reconstruct / remove_ids / reset / save /
load / len``; ``search(q, k) -> (D, I)``, filtered by ``ids=`` / ``exclude_ids=`` /
``params=SearchParameters(sel=IDSelectorBatch(...))``.
"""

from embeddings_jax.index.base import Index
from embeddings_jax.index.factory import index_factory
from embeddings_jax.index.flat import FlatIndex, exact_search
from embeddings_jax.index.ivf import IVFIndex, IVFPQIndex
from embeddings_jax.index.lsh import LSHIndex
from embeddings_jax.index.pq import BinaryIndex, PQIndex
from embeddings_jax.index.refine import RefineIndex
from embeddings_jax.index.selector import (
    IDSelector,
    IDSelectorBatch,
    IDSelectorNot,
    IDSelectorRange,
    SearchParameters,
    SearchParametersIVF,
)
from embeddings_jax.index.sq8 import SQ8Index

load = Index.load

__all__ = ["BinaryIndex", "FlatIndex", "IDSelector", "IDSelectorBatch", "IDSelectorNot", "IDSelectorRange",
           "IVFIndex", "IVFPQIndex", "Index", "LSHIndex", "PQIndex", "RefineIndex", "SQ8Index",
           "SearchParameters", "SearchParametersIVF", "exact_search", "index_factory", "load"]
