"""FAISS-like vector indexes in JAX.

``FlatIndex`` (exact), ``SQ8Index`` (int8 scalar quantization + optional exact re-scoring),
``PQIndex`` (product quantization, asymmetric distances), ``BinaryIndex`` (sign codes, Hamming first
stage), ``IVFIndex`` (inverted lists over k-means cells, ``nprobe``) and ``IVFPQIndex``.
All share ``train / add / search / remove_ids / save / load / len``; ``search(q, k) -> (D, I)``.
"""

from embeddings_jax.index.base import Index
from embeddings_jax.index.flat import FlatIndex, exact_search
from embeddings_jax.index.ivf import IVFIndex, IVFPQIndex
from embeddings_jax.index.pq import BinaryIndex, PQIndex
from embeddings_jax.index.sq8 import SQ8Index

load = Index.load

__all__ = ["BinaryIndex", "FlatIndex", "IVFIndex", "IVFPQIndex", "Index", "PQIndex", "SQ8Index", "exact_search", "load"]
