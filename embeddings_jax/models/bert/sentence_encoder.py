"""Sentence and word embeddings from a pretrained BERT-family model, with sentence-transformers'
surface (``encode``, ``similarity``, prompts, quantized outputs).

    enc = SentenceEncoder("all-MiniLM-L6-v2")          # a directory, or a name in the HF hub cache
    x = enc.encode(["A dog runs.", "A cat sleeps."])    # [2, 384], pooled and normalised as the model says
    v = enc.encode("A dog runs.")                       # [384]
    s = enc.similarity(x, x)                            # [2, 2] cosine (the model's similarity_fn_name)
    words, vecs = enc.word_vectors("the river bank and the bank vault")   # [W, D]

Every pooling is a weighted sum (or, for ``max``, a maximum) over tokens of one combination of
hidden states:

========================  ==================================  =====================================
pooling                   layers                              tokens
========================  ==================================  =====================================
``cls``                   last layer                          the first ([CLS]) token
``mean``                  last layer                          masked mean, [CLS]/[SEP] included
``max``                   last layer                          masked maximum per dimension
``mean_sqrt_len_tokens``  last layer                          masked sum / sqrt(length)
``weightedmean``          last layer                          weights 1, 2, ... by position
``lasttoken``             last layer                          the last ([SEP]) token
``mean_second_to_last``   second-to-last layer                as ``mean``
``sum_last4``             sum of the last four layers         mean over words of the mean of their
``concat_last4``          last four layers concatenated (4D)  word pieces (special tokens left
``mean_last4``            mean of the last four layers        out): word vectors, averaged
========================  ==================================  =====================================

A model directory's own pipeline sets the defaults, as in sentence-transformers: the pooling of
``1_Pooling/config.json`` (several modes are concatenated), unit-length output when
``modules.json`` lists a Normalize module, ``max_seq_length`` / ``do_lower_case`` from
``sentence_bert_config.json``, and ``prompts`` / ``default_prompt_name`` /
``similarity_fn_name`` from ``config_sentence_transformers.json``. Inputs longer than
``max_seq_length`` tokens ([CLS] and [SEP] included) are **truncated**. Empty or whitespace-only
strings raise ``ValueError``; a non-string input raises ``TypeError``.

Speed: all texts are tokenised in one ``encode_batch`` call, sorted by length and **packed**: short
texts share rows of 32 to `PACK_LEN` tokens (about twice the median text; first-fit decreasing), a
block-diagonal attention mask keeps them apart and positions restart for each; longer texts get a
row each, padded to a short ladder of lengths. A batch holds about ``batch_size * TOKENS_PER_TEXT``
tokens whatever the text lengths, so a handful of compiled shapes serve any input with little
padding. Batches are dispatched without waiting and gathered at the end. With
``dtype=jnp.bfloat16`` the matrix products take bfloat16 operands (float32 accumulation, all else
float32), which CPUs with AMX or AVX512-BF16 run several times faster; float32 is the default.
"""

from __future__ import annotations

import dataclasses
import functools
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
from embeddings_jax.ops import similarity as sim
from embeddings_jax.ops.quantize import PRECISIONS, quantize_embeddings
from embeddings_jax.ops.similarity import l2_normalize
from embeddings_jax.train.logging import progress

LAYERS = ("last", "second_to_last", "sum_last4", "concat_last4", "mean_last4")
POOLINGS = {  # pooling -> (layer combination, token weights)
    "cls": ("last", "first"),
    "mean": ("last", "tokens"),
    "max": ("last", "max"),
    "mean_sqrt_len_tokens": ("last", "sqrt_tokens"),
    "weightedmean": ("last", "positions"),
    "lasttoken": ("last", "last"),
    "mean_second_to_last": ("second_to_last", "tokens"),
    "sum_last4": ("sum_last4", "words"),
    "concat_last4": ("concat_last4", "words"),
    "mean_last4": ("mean_last4", "words"),
}
OUTPUT_VALUES = ("sentence_embedding", "token_embeddings", None)
SIMILARITY_FN_NAMES = ("cosine", "dot", "euclidean", "manhattan")
PACK_LEN = 64  # the longest packed row: texts up to this many tokens share rows
TOKENS_PER_TEXT = 32  # a batch holds about batch_size * TOKENS_PER_TEXT tokens
# Row lengths of unpacked texts: steps of 16 up to 256, then 32 (little padding, few shapes).
_BUCKETS = (8, 16, 24, 32, 48, *range(64, 256, 16), *range(256, 513, 32))


# ----------------------------------------------------------------------------------- pooling math


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


def _segments(batch: dict[str, jax.Array]) -> tuple[jax.Array, jax.Array]:
    """(attention segments, pooling segments), int [B, T]: 0 is padding, k the k-th text of a row.
    A `make_batch` batch holds one text per row (its attention mask)."""
    seg = batch.get("segment_ids")
    seg = batch["attention_mask"].astype(jnp.int32) if seg is None else seg
    return seg, batch.get("pool_segment_ids", seg)


def pool(hidden_states: Sequence[jax.Array], batch: dict[str, jax.Array], pooling: str,
         slots: int | None = None) -> jax.Array:
    """Text vectors for one pooling: [B, D'] for a `make_batch` batch (one text per row), or
    [B, slots, D'] for packed rows, where slot ``k`` of row ``b`` pools the tokens whose pooling
    segment is ``k + 1``."""
    if slots is None:
        return pool(hidden_states, batch, pooling, 1)[:, 0]
    layers, weights = POOLINGS[pooling]
    x = combine_layers(hidden_states, layers).astype(jnp.float32)
    texts, seg = _segments(batch)
    if weights == "max":
        b, t, d = x.shape
        ids = jnp.where(seg > 0, seg - 1 + slots * jnp.arange(b)[:, None], b * slots)  # padding: a spare id
        out = jax.ops.segment_max(x.reshape(b * t, d), ids.reshape(-1), num_segments=b * slots + 1)
        return out[:-1].reshape(b, slots, d)
    onehot = (seg[:, :, None] == jnp.arange(1, slots + 1)).astype(jnp.float32)  # [B, T, K]
    count = jnp.maximum(onehot.sum(axis=1, keepdims=True), 1.0)
    if weights == "tokens":
        w = onehot / count
    elif weights == "sqrt_tokens":
        w = onehot / jnp.sqrt(count)
    elif weights == "first":
        w = onehot * (jnp.cumsum(onehot, axis=1) == 1)
    elif weights == "last":
        w = onehot * (jnp.cumsum(onehot, axis=1) == count)
    elif weights == "positions":  # position within the text, 1-based (prompt tokens keep their places)
        rank = jnp.cumsum(texts[:, :, None] == jnp.arange(1, slots + 1), axis=1)
        w = onehot * rank
        w = w / jnp.maximum(w.sum(axis=1, keepdims=True), 1e-9)
    else:  # words
        w = onehot * batch["word_weights"][:, :, None]
    return jnp.einsum("btk,btd->bkd", w, x)


def pooled_forward(params, batch, *, config: BertConfig, poolings: tuple[str, ...], dtype=jnp.float32,
                   deterministic: bool = True, rngs=None) -> dict[str, jax.Array]:
    """Pure forward pass of a `make_batch` batch: ``{pooling: [B, D']}`` float32. Differentiable
    (used for fine-tuning)."""
    out = BertEncoder(config, dtype).apply(
        {"params": params}, batch["input_ids"], batch["attention_mask"], batch["token_type_ids"],
        deterministic=deterministic, rngs=rngs,
    )
    return {p: pool(out.hidden_states, batch, p) for p in poolings}


@functools.partial(jax.jit, static_argnames=("config", "poolings", "dtype", "slots", "with_tokens"))
def _rows_forward(params, batch, *, config: BertConfig, poolings: tuple[str, ...], dtype, slots: int,
                  with_tokens: bool):
    """Packed rows -> ({pooling: [R, slots, D']}, last hidden state [R, T, D] or None)."""
    seg, _ = _segments(batch)
    mask = (seg > 0) if slots == 1 else (seg[:, :, None] == seg[:, None, :]) & (seg[:, None, :] > 0)
    out = BertEncoder(config, dtype).apply(
        {"params": params}, batch["input_ids"], mask, batch["token_type_ids"], batch["position_ids"])
    pooled = {p: pool(out.hidden_states, batch, p, slots) for p in poolings}
    return pooled, (out.hidden_states[-1].astype(jnp.float32) if with_tokens else None)


@functools.partial(jax.jit, static_argnames=("config", "dtype"))
def _hidden_states(params, batch, *, config: BertConfig, dtype):
    return BertEncoder(config, dtype).apply(
        {"params": params}, batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]).hidden_states


# ------------------------------------------------------------------------------- batches (host)


def bucket_length(n: int, max_len: int) -> int:
    """Smallest bucket >= n (capped at ``max_len``)."""
    return min(next((b for b in _BUCKETS if b >= n), max_len), max_len)


def _word_weights(encoding, n: int) -> np.ndarray:
    """1 / (pieces of the word * words in the text) on word pieces, 0 on special tokens."""
    word = np.array([-1 if w is None else w for w in encoding.word_ids[:n]], np.int64)
    out = np.zeros(n, np.float32)
    real = word >= 0
    if real.any():
        _, inverse, pieces = np.unique(word[real], return_inverse=True, return_counts=True)
        out[real] = 1.0 / (pieces[inverse] * len(pieces))
    return out


def make_batch(encodings: Sequence[Any], seq_len: int, rows: int | None = None) -> dict[str, np.ndarray]:
    """Pads ``tokenizers`` encodings to ``[rows, seq_len]`` numpy arrays, one text per row.

    Returns ``input_ids``, ``attention_mask``, ``token_type_ids`` (int32) and the float32 pooling
    weights ``word_weights`` (1 / (pieces of the word * words in the sentence) on word pieces, 0 on
    special tokens); token means come from the attention mask. Extra rows are all padding.
    """
    rows = len(encodings) if rows is None else rows
    ids = np.zeros((rows, seq_len), np.int32)
    types = np.zeros_like(ids)
    mask = np.zeros_like(ids)
    word_w = np.zeros((rows, seq_len), np.float32)
    for i, e in enumerate(encodings):
        n = len(e.ids)
        if n > seq_len:
            raise ValueError(f"encoding {i} has {n} tokens, more than seq_len={seq_len}")
        ids[i, :n], types[i, :n], mask[i, :n] = e.ids, e.type_ids, 1
        word_w[i, :n] = _word_weights(e, n)
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types, "word_weights": word_w}


def pack_rows(lengths: np.ndarray, pack_len: int = PACK_LEN, max_len: int = 512) -> list[tuple[int, list[list[int]]]]:
    """Rows of texts: ``[(row length, [[text ids of a row, in order], ...]), ...]``.

    Texts of at most ``pack_len`` tokens are packed first-fit decreasing into rows of ``pack_len``
    (or one shorter bucket when they all fit in it); each longer text gets a row of its bucket length.
    """
    lengths = np.asarray(lengths, np.int64)
    order = np.argsort(-lengths, kind="stable")
    groups: dict[int, list[list[int]]] = {}
    short = [int(i) for i in order if lengths[i] <= pack_len]
    for i in order:
        if lengths[i] > pack_len:
            groups.setdefault(bucket_length(int(lengths[i]), max_len), []).append([int(i)])
    if short:
        cap = min(pack_len, bucket_length(int(lengths[short].sum()), pack_len))
        free: list[list[int]] = [[] for _ in range(cap + 1)]  # free[c]: rows with c free tokens
        rows, fill = [], []
        for i in short:  # longest first; the fullest row that still fits
            n = int(lengths[i])
            r = next((free[c].pop() for c in range(n, cap + 1) if free[c]), None)
            if r is None:
                r = len(rows)
                rows.append([])
                fill.append(0)
            rows[r].append(i)
            fill[r] += n
            free[cap - fill[r]].append(r)
        groups.setdefault(cap, []).extend(rows)
    return sorted(groups.items(), reverse=True)


def _pack_length(lengths: np.ndarray, max_len: int) -> int:
    """Packed row length: about twice the median text, 32 to `PACK_LEN` tokens (attention grows
    with the row, padding with fewer texts per row)."""
    return min(max(32, bucket_length(2 * int(np.median(lengths)), PACK_LEN)), PACK_LEN, max_len)


@dataclasses.dataclass
class _Batch:
    """One dispatched batch: where each of its texts sits (row, slot, offset) and the outputs."""

    texts: np.ndarray
    rows: np.ndarray
    slots: np.ndarray
    offsets: np.ndarray
    outputs: Any = None


def _row_counts(n_rows: int, per_batch: int, shards: int) -> list[int]:
    """Rows of each batch: full batches, then the rest in powers of two (times ``shards``), so
    every call uses one of a few shapes and pads at most ``shards - 1`` rows."""
    per_batch = -(-per_batch // shards) * shards
    counts = [per_batch] * (n_rows // per_batch)
    units = -(-(n_rows - sum(counts)) // shards)
    while units:
        piece = 1 << (units.bit_length() - 1)
        counts.append(piece * shards)
        units -= piece
    return counts


# --------------------------------------------------------------------------------- the encoder


def _matmul_operands(params, dtype):
    """``params`` with the matrix-product kernels cast once to ``dtype`` (bfloat16 inference)."""
    if jnp.dtype(dtype) == jnp.float32:
        return params
    cast = lambda path, x: x.astype(dtype) if path[-1].key == "kernel" else x
    return jax.tree_util.tree_map_with_path(cast, params)


def _similarity(name: str, a: jax.Array, b: jax.Array, pairwise: bool) -> jax.Array:
    if name == "cosine":
        a, b = l2_normalize(a), l2_normalize(b)
        name = "dot"
    if pairwise:
        if name == "dot":
            return jnp.sum(a * b, axis=-1)
        diff = a - b
        return -jnp.sqrt(jnp.sum(diff * diff, -1)) if name == "euclidean" else -jnp.sum(jnp.abs(diff), -1)
    if name == "dot":
        return sim.dot(a, b)
    if name == "euclidean":
        return -sim.euclidean(a, b)
    return -jnp.sum(jnp.abs(a[:, None, :] - b[None, :, :]), axis=-1)  # manhattan


def _as_matrix(x) -> jax.Array:
    if isinstance(x, list | tuple):
        x = jnp.stack([jnp.asarray(v) for v in x]) if len(x) else jnp.zeros((0, 0))
    x = jnp.asarray(x, jnp.float32)
    return x[None] if x.ndim == 1 else x


class SentenceEncoder:
    """A BERT-family model with its tokenizer and sentence-transformers pipeline settings.

    ``SentenceEncoder(model_name_or_path)`` loads a local model directory or a model already in
    the Hugging Face hub cache (offline; see `checkpoint.resolve_model_dir`); ``None`` loads the
    packaged all-MiniLM-L6-v2. ``SentenceEncoder(config, params, tokenizer)`` wraps loaded parts
    (mean pooling, no normalisation unless ``pooling`` / ``normalize`` say otherwise).

    Args:
      max_seq_length: longer inputs are truncated to this many tokens ([CLS]/[SEP] included).
      dtype: matrix-product operand dtype (``jnp.float32`` or ``jnp.bfloat16``); outputs are float32.
      mesh: optional 1-D ``("data",)`` mesh; batches are split over it, parameters replicated.
      pooling, normalize, prompts, default_prompt_name, similarity_fn_name: override the model's.
      revision, cache_folder: which cached snapshot to use (a ref such as ``main``, or a commit),
        and another hub cache directory.
    """

    def __init__(self, model_name_or_path: str | pathlib.Path | BertConfig | None = None, params=None,
                 tokenizer=None, *, max_seq_length: int | None = None, dtype=jnp.float32,
                 mesh: Mesh | None = None, pooling: str | Sequence[str] | None = None,
                 normalize: bool | None = None, prompts: dict[str, str] | None = None,
                 default_prompt_name: str | None = None, similarity_fn_name: str | None = None,
                 revision: str | None = None, cache_folder: str | pathlib.Path | None = None):
        if isinstance(model_name_or_path, BertConfig):
            if params is None or tokenizer is None:
                raise ValueError("SentenceEncoder(config, params, tokenizer) needs all three")
            config = model_name_or_path
            st = checkpoint.SentenceConfig(transformer_dir=pathlib.Path("."))
            max_seq_length = max_seq_length or min(256, config.max_length)
            self.model_dir = None
        else:
            directory = checkpoint.resolve_model_dir(model_name_or_path, revision=revision,
                                                     cache_folder=cache_folder)
            st = checkpoint.load_sentence_config(directory)
            config, params, tokenizer = checkpoint.load_checkpoint(st.transformer_dir)
            self.model_dir = directory
            if max_seq_length is None:
                max_seq_length = min(st.max_seq_length or config.max_length, config.max_length)
        dtype = jnp.dtype(dtype)
        if dtype not in (jnp.float32, jnp.bfloat16):
            raise ValueError(f"dtype must be float32 or bfloat16, got {dtype}")
        self.config, self.dtype, self.mesh, self.tokenizer = config, dtype, mesh, tokenizer
        self.max_seq_length = max_seq_length
        self.pooling = self._check_pooling(st.pooling if pooling is None else pooling)
        self.normalize = st.normalize if normalize is None else bool(normalize)
        self.include_prompt, self.do_lower_case = st.include_prompt, st.do_lower_case
        self.prompts = dict(st.prompts if prompts is None else prompts)
        self.default_prompt_name = default_prompt_name or st.default_prompt_name
        if self.default_prompt_name is not None and self.default_prompt_name not in self.prompts:
            raise ValueError(f"default_prompt_name {self.default_prompt_name!r} is not one of the prompts "
                             f"{sorted(self.prompts)}")
        self.similarity_fn_name = similarity_fn_name or st.similarity_fn_name or "cosine"
        place = NamedSharding(mesh, P()) if mesh is not None else jax.devices()[0]
        self.params = jax.device_put(params, place)
        self._params_on = {None: _matmul_operands(self.params, dtype)}

    @classmethod
    def from_pretrained(cls, model_name_or_path: str | pathlib.Path | None = None, **kwargs) -> SentenceEncoder:
        """Same as ``SentenceEncoder(model_name_or_path, **kwargs)``."""
        return cls(model_name_or_path, **kwargs)

    # --------------------------------------------------------------------------- attributes

    @property
    def max_seq_length(self) -> int:
        return self._max_seq_length

    @max_seq_length.setter
    def max_seq_length(self, value: int):
        if not isinstance(value, int) or not 2 <= value <= self.config.max_length:
            raise ValueError(
                f"max_seq_length must lie in [2, {self.config.max_length}] (max_position_embeddings "
                f"less the position offset), got {value}"
            )
        self._max_seq_length = value
        self.tokenizer.enable_truncation(value)
        self.tokenizer.no_padding()

    @property
    def similarity_fn_name(self) -> str:
        return self._similarity_fn_name

    @similarity_fn_name.setter
    def similarity_fn_name(self, value: str):
        value = getattr(value, "value", value)  # sentence-transformers' SimilarityFunction enum
        if value not in SIMILARITY_FN_NAMES:
            raise ValueError(f"similarity_fn_name {value!r} is not supported; choose from {SIMILARITY_FN_NAMES}")
        self._similarity_fn_name = value

    @property
    def dim(self) -> int:
        return self.config.hidden_size

    def get_sentence_embedding_dimension(self) -> int:
        """Width of `encode`'s vectors with the default pooling."""
        return sum(self._pooled_dim(p) for p in self.pooling)

    def _pooled_dim(self, pooling: str) -> int:
        return self.dim * (4 if POOLINGS[pooling][0] == "concat_last4" else 1)

    @staticmethod
    def _check_pooling(pooling) -> tuple[str, ...]:
        poolings = (pooling,) if isinstance(pooling, str) else tuple(pooling)
        unknown = [p for p in poolings if p not in POOLINGS]
        if unknown or not poolings:
            raise ValueError(f"unknown pooling {unknown or poolings}; choose from {sorted(POOLINGS)}")
        return poolings

    # ------------------------------------------------------------------------------- encoding

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
        if self.do_lower_case:
            sentences = [s.lower() for s in sentences]
        return self.tokenizer.encode_batch(sentences)

    def _params_for(self, device):
        """Inference parameters on ``device`` (None: where they were put at construction)."""
        if device in self._params_on:
            return self._params_on[device]
        if self.mesh is not None:
            raise ValueError("device= cannot be combined with a mesh; the mesh already places the model")
        if isinstance(device, str):
            platform, _, index = device.partition(":")
            platform = {"cuda": "gpu", "rocm": "gpu"}.get(platform, platform)
            try:
                device = jax.devices(platform)[int(index or 0)]
            except (RuntimeError, IndexError) as e:
                raise ValueError(f"device {device!r} is not available: {e}") from e
        if device not in self._params_on:
            self._params_on = {None: self._params_on[None],
                               device: jax.device_put(self._params_on[None], device)}
        return self._params_on[device]

    def _prompt_length(self, prompt: str | None) -> int:
        """Tokens of ``prompt`` left out of the pooling (its trailing special token excluded)."""
        if not prompt or self.include_prompt:
            return 0
        enc = self.tokenizer.encode(prompt.lower() if self.do_lower_case else prompt)
        return len(enc.ids) - (1 if enc.special_tokens_mask and enc.special_tokens_mask[-1] else 0)

    def _run(self, sentences: Sequence[str], poolings: tuple[str, ...], *, batch_size: int,
             prompt: str | None = None, with_tokens: bool = False, show_progress_bar: bool = False,
             device=None) -> tuple[dict[str, np.ndarray], list[np.ndarray] | None, list[Any]]:
        """The packed forward pass: ({pooling: [N, D']}, per-text last hidden states or None, encodings)."""
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        texts = list(sentences)
        encodings = self.tokenize(texts if not prompt else [prompt + s for s in texts])
        n = len(encodings)
        out = {p: np.zeros((n, self._pooled_dim(p)), np.float32) for p in poolings}
        tokens: list[np.ndarray] | None = [None] * n if with_tokens else None
        if not n:
            return out, tokens, encodings
        params = self._params_for(device)
        lengths = np.fromiter((len(e.ids) for e in encodings), np.int64, n)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        flat_ids = np.fromiter((t for e in encodings for t in e.ids), np.int32, int(lengths.sum()))
        flat_types = np.fromiter((t for e in encodings for t in e.type_ids), np.int32, int(lengths.sum()))
        skip = self._prompt_length(prompt)
        words = any(POOLINGS[p][1] == "words" for p in poolings)
        shards = 1 if self.mesh is None else self.mesh.devices.size
        place = NamedSharding(self.mesh, P("data")) if self.mesh is not None else None
        budget = batch_size * TOKENS_PER_TEXT
        batches: list[_Batch] = []
        for row_len, rows in pack_rows(lengths, _pack_length(lengths, self.max_seq_length), self.max_seq_length):
            most = max(len(r) for r in rows)  # slots: a fixed count per row length, so fewer shapes
            slots = 1 if most == 1 else row_len // 2 if most <= row_len // 2 else row_len
            first = 0
            for n_rows in _row_counts(len(rows), max(1, budget // row_len), shards):
                chunk = rows[first : first + n_rows]
                first += len(chunk)
                b = self._layout(chunk, lengths)
                arrays = self._arrays(b, n_rows, row_len, lengths, starts, flat_ids, flat_types, skip,
                                      encodings if words else None)
                if place is not None:
                    arrays = jax.device_put(arrays, place)
                b.outputs = _rows_forward(params, arrays, config=self.config, poolings=poolings,
                                          dtype=self.dtype, slots=slots, with_tokens=with_tokens)
                batches.append(b)  # dispatched; gathered below, so the host packs while XLA computes
        bar = progress(total=n, desc="encode") if show_progress_bar else None
        for b in batches:
            pooled, hidden = jax.device_get(b.outputs)
            for p in poolings:
                out[p][b.texts] = pooled[p][b.rows, b.slots]
            if with_tokens:
                for i, r, o in zip(b.texts, b.rows, b.offsets):
                    tokens[i] = hidden[r, o : o + lengths[i]]
            b.outputs = None
            if bar is not None:
                bar.update(len(b.texts))
        if bar is not None:
            bar.close()
        return out, tokens, encodings

    @staticmethod
    def _layout(rows: list[list[int]], lengths: np.ndarray) -> _Batch:
        texts, row, slot, offset = [], [], [], []
        for r, members in enumerate(rows):
            o = 0
            for k, i in enumerate(members):
                texts.append(i)
                row.append(r)
                slot.append(k)
                offset.append(o)
                o += int(lengths[i])
        as_int = lambda v: np.asarray(v, np.int64)
        return _Batch(as_int(texts), as_int(row), as_int(slot), as_int(offset))

    def _arrays(self, b: _Batch, n_rows: int, row_len: int, lengths, starts, flat_ids, flat_types,
                skip: int, encodings) -> dict[str, np.ndarray]:
        """The int32 [rows, row_len] inputs of one batch, built with a few vectorised scatters."""
        n = lengths[b.texts]
        total = int(n.sum())
        first = np.repeat(np.cumsum(n) - n, n)
        within = np.arange(total) - first  # position of each token inside its text
        src = np.repeat(starts[b.texts], n) + within
        dst = np.repeat(b.rows * row_len + b.offsets, n) + within
        seg_of = np.repeat(b.slots + 1, n).astype(np.int32)
        arrays = {}
        for name, values in (("input_ids", flat_ids[src]), ("token_type_ids", flat_types[src]),
                             ("segment_ids", seg_of), ("position_ids", within + self.config.position_offset)):
            a = np.zeros(n_rows * row_len, np.int32)
            a[dst] = values
            arrays[name] = a.reshape(n_rows, row_len)
        if skip:
            a = np.zeros(n_rows * row_len, np.int32)
            a[dst] = np.where(within >= skip, seg_of, 0)
            arrays["pool_segment_ids"] = a.reshape(n_rows, row_len)
        if encodings is not None:
            w = np.zeros(n_rows * row_len, np.float32)
            w[dst] = np.concatenate([_word_weights(encodings[i], int(lengths[i])) for i in b.texts])
            arrays["word_weights"] = w.reshape(n_rows, row_len)
        return arrays

    def encode_poolings(self, sentences: Sequence[str], poolings: Sequence[str] = ("mean",), *,
                        batch_size: int = 32, normalize: bool = False,
                        show_progress_bar: bool = False) -> dict[str, np.ndarray]:
        """Several poolings from one forward pass: ``{pooling: float32 [N, D']}`` in input order."""
        poolings = self._check_pooling(poolings)
        out, _, _ = self._run(sentences, poolings, batch_size=batch_size, show_progress_bar=show_progress_bar)
        return {p: l2_normalize(v) for p, v in out.items()} if normalize else out

    def _resolve_prompt(self, prompt: str | None, prompt_name: str | None) -> str | None:
        if prompt is not None:
            return prompt
        if prompt_name is not None:
            if prompt_name not in self.prompts:
                raise ValueError(
                    f"prompt_name {prompt_name!r} is not one of the model's prompts {sorted(self.prompts)}")
            return self.prompts[prompt_name]
        return self.prompts.get(self.default_prompt_name) if self.default_prompt_name else None

    def encode(self, sentences: str | Sequence[str], prompt_name: str | None = None, prompt: str | None = None,
               batch_size: int = 32, show_progress_bar: bool | None = None,
               output_value: str | None = "sentence_embedding", precision: str = "float32",
               convert_to_numpy: bool = True, convert_to_tensor: bool = False, device=None,
               normalize_embeddings: bool = False, *, pooling: str | Sequence[str] | None = None,
               normalize: bool | None = None):
        """Embeddings of ``sentences``, as sentence-transformers' ``encode``.

        A string gives one vector ``[D]``, a list ``[N, D]`` float32 in input order (``D`` is
        `get_sentence_embedding_dimension`). ``output_value="token_embeddings"`` gives a list of
        per-text ``[T_i, D]`` last hidden states; ``None`` a list of dicts with both (and the
        ``input_ids`` / ``attention_mask`` of each text). ``precision`` quantizes as
        `quantize_embeddings`. ``convert_to_tensor=True`` returns a ``jax.Array``;
        ``convert_to_numpy=False`` a list of them. ``device``: a ``jax.Device`` or a platform
        name such as ``"cpu"``.

        Normalisation follows the model (its Normalize module); ``normalize_embeddings=True``
        normalises in any case, and ``normalize=`` (True or False) overrides both. ``pooling=``
        overrides the model's pooling (`POOLINGS`; a sequence is concatenated). A ``prompt`` (or
        ``prompts[prompt_name]``, else the default prompt) is prepended to every text.
        """
        if precision not in PRECISIONS:
            raise ValueError(f"precision {precision!r} is not supported; choose from {PRECISIONS}")
        if output_value not in OUTPUT_VALUES:
            raise ValueError(f"output_value {output_value!r} is not supported; choose from {OUTPUT_VALUES}")
        if output_value is None and precision != "float32":
            raise ValueError("precision applies to output_value 'sentence_embedding' or 'token_embeddings', not None")
        single = isinstance(sentences, str)
        texts = [sentences] if single else list(sentences)
        poolings = self.pooling if pooling is None else self._check_pooling(pooling)
        unit = (normalize_embeddings or self.normalize) if normalize is None else normalize
        prompt = self._resolve_prompt(prompt, prompt_name)
        if show_progress_bar is None:
            show_progress_bar = False
        pooled, tokens, encodings = self._run(
            texts, poolings, batch_size=batch_size, prompt=prompt, with_tokens=output_value != "sentence_embedding",
            show_progress_bar=show_progress_bar, device=device)
        emb = np.concatenate([pooled[p] for p in poolings], axis=1) if len(poolings) > 1 else pooled[poolings[0]]
        if output_value == "sentence_embedding":
            result = quantize_embeddings(l2_normalize(emb) if unit else emb, precision)
            if convert_to_tensor:
                result = jnp.asarray(result)
            elif not convert_to_numpy:
                result = list(jnp.asarray(result))
        elif output_value == "token_embeddings":
            result = quantize_embeddings(tokens, precision)
        else:
            unit = self.normalize if normalize is None else normalize  # the model's pipeline only
            emb = l2_normalize(emb) if unit else emb
            result = [{"sentence_embedding": emb[i], "token_embeddings": tokens[i],
                       "input_ids": np.asarray(e.ids, np.int32), "attention_mask": np.ones(len(e.ids), np.int32)}
                      for i, e in enumerate(encodings)]
        return result[0] if single else result

    # ----------------------------------------------------------------------------- similarity

    def similarity(self, embeddings1, embeddings2) -> jax.Array:
        """``[N, M]`` scores of every pair by ``similarity_fn_name``: cosine, dot, or minus the
        euclidean / manhattan distance (higher is more similar), as sentence-transformers."""
        return _similarity(self.similarity_fn_name, _as_matrix(embeddings1), _as_matrix(embeddings2), False)

    def similarity_pairwise(self, embeddings1, embeddings2) -> jax.Array:
        """``[N]`` scores of ``embeddings1[i]`` with ``embeddings2[i]``."""
        return _similarity(self.similarity_fn_name, _as_matrix(embeddings1), _as_matrix(embeddings2), True)

    # --------------------------------------------------------------------------- word vectors

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
        hidden = _hidden_states(self._params_for(None), batch, config=self.config, dtype=self.dtype)
        tokens = np.asarray(combine_layers(hidden, layers), np.float32)[0]
        word = np.array([-1 if w is None else w for w in enc.word_ids])
        words, vectors = [], []
        for w in dict.fromkeys(word[word >= 0].tolist()):
            pieces = np.flatnonzero(word == w)
            start, end = enc.offsets[pieces[0]][0], enc.offsets[pieces[-1]][1]
            words.append(sentence[start:end])
            vectors.append(tokens[pieces].mean(axis=0))
        return words, np.stack(vectors) if vectors else np.zeros((0, tokens.shape[-1]), np.float32)
