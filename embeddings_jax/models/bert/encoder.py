"""BERT-family encoder in flax.linen, numerically faithful to Hugging Face ``BertModel``,
``RobertaModel`` / ``XLMRobertaModel`` and ``MPNetModel``.

Read top to bottom: `BertConfig` -> `BertEmbeddings` (word + position + token-type, LayerNorm)
-> `BertLayer` x L (self-attention and feed-forward, each followed by residual + LayerNorm:
"post-LN") -> `BertEncoder`, which returns every hidden state (the embedding output and each
layer's output) and, on request, every attention map.

The families differ only in three places, all read from ``config.json``'s ``model_type``:

* position ids: BERT counts from 0; RoBERTa, XLM-R and MPNet from ``pad_token_id + 1``
  (`BertConfig.position_offset`), as fairseq did;
* token types: MPNet has none (``type_vocab_size`` 0); RoBERTa has one;
* MPNet adds a learned relative-position bias (T5-style buckets, shared by every layer) to the
  attention scores.

Parameters are float32; ``dtype`` is the dtype of the matrix-product operands (float32 or
bfloat16). Products accumulate in float32 and everything else (residuals, GELU, LayerNorm, softmax)
is float32, so bfloat16 rounds only what enters a product: XLA:CPU runs bfloat16 x bfloat16 ->
float32 products on the CPU's bf16 units (AVX512-BF16 / AMX) where it has them.
Weights of a real checkpoint are loaded by `embeddings_jax.models.bert.checkpoint`.

Shapes: ``B`` batch, ``T`` sequence length, ``D`` hidden size, ``H`` heads, ``L`` layers.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp


def _gelu(x):
    """Exact GELU in HF's formula; XLA:CPU computes ``erf`` far more cheaply than the ``erfc`` of
    ``jax.nn.gelu(approximate=False)``."""
    return x * 0.5 * (1.0 + jax.lax.erf(x / jnp.sqrt(2.0).astype(x.dtype)))


_ACTIVATIONS = {
    "gelu": _gelu,
    "gelu_new": lambda x: jax.nn.gelu(x, approximate=True),
    "gelu_pytorch_tanh": lambda x: jax.nn.gelu(x, approximate=True),
    "relu": jax.nn.relu,
}
MODEL_TYPES = ("bert", "roberta", "xlm-roberta", "mpnet")
_OFFSET_POSITIONS = ("roberta", "xlm-roberta", "mpnet")  # positions start at pad_token_id + 1
_MPNET_MAX_DISTANCE = 128  # hard-coded in HF MPNetEncoder.relative_position_bucket


@dataclasses.dataclass(frozen=True)
class BertConfig:
    """Architecture hyper-parameters; field names and defaults follow HF ``BertConfig``."""

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2  # 0: no token-type embedding (MPNet)
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    initializer_range: float = 0.02  # std of the normal init of weights and embeddings (as HF)
    model_type: str = "bert"
    relative_attention_num_buckets: int = 0  # > 0: MPNet's relative-position bias

    def __post_init__(self):
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size {self.hidden_size} is not a multiple of num_attention_heads "
                f"{self.num_attention_heads}"
            )
        if self.hidden_act not in _ACTIVATIONS:
            raise ValueError(f"hidden_act {self.hidden_act!r} unsupported; choose from {sorted(_ACTIVATIONS)}")
        if self.model_type not in MODEL_TYPES:
            raise ValueError(f"model_type {self.model_type!r} is not supported (supported: {MODEL_TYPES})")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BertConfig:
        """Builds a config from an HF ``config.json`` dict, ignoring keys that do not apply."""
        d = dict(d)
        if d.get("model_type") == "mpnet":  # MPNetConfig has no token types, and a bias table
            d["type_vocab_size"] = 0
            d.setdefault("relative_attention_num_buckets", 32)
            d.setdefault("pad_token_id", 1)
        else:
            d.pop("relative_attention_num_buckets", None)
        if d.get("pad_token_id") is None:
            d.pop("pad_token_id", None)
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    @property
    def position_offset(self) -> int:
        """Position id of a sequence's first token: 0 for BERT, ``pad_token_id + 1`` otherwise."""
        return self.pad_token_id + 1 if self.model_type in _OFFSET_POSITIONS else 0

    @property
    def max_length(self) -> int:
        """The longest sequence the position table holds."""
        return self.max_position_embeddings - self.position_offset


def default_position_ids(config: BertConfig, input_ids: jax.Array) -> jax.Array:
    """HF's position ids for right-padded ``input_ids`` [B, T]: 0..T-1 (BERT), else RoBERTa's
    ``cumsum(non-pad) * non-pad + pad_token_id`` (padding gets ``pad_token_id``)."""
    if not config.position_offset:
        return jnp.broadcast_to(jnp.arange(input_ids.shape[1]), input_ids.shape)
    real = (input_ids != config.pad_token_id).astype(jnp.int32)
    return jnp.cumsum(real, axis=1) * real + config.pad_token_id


def relative_position_bucket(relative_position: jax.Array, num_buckets: int,
                             max_distance: int = _MPNET_MAX_DISTANCE) -> jax.Array:
    """MPNet's (T5's bidirectional) bucket of ``key - query`` positions, in HF's float32 order."""
    n = -relative_position
    num_buckets //= 2
    ret = (n < 0).astype(jnp.int32) * num_buckets
    n = jnp.abs(n)
    max_exact = num_buckets // 2
    large = max_exact + (jnp.log(n.astype(jnp.float32) / max_exact) / math.log(max_distance / max_exact)
                         * (num_buckets - max_exact)).astype(jnp.int32)
    large = jnp.minimum(large, num_buckets - 1)
    return ret + jnp.where(n < max_exact, n, large)


class _BertModule(nn.Module):
    """Fields every BERT module shares: the architecture and the computation dtype."""

    config: BertConfig
    dtype: Any = jnp.float32


class BertEmbeddings(_BertModule):
    """Sum of word, absolute position and token-type embeddings, then LayerNorm and dropout."""

    @nn.compact
    def __call__(self, input_ids, token_type_ids, position_ids, deterministic: bool):
        c = self.config
        init = nn.initializers.normal(c.initializer_range)
        embed = lambda n, name: nn.Embed(n, c.hidden_size, embedding_init=init, name=name)
        x = (embed(c.vocab_size, "word_embeddings")(input_ids)
             + embed(c.max_position_embeddings, "position_embeddings")(position_ids))
        if c.type_vocab_size:
            x = x + embed(c.type_vocab_size, "token_type_embeddings")(token_type_ids)
        x = nn.LayerNorm(c.layer_norm_eps, name="LayerNorm")(x)
        return nn.Dropout(c.hidden_dropout_prob)(x, deterministic=deterministic)


def _matmul(spec: str, a, b, dtype):
    """``einsum(spec, a, b)`` with ``dtype`` operands and a float32 result."""
    return jnp.einsum(spec, a.astype(dtype), b.astype(dtype), preferred_element_type=jnp.float32)


class Dense(nn.Module):
    """``x @ kernel + bias`` (``nn.Dense``'s parameters) with ``dtype`` operands, float32 out."""

    features: int
    dtype: Any = jnp.float32
    kernel_init: Any = nn.initializers.lecun_normal()

    @nn.compact
    def __call__(self, x):
        kernel = self.param("kernel", self.kernel_init, (x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        return _matmul("...i,io->...o", x, kernel, self.dtype) + bias


def _dense(config: BertConfig, features: int, dtype, name: str) -> Dense:
    return Dense(features, dtype, nn.initializers.normal(config.initializer_range), name=name)


class BertSelfAttention(_BertModule):
    """Multi-head scaled dot-product attention with a boolean mask and an optional additive bias."""

    @nn.compact
    def __call__(self, x, mask, bias, deterministic: bool):
        """x: [B, T, D]; mask: bool [B, 1 or T, T] (query, key; True = may attend); bias: None or
        float32 [B or 1, H, T, T]. Returns ([B, T, D], probs float32 [B, H, T, T])."""
        c = self.config
        h, dh = c.num_attention_heads, c.hidden_size // c.num_attention_heads
        # Heads first ([B, H, T, dh]): XLA:CPU runs the two batched products faster in this layout.
        split = lambda y: y.reshape(*y.shape[:2], h, dh).transpose(0, 2, 1, 3)
        q = split(_dense(c, c.hidden_size, self.dtype, "query")(x))
        k = split(_dense(c, c.hidden_size, self.dtype, "key")(x))
        v = split(_dense(c, c.hidden_size, self.dtype, "value")(x))
        scores = _matmul("bhqd,bhkd->bhqk", q, k, self.dtype) / jnp.sqrt(dh).astype(jnp.float32)
        if bias is not None:
            scores = scores + bias
        scores = jnp.where(mask[:, None], scores, jnp.finfo(jnp.float32).min)
        probs = jax.nn.softmax(scores, axis=-1)
        dropped = nn.Dropout(c.attention_probs_dropout_prob)(probs, deterministic=deterministic)
        ctx = _matmul("bhqk,bhkd->bhqd", dropped, v, self.dtype).transpose(0, 2, 1, 3)
        return ctx.reshape(*ctx.shape[:2], c.hidden_size), probs


class BertLayer(_BertModule):
    """One post-LN transformer layer: LN(x + Attn(x)), then LN(y + FFN(y))."""

    @nn.compact
    def __call__(self, x, mask, bias, deterministic: bool):
        c = self.config
        drop = lambda y: nn.Dropout(c.hidden_dropout_prob)(y, deterministic=deterministic)
        ln = lambda name: nn.LayerNorm(c.layer_norm_eps, name=name)
        ctx, probs = BertSelfAttention(c, self.dtype, name="attention")(x, mask, bias, deterministic)
        y = ln("attention_LayerNorm")(x + drop(_dense(c, c.hidden_size, self.dtype, "attention_output")(ctx)))
        ff = _ACTIVATIONS[c.hidden_act](_dense(c, c.intermediate_size, self.dtype, "intermediate")(y))
        out = ln("output_LayerNorm")(y + drop(_dense(c, c.hidden_size, self.dtype, "output")(ff)))
        return out, probs


@dataclasses.dataclass(frozen=True)
class BertOutput:
    """``hidden_states``: L + 1 arrays [B, T, D] (embeddings, then each layer);
    ``attentions``: L arrays [B, H, T, T] (float32) or None."""

    hidden_states: tuple[jax.Array, ...]
    attentions: tuple[jax.Array, ...] | None = None

    @property
    def last_hidden_state(self) -> jax.Array:
        return self.hidden_states[-1]


jax.tree_util.register_dataclass(BertOutput, data_fields=["hidden_states", "attentions"], meta_fields=[])


class BertEncoder(_BertModule):
    """BERT: embeddings + ``num_hidden_layers`` post-LN transformer layers (no pooler head).

    Call with ``input_ids`` int [B, T] and ``attention_mask``: [B, T] (1 = token, 0 = padding)
    or a pairwise boolean [B, T, T] (query may attend to key; packed rows of several sequences use
    a block-diagonal one); optional ``token_type_ids`` [B, T] (default zeros) and ``position_ids``
    [B, T] (default `default_position_ids`, whose largest id must fit the position table: truncate
    longer inputs first). Dropout is active only with ``deterministic=False`` and a ``"dropout"``
    rng.
    """

    @nn.compact
    def __call__(
        self,
        input_ids,
        attention_mask=None,
        token_type_ids=None,
        position_ids=None,
        *,
        deterministic: bool = True,
        output_attentions: bool = False,
    ) -> BertOutput:
        c = self.config
        if position_ids is None:
            if input_ids.shape[1] > c.max_length:
                raise ValueError(
                    f"sequence length {input_ids.shape[1]} exceeds max_position_embeddings "
                    f"{c.max_position_embeddings} (less the position offset {c.position_offset}); "
                    "truncate the input"
                )
            position_ids = default_position_ids(c, input_ids)
        if attention_mask is None:
            mask = jnp.ones((input_ids.shape[0], 1, input_ids.shape[1]), bool)
        else:
            mask = attention_mask.astype(bool)
            mask = mask[:, None, :] if mask.ndim == 2 else mask
        if token_type_ids is None:
            token_type_ids = jnp.zeros_like(input_ids)
        bias = None
        if c.relative_attention_num_buckets:
            table = self.param("relative_attention_bias", nn.initializers.normal(c.initializer_range),
                               (c.relative_attention_num_buckets, c.num_attention_heads))
            relative = position_ids[:, None, :] - position_ids[:, :, None]  # key - query
            bucket = relative_position_bucket(relative, c.relative_attention_num_buckets)
            bias = jnp.moveaxis(table[bucket], -1, 1).astype(jnp.float32)  # [B, H, T, T]
        x = BertEmbeddings(c, self.dtype, name="embeddings")(input_ids, token_type_ids, position_ids, deterministic)
        hidden, attentions = [x], []
        for i in range(c.num_hidden_layers):
            x, probs = BertLayer(c, self.dtype, name=f"layer_{i}")(x, mask, bias, deterministic)
            hidden.append(x)
            attentions.append(probs)
        return BertOutput(tuple(hidden), tuple(attentions) if output_attentions else None)


def init_params(config: BertConfig, rng: jax.Array, seq_len: int = 8) -> dict:
    """Randomly initialised float32 parameters (for tests and training from scratch)."""
    ids = jnp.zeros((1, seq_len), jnp.int32)
    return BertEncoder(config).init(rng, ids, jnp.ones_like(ids))["params"]
