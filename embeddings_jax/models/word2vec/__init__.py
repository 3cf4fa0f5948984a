"""word2vec: the update math (:mod:`.updates`), the jitted step (:mod:`.step`), the
gensim-style :class:`Word2Vec` (:mod:`.model`), and on it :class:`FastText` (:mod:`.fasttext`),
:class:`Doc2Vec` (:mod:`.doc2vec`) and node2vec / DeepWalk (:mod:`.node2vec`).
gensim's ``Phrases`` (:mod:`embeddings_jax.data.phrases`) is re-exported here, beside ``Word2Vec``."""

from embeddings_jax.data.documents import TaggedDocument, TaggedLineDocument
from embeddings_jax.data.phrases import ENGLISH_CONNECTOR_WORDS, FrozenPhrases, Phrases
from embeddings_jax.models.word2vec.doc2vec import Doc2Vec
from embeddings_jax.models.word2vec.fasttext import (
    FastText,
    load_facebook_model,
    load_facebook_vectors,
    save_facebook_model,
)
from embeddings_jax.models.word2vec.model import VARIANTS, Word2Vec, init_params
from embeddings_jax.models.word2vec.node2vec import Node2Vec, node_word_ids, walk_corpus
from embeddings_jax.models.word2vec.step import (
    chunk_updates,
    make_train_step,
    random_bits_per_chunk,
    sample_chunk,
    sample_negatives,
)
from embeddings_jax.models.word2vec.updates import (
    MAX_EXP,
    StepConfig,
    apply_updates,
    updates_from_draws,
)

__all__ = [
    "ENGLISH_CONNECTOR_WORDS",
    "MAX_EXP",
    "VARIANTS",
    "Doc2Vec",
    "FastText",
    "FrozenPhrases",
    "Node2Vec",
    "Phrases",
    "StepConfig",
    "TaggedDocument",
    "TaggedLineDocument",
    "Word2Vec",
    "apply_updates",
    "chunk_updates",
    "init_params",
    "load_facebook_model",
    "load_facebook_vectors",
    "make_train_step",
    "node_word_ids",
    "random_bits_per_chunk",
    "sample_chunk",
    "sample_negatives",
    "save_facebook_model",
    "updates_from_draws",
    "walk_corpus",
]
