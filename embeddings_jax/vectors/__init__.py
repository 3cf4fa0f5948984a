"""Words and their vectors: `KeyedVectors` (gensim's query, attribute and file API) and its file
formats (word2vec C text/binary and GloVe in :mod:`.word2vec_format`, gensim's pickles in
:mod:`.gensim_pickle`)."""

from embeddings_jax.vectors.keyed import Key, KeyedVectors

__all__ = ["Key", "KeyedVectors"]
