"""embeddings_jax: classic embedding methods in JAX/Flax, from word2vec to BERT and vector search."""

__version__ = "0.1.0"
