"""Doc2Vec (Le & Mikolov, 2014): paragraph vectors on the word2vec engine, with gensim's interface.

    >>> docs = [TaggedDocument(words, [i]) for i, words in enumerate(texts)]
    >>> model = Doc2Vec(docs, vector_size=100, window=5, min_count=2, epochs=20)
    >>> model.dv[0], model.dv.most_similar(0)
    >>> model.infer_vector(["a", "new", "document"])   # the same vector for the same seed
    >>> model.infer_vectors(token_lists)                # [N, D], all documents at once

A document's vector is one more input row of the engine (``dv``, beside the word rows): PV-DM
(``dm=1``) adds it to every CBOW window of the document (mean or sum, ``dm_mean``); PV-DBOW
(``dm=0``) makes it predict each of the document's words, as a skip-gram input predicts its
contexts, and ``dbow_words=1`` trains skip-gram word vectors in the same steps; ``dm_concat=1``
concatenates the document's row with the full window's rows instead of averaging them. Each document is
one sentence of the encoded corpus and ``tables["doc_rows"]`` names its row; the step finds a
token's row from the sentences begun before its chunk (``tables["sentences_before"]``). ``infer_vector``
trains new rows with the word and output tables frozen, many documents in one jitted loop.
Subsampling, windows, negatives, Huffman trees, workers and the learning-rate schedule are
:class:`~embeddings_jax.models.word2vec.Word2Vec`'s.
"""

from __future__ import annotations

import array
import copy
import dataclasses
import os
from collections.abc import Iterable, Iterator

import jax.numpy as jnp
import numpy as np

from embeddings_jax.data.documents import TaggedDocument, TaggedLineDocument
from embeddings_jax.data.vocab import Corpus
from embeddings_jax.models.word2vec.model import (
    Word2Vec,
    _initial_vectors,
    _put_blocks,
    _replicate,
    _Schedule,
)
from embeddings_jax.models.word2vec.step import make_train_step
from embeddings_jax.train.sharding import host_value
from embeddings_jax.vectors.documents import DocumentVectors, tag_key

DV_SEED_OFFSET = 7919  # gensim draws document vectors from seed + 7919 (not the words' stream)
_MIN_INFER_CHUNK = 256  # tokens per chunk of infer_vector on small inputs (a power of two)


@dataclasses.dataclass
class DocumentCorpus(Corpus):
    """An encoded corpus whose sentences are documents: ``doc_rows [S]`` is the ``dv`` row of
    each sentence that kept a token (documents without one are left out, as their words are)."""

    doc_rows: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.int32))


class _DocumentWords:
    """The words of tagged documents, re-iterable, recording each document's tag on the way
    (so counting the vocabulary also scans the tags, in one pass)."""

    def __init__(self, documents: Iterable):
        self.documents = documents
        self.int_tags, self.str_tags = -1, {}

    def __iter__(self) -> Iterator[list[str]]:
        self.int_tags, self.str_tags = -1, {}
        for words, tag in map(_words_and_tag, self.documents):
            if isinstance(tag, str):
                self.str_tags.setdefault(tag, None)
            else:
                self.int_tags = max(self.int_tags, int(tag))
            yield words

    def keys(self) -> list[str]:
        """gensim's order: int tags ``0 .. max`` (their decimal strings), then string tags."""
        keys = [str(i) for i in range(self.int_tags + 1)]
        clash = [t for t in self.str_tags if t.isdigit() and int(t) <= self.int_tags and t == str(int(t))]
        if clash:
            raise ValueError(f"string tags {clash[:3]} equal int tags' keys; use one kind of tag per number")
        return keys + list(self.str_tags)


def _words_and_tag(doc) -> tuple[list[str], object]:
    """A document's words and its one tag, with errors naming what is wrong."""
    if not (hasattr(doc, "words") and hasattr(doc, "tags")):
        raise TypeError(f"Doc2Vec trains on TaggedDocument(words, tags) objects, got {type(doc).__name__}: "
                        "wrap each token list, e.g. TaggedDocument(words, [i])")
    words, tags = doc.words, doc.tags
    if isinstance(words, str):
        raise TypeError("a document's words must be a list of tokens, got a string; split it first")
    if isinstance(tags, (str, int, np.integer)):
        tags = [tags]
    tags = list(tags)
    if len(tags) != 1:
        raise ValueError(f"each document needs exactly one tag, got {tags!r}: several tags per document "
                         "are not supported (give each document one key and keep labels apart)")
    tag_key(tags[0])  # checks the tag's type
    return words, tags[0]


def _documents(documents, corpus_file):
    """The one corpus of a Doc2Vec call: tagged documents, or a file's lines tagged by number."""
    if (documents is None) == (corpus_file is None):
        raise ValueError("give exactly one of documents (TaggedDocument objects) and corpus_file (a path)")
    if corpus_file is not None:
        return TaggedLineDocument(corpus_file)
    if iter(documents) is documents:
        raise TypeError("the documents are read twice (vocabulary, then training), so they cannot be a "
                        "one-shot iterator or generator; pass a list or a TaggedLineDocument")
    return documents


class Doc2Vec(Word2Vec):
    """PV-DM / PV-DBOW document vectors (gensim's names and defaults).

    Args (gensim's): documents: re-iterable ``TaggedDocument(words, [tag])`` (one tag each, str or
      int); corpus_file: one document a line, tagged by line number. dm: 1 PV-DM, 0 PV-DBOW.
      dm_mean: PV-DM's window input, 1 mean (default, as gensim's ``cbow_mean=1``), 0 sum.
      dm_concat: 1 for PV-DM over the concatenation of the document's row and the full window's
      rows (a null word padding it at the document's ends, and at a chunk's, which no window
      spans; output rows ``(1 + 2 window) D`` wide).
      dbow_words: PV-DBOW also trains skip-gram word vectors. window, epochs (10),
      shrink_windows; every other keyword is :class:`Word2Vec`'s (min_count, sample, negative, hs,
      alpha, min_alpha, seed, workers, chunk_size, ...).
      dm_tag_count, dv, dv_mapfile: gensim's; only their defaults are supported.
    """

    def __init__(self, documents=None, corpus_file: str | os.PathLike | None = None, vector_size: int = 100,
                 dm_mean: int | None = None, dm: int = 1, dbow_words: int = 0, dm_concat: int = 0,
                 dm_tag_count: int = 1, dv=None, dv_mapfile=None, comment=None, trim_rule=None,
                 callbacks=(), window: int = 5, epochs: int = 10, shrink_windows: bool = True, **kwargs):
        if dm_tag_count != 1 or dv is not None or dv_mapfile is not None:
            raise ValueError("dm_tag_count, dv and dv_mapfile take only their defaults (1, None, None)")
        if "sg" in kwargs or "cbow_mean" in kwargs:
            raise TypeError("Doc2Vec takes dm= (not sg=) and dm_mean= (not cbow_mean=), as gensim")
        self.dm, self.dbow_words, self.dm_tag_count = int(bool(dm)), int(bool(dbow_words)), 1
        self.dm_concat = int(bool(dm_concat)) if self.dm else 0
        if self.dm_concat:  # gensim: a null word pads windows at the document's ends; windows are full
            kwargs["null_word"], shrink_windows = 1, False
        self.tag_keys: list[str] = []
        self._scan: _DocumentWords | None = None
        cbow_mean = 1 if dm_mean is None else int(bool(dm_mean))
        docs = None if documents is None and corpus_file is None else _documents(documents, corpus_file)
        super().__init__(docs, None, vector_size=vector_size, window=window, epochs=epochs, sg=1 - self.dm,
                         cbow_mean=cbow_mean, trim_rule=trim_rule, callbacks=callbacks, comment=comment,
                         shrink_windows=shrink_windows, **kwargs)  # fmt: skip

    @property
    def _min_auto_chunk(self) -> int:
        """Document vectors of short documents (captions) come out better from chunks as small as
        the frequent-word bound allows (experiments/results/doc2vec.md), at no loss of speed; not
        with dm_concat, whose windows cut by a chunk's ends are padded with the null word."""
        return 256 if self.dm_concat else 64

    def _auto_chunk(self, keep: np.ndarray, counts: np.ndarray) -> int:
        """Word2Vec's bound on frequent words' pile-ups; for PV-DBOW without word training, at
        least two mean documents (up to 16384 tokens a step), so a document's vector mostly takes
        its whole document's gradient in one step: on Brown's 2,300-word files that lifts genre
        accuracy from gensim's level to far above it (experiments/results/doc2vec.md)."""
        c = super()._auto_chunk(keep, counts)
        if self.dm or self.dbow_words:
            return c
        mean_document = self.vocab.raw_words / max(self.vocab.num_sentences, 1)
        whole = min(_bucket(int(2 * mean_document), 64), 16384) // (self.chunks_per_step // self.mesh.size)
        return max(c, -(-whole // self.negative_group) * self.negative_group)

    @property
    def dbow(self) -> bool:
        return not self.dm

    @property
    def layer1_size(self) -> int:
        """Width of the output rows: ``vector_size``, or ``(1 + 2 window) vector_size`` with dm_concat."""
        return (1 + 2 * self.window) * self.vector_size if self.dm_concat else self.vector_size

    def _step_options(self) -> dict:
        doc = "dbow" if not self.dm else "dmc" if self.dm_concat else "dm"
        return {"doc": doc, "words": bool(self.dm or self.dbow_words)}

    def _input_tables(self, keep, counts, capacity) -> tuple[dict, int]:
        """With dm_concat, the null word's id (the vocabulary's last word, gensim's ``"\\0"``)."""
        return ({"null_row": np.int32(len(self.vocab) - 1)} if self.dm_concat else {}), 0

    # ---------------------------------------------------------------- vocabulary and tags
    def build_vocab(self, corpus_iterable=None, corpus_file=None, update: bool = False, progress_per: int = 10000,
                    keep_raw_vocab: bool = False, trim_rule=None) -> Doc2Vec:
        """Counts the documents' words and collects their tags (gensim's signature); a tag's row
        is its position in ``dv``."""
        if update:
            self._check_can_grow()
        self._scan = _DocumentWords(_documents(corpus_iterable, corpus_file))
        try:
            return super().build_vocab(self._scan, progress_per=progress_per, trim_rule=trim_rule)
        finally:
            self._scan = None

    def build_vocab_from_freq(self, *args, **kwargs):
        raise ValueError("Doc2Vec needs its documents' tags: call build_vocab(documents)")

    def _check_can_grow(self) -> None:
        raise ValueError("Doc2Vec cannot grow a trained vocabulary or tag set (build_vocab(update=True)); "
                         "train a new model, or infer_vector() for new documents")

    def _set_vocab(self, vocab):
        if self._scan is not None:
            self.tag_keys = self._scan.keys()
        return super()._set_vocab(vocab)

    def reset_params(self):
        """Word2Vec's fresh tables (output rows ``layer1_size`` wide) and document vectors
        ~ U[-1/D, 1/D] from ``seed + 7919``."""
        super().reset_params()
        dv = _initial_vectors(self.seed + DV_SEED_OFFSET, len(self.tag_keys), self.vector_size)
        self.params["dv"] = _replicate(dv, self.mesh)

    # ---------------------------------------------------------------- corpus
    def encode(self, documents, rows_by_position: bool = False) -> DocumentCorpus:
        """The documents' in-vocabulary words (one sentence each) and their ``dv`` rows: their
        tags', or (``rows_by_position``, for inference) their positions."""
        if self.vocab is None:
            raise ValueError("call build_vocab(documents) before encoding or training")
        rows_of, rows, kept = {k: i for i, k in enumerate(self.tag_keys)}, array.array("i"), []

        def words():
            for n, doc in enumerate(documents):
                if rows_by_position:
                    text = doc.words if hasattr(doc, "words") else doc
                    if isinstance(text, str):
                        raise TypeError("a document must be a list of tokens, got a string; split it first")
                    rows.append(n)
                    yield text
                    continue
                text, tag = _words_and_tag(doc)
                row = rows_of.get(tag_key(tag))
                if row is None:
                    raise KeyError(f"document {n} has tag {tag!r}, which build_vocab did not see; "
                                   "build the vocabulary from the documents you train on")
                rows.append(row)
                yield text

        corpus = self.vocab.encode(words(), kept)
        doc_rows = np.frombuffer(rows, np.int32)[kept] if kept else np.zeros(0, np.int32)
        return DocumentCorpus(corpus.tokens, corpus.raw_words, corpus.num_sentences, doc_rows.astype(np.int32))

    def train(self, corpus_iterable=None, corpus_file=None, total_examples=None, total_words=None, epochs=None,
              start_alpha=None, end_alpha=None, word_count: int = 0, queue_factor: int = 2,
              report_delay: float = 1.0, compute_loss: bool = False, callbacks=()) -> tuple[int, int]:
        """Trains on tagged documents (or ``corpus_file``'s lines), as :meth:`Word2Vec.train`."""
        docs = corpus_iterable if isinstance(corpus_iterable, DocumentCorpus) else _documents(corpus_iterable, corpus_file)
        return super().train(docs, total_examples=total_examples, total_words=total_words, epochs=epochs,
                             start_alpha=start_alpha, end_alpha=end_alpha, compute_loss=compute_loss,
                             callbacks=callbacks)  # fmt: skip

    def _check_trainable(self, corpus: Corpus) -> None:
        """Any document with a known word trains (its own row is an input even alone)."""

    def _corpus_tables(self, corpus: Corpus, plan: _Schedule) -> dict:
        """Each sentence's ``dv`` row and how many sentences begin before each chunk."""
        if not isinstance(corpus, DocumentCorpus):
            raise TypeError("Doc2Vec trains on documents: pass TaggedDocument objects, not an encoded Corpus")
        c, n = plan.c, len(corpus)
        is_start = (corpus.tokens & 1) * (corpus.tokens >= 0)  # -1 is padding
        starts = np.add.reduceat(is_start, np.arange(0, n, c)) if n else np.zeros(0, np.int64)
        first = np.zeros(plan.steps * plan.g + 1, np.int32)
        first[1 : starts.size + 1] = np.cumsum(starts)  # sentences begun before chunk k
        first[starts.size + 1 :] = first[starts.size]
        rows = corpus.doc_rows if corpus.doc_rows.size else np.zeros(1, np.int32)
        return _replicate({"doc_rows": rows, "sentences_before": first}, self.mesh)

    # ---------------------------------------------------------------- vectors
    @property
    def dv(self) -> DocumentVectors:
        """The document vectors keyed by tag (int tags as their decimal strings), rebuilt lazily."""
        if self.params is None:
            raise ValueError("the model has no vocabulary yet; call build_vocab() and train()")
        if getattr(self, "_dv_source", None) is not self.params["dv"]:  # trained since
            self._dv = DocumentVectors(self.tag_keys, host_value(self.params["dv"]))
            self._dv_source = self.params["dv"]
        return self._dv

    def infer_vector(self, doc_words: list[str], alpha: float | None = None, min_alpha: float | None = None,
                     epochs: int | None = None, seed: int | None = None) -> np.ndarray:
        """A ``[D]`` vector for a new document, trained with the words and outputs frozen (gensim's
        signature; ``seed`` defaults to the model's). The same call gives the same vector."""
        if isinstance(doc_words, str):
            raise TypeError("infer_vector takes a list of tokens, not a string; split it first")
        return self.infer_vectors([doc_words], alpha, min_alpha, epochs, seed)[0]

    def infer_vectors(self, documents, alpha: float | None = None, min_alpha: float | None = None,
                      epochs: int | None = None, seed: int | None = None) -> np.ndarray:
        """``[N, D]`` vectors of new documents (token lists or TaggedDocuments), all trained in
        one jitted loop: ``epochs`` passes, the learning rate from ``alpha`` to ``min_alpha``
        (defaults: the model's), new rows ~ U[-1/D, 1/D] from ``seed``. Deterministic for a
        seed and a list of documents; a document without a known word keeps its initial row. A
        document's vector depends on the batch it is inferred in (its random draws and learning
        rate follow its position), as gensim's depend on its random state."""
        if self.params is None:
            raise ValueError("infer_vector needs a trained model: call build_vocab() and train() first")
        documents = list(documents)
        seed = self.seed if seed is None else int(seed)
        epochs = self.epochs if epochs is None else epochs
        if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 1:
            raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
        a0 = self.alpha if alpha is None else alpha
        a1 = self.min_alpha if min_alpha is None else min_alpha
        if not (np.isfinite(a0) and np.isfinite(a1) and a0 > 0 and a1 >= 0):
            raise ValueError(f"alpha must be > 0 and min_alpha >= 0, both finite (got {a0}, {a1})")
        corpus = self.encode(documents, rows_by_position=True)
        n_rows = _bucket(len(documents), 64)  # padded shapes: one compiled loop serves many calls
        init = _initial_vectors(seed, n_rows, self.vector_size)
        if len(corpus) == 0:
            return init[: len(documents)]
        frozen = self._inference_model(len(corpus), seed)
        n_tok = _bucket(len(corpus), frozen.chunk_size)
        tokens = np.full(n_tok, -1, np.int32)
        tokens[: len(corpus)] = corpus.tokens
        rows = np.zeros(_bucket(corpus.doc_rows.size, 64), np.int32)
        rows[: corpus.doc_rows.size] = corpus.doc_rows
        padded = DocumentCorpus(tokens, corpus.raw_words, corpus.num_sentences, rows)
        plan = _Schedule(n_tok, frozen.chunk_size, frozen.chunks_per_step, self.mesh.size, frozen.sync_every)
        placed = _put_blocks(plan.worker_blocks(tokens, self.mesh), plan.block_length, self.mesh)
        tables = {**frozen.tables, **self._corpus_tables(padded, plan)}
        frozen.params = {**{k: jnp.copy(t) for k, t in self.params.items() if k != "dv"},
                         "dv": _replicate(init, self.mesh)}  # fmt: skip
        frozen._run(plan, placed, tables, corpus.raw_words, len(corpus), epochs, a0, a1)
        return host_value(frozen.params["dv"])[: len(documents)]

    def _inference_model(self, n_tokens: int, seed: int) -> Doc2Vec:
        """A shallow copy whose step trains only document rows, with chunks no longer than the
        input needs (small inputs take small, fast chunks)."""
        frozen = copy.copy(self)
        frozen.seed, frozen.progress, frozen.epochs_trained = seed, False, 0
        chunk = min(self.chunk_size, _bucket(n_tokens, _MIN_INFER_CHUNK))
        frozen.chunk_size = -(-chunk // self.negative_group) * self.negative_group
        counts = self.vocab.counts
        capacity = frozen._capacity(host_value(self.tables["keep"]), counts)
        cfg = dataclasses.replace(self.step_config, chunk_size=frozen.chunk_size, capacity=capacity,
                                  words=bool(self.dm), frozen_words=True, compute_loss=False)  # fmt: skip
        frozen.step_config, frozen._step = cfg, make_train_step(cfg, self.mesh)
        return frozen

    # ---------------------------------------------------------------- persistence
    def hparams(self) -> dict:
        h = super().hparams()
        h.pop("sg")
        h["dm_mean"] = h.pop("cbow_mean")
        return {**h, "dm": self.dm, "dbow_words": self.dbow_words, "dm_concat": self.dm_concat}

    def _extra_meta(self) -> dict:
        return {"tags": self.tag_keys}

    def _load_meta(self, meta: dict) -> None:
        self.tag_keys = list(meta["tags"])


def _bucket(n: int, smallest: int) -> int:
    """``smallest * 2^k >= n``: padded sizes, so compiled programs are reused across inputs."""
    size = smallest
    while size < n:
        size *= 2
    return size


__all__ = ["Doc2Vec", "DocumentCorpus", "TaggedDocument"]
