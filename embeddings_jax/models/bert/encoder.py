"""BERT encoder in flax.linen, numerically faithful to Hugging Face ``BertModel``.

Read top to bottom: `BertConfig` -> `BertEmbeddings` (word + position + token-type, LayerNorm)
-> `BertLayer` x L (self-attention and feed-forward, each followed by residual + LayerNorm:
"post-LN") -> `BertEncoder`, which returns every hidden state (the embedding output and each
layer's output) and, on request, every attention map.

Parameters are float32 (``param_dtype``); ``dtype`` sets the computation dtype (float32 or
bfloat16). LayerNorm statistics and the attention softmax are always computed in float32.
Weights of a real checkpoint are loaded by `embeddings_jax.models.bert.checkpoint`.

Shapes: ``B`` batch, ``T`` sequence length, ``D`` hidden size, ``H`` heads, ``L`` layers.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

_ACTIVATIONS = {
    "gelu": lambda x: jax.nn.gelu(x, approximate=False),  # exact erf GELU, as HF "gelu"
    "gelu_new": lambda x: jax.nn.gelu(x, approximate=True),
    "gelu_pytorch_tanh": lambda x: jax.nn.gelu(x, approximate=True),
    "relu": jax.nn.relu,
}


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
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    initializer_range: float = 0.02  # std of the normal init of weights and embeddings (as HF)

    def __post_init__(self):
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size {self.hidden_size} is not a multiple of num_attention_heads "
                f"{self.num_attention_heads}"
            )
        if self.hidden_act not in _ACTIVATIONS:
            raise ValueError(f"hidden_act {self.hidden_act!r} unsupported; choose from {sorted(_ACTIVATIONS)}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BertConfig:
        """Builds a config from an HF ``config.json`` dict, ignoring keys that do not apply."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


class _BertModule(nn.Module):
    """Fields every BERT module shares: the architecture and the computation dtype."""

    config: BertConfig
    dtype: Any = jnp.float32


class BertEmbeddings(_BertModule):
    """Sum of word, absolute position and token-type embeddings, then LayerNorm and dropout."""

    @nn.compact
    def __call__(self, input_ids, token_type_ids, deterministic: bool):
        c = self.config
        init = nn.initializers.normal(c.initializer_range)
        embed = lambda n, name: nn.Embed(n, c.hidden_size, dtype=self.dtype, embedding_init=init, name=name)
        positions = jnp.arange(input_ids.shape[1])[None, :]
        x = (
            embed(c.vocab_size, "word_embeddings")(input_ids)
            + embed(c.type_vocab_size, "token_type_embeddings")(token_type_ids)
            + embed(c.max_position_embeddings, "position_embeddings")(positions)
        )
        x = nn.LayerNorm(c.layer_norm_eps, dtype=self.dtype, name="LayerNorm")(x)
        return nn.Dropout(c.hidden_dropout_prob)(x, deterministic=deterministic)


def _dense(config: BertConfig, features: int, dtype, name: str) -> nn.Dense:
    return nn.Dense(features, dtype=dtype, kernel_init=nn.initializers.normal(config.initializer_range), name=name)


class BertSelfAttention(_BertModule):
    """Multi-head scaled dot-product attention with an additive padding mask."""

    @nn.compact
    def __call__(self, x, mask, deterministic: bool):
        """x: [B, T, D]; mask: bool [B, T] (True = real token). Returns ([B, T, D], probs [B, H, T, T])."""
        c = self.config
        h, dh = c.num_attention_heads, c.hidden_size // c.num_attention_heads
        split = lambda y: y.reshape(*y.shape[:2], h, dh)
        q = split(_dense(c, c.hidden_size, self.dtype, "query")(x))
        k = split(_dense(c, c.hidden_size, self.dtype, "key")(x))
        v = split(_dense(c, c.hidden_size, self.dtype, "value")(x))
        scores = jnp.einsum("bqhd,bkhd->bhqk", q, k).astype(jnp.float32) / jnp.sqrt(dh).astype(jnp.float32)
        scores = jnp.where(mask[:, None, None, :], scores, jnp.finfo(jnp.float32).min)
        probs = jax.nn.softmax(scores, axis=-1)
        dropped = nn.Dropout(c.attention_probs_dropout_prob)(probs, deterministic=deterministic)
        ctx = jnp.einsum("bhqk,bkhd->bqhd", dropped.astype(self.dtype), v)
        return ctx.reshape(*ctx.shape[:2], c.hidden_size), probs


class BertLayer(_BertModule):
    """One post-LN transformer layer: LN(x + Attn(x)), then LN(y + FFN(y))."""

    @nn.compact
    def __call__(self, x, mask, deterministic: bool):
        c = self.config
        drop = lambda y: nn.Dropout(c.hidden_dropout_prob)(y, deterministic=deterministic)
        ln = lambda name: nn.LayerNorm(c.layer_norm_eps, dtype=self.dtype, name=name)
        ctx, probs = BertSelfAttention(c, self.dtype, name="attention")(x, mask, deterministic)
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

    Call with ``input_ids`` int [B, T], ``attention_mask`` [B, T] (1 = token, 0 = padding),
    optional ``token_type_ids`` [B, T] (default zeros). Positions are 0..T-1, so T must not
    exceed ``max_position_embeddings`` (truncate longer inputs before calling). Dropout is active
    only with ``deterministic=False`` and a ``"dropout"`` rng.
    """

    @nn.compact
    def __call__(
        self,
        input_ids,
        attention_mask=None,
        token_type_ids=None,
        *,
        deterministic: bool = True,
        output_attentions: bool = False,
    ) -> BertOutput:
        if input_ids.shape[1] > self.config.max_position_embeddings:
            raise ValueError(
                f"sequence length {input_ids.shape[1]} exceeds max_position_embeddings "
                f"{self.config.max_position_embeddings}; truncate the input"
            )
        mask = jnp.ones(input_ids.shape, bool) if attention_mask is None else attention_mask.astype(bool)
        if token_type_ids is None:
            token_type_ids = jnp.zeros_like(input_ids)
        x = BertEmbeddings(self.config, self.dtype, name="embeddings")(input_ids, token_type_ids, deterministic)
        hidden, attentions = [x], []
        for i in range(self.config.num_hidden_layers):
            x, probs = BertLayer(self.config, self.dtype, name=f"layer_{i}")(x, mask, deterministic)
            hidden.append(x)
            attentions.append(probs)
        return BertOutput(tuple(hidden), tuple(attentions) if output_attentions else None)


def init_params(config: BertConfig, rng: jax.Array, seq_len: int = 8) -> dict:
    """Randomly initialised float32 parameters (for tests and training from scratch)."""
    ids = jnp.zeros((1, seq_len), jnp.int32)
    return BertEncoder(config).init(rng, ids, jnp.ones_like(ids))["params"]
