"""Dual-encoder towers (flax.linen): image CNN, small ViT, small text transformer, projection heads.

``DualEncoder`` maps images ``[N, H, W]`` or ``[N, H, W, C]`` (floats in [0, 1]) and token ids ``[N, L]``
(0 = padding) to L2-normalized embeddings ``[N, embed_dim]`` in one shared space, and carries the
learnable logit scale (inverse temperature, stored as its log) and bias used by the contrastive losses.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from embeddings_jax.data.wordpiece import PAD_ID
from embeddings_jax.ops.similarity import l2_normalize


def _channels_last(images: jax.Array) -> jax.Array:
    return images[..., None] if images.ndim == 3 else images


class CNNTower(nn.Module):
    """Conv(3x3) + ReLU + 2x2 max-pool stages, then a dense layer: ``[N, H, W(, C)] -> [N, hidden]``."""

    features: Sequence[int] = (32, 64)
    hidden: int = 128

    @nn.compact
    def __call__(self, images: jax.Array) -> jax.Array:
        x = _channels_last(images)
        for f in self.features:
            x = nn.relu(nn.Conv(f, (3, 3))(x))
            x = nn.max_pool(x, (2, 2), strides=(2, 2))
        return nn.relu(nn.Dense(self.hidden)(x.reshape(x.shape[0], -1)))


class TransformerBlock(nn.Module):
    """Pre-LayerNorm self-attention + GELU MLP block. mask: [N, 1, L, L] or None."""

    width: int
    heads: int
    mlp: int

    @nn.compact
    def __call__(self, x: jax.Array, mask: jax.Array | None = None) -> jax.Array:
        h = nn.LayerNorm()(x)
        x = x + nn.MultiHeadDotProductAttention(num_heads=self.heads, qkv_features=self.width)(h, h, mask=mask)
        h = nn.LayerNorm()(x)
        return x + nn.Dense(self.width)(nn.gelu(nn.Dense(self.mlp)(h)))


class _Transformer(nn.Module):
    """The size both transformer towers share, and their stack: ``depth`` blocks, then a LayerNorm."""

    _: dataclasses.KW_ONLY  # keyword-only, so a tower may add fields without defaults before these
    width: int = 64
    depth: int = 2
    heads: int = 4
    mlp: int = 128

    def encode(self, x: jax.Array, mask: jax.Array | None = None) -> jax.Array:
        """[N, T, width] -> [N, T, width]; called from a tower's compact ``__call__``, so the blocks are its own."""
        for _ in range(self.depth):
            x = TransformerBlock(self.width, self.heads, self.mlp)(x, mask)
        return nn.LayerNorm()(x)


class ViTTower(_Transformer):
    """Vision transformer: non-overlapping ``patch`` x ``patch`` patches, learned positions, mean-pooled tokens.

    ``[N, H, W(, C)] -> [N, width]``; H and W must be multiples of ``patch``.
    """

    patch: int = 7

    @nn.compact
    def __call__(self, images: jax.Array) -> jax.Array:
        x = _channels_last(images)
        n, h, w, _ = x.shape
        if h % self.patch or w % self.patch:
            raise ValueError(f"image size {h}x{w} is not a multiple of the patch size {self.patch}")
        x = nn.Conv(self.width, (self.patch, self.patch), strides=(self.patch, self.patch), padding="VALID")(x)
        x = x.reshape(n, -1, self.width)
        x = x + self.param("pos", nn.initializers.normal(0.02), (1, x.shape[1], self.width))
        return self.encode(x).mean(axis=1)


class TextTower(_Transformer):
    """Transformer over word-piece ids ``[N, L]`` (0 = padding), mean-pooled over real tokens: ``[N, width]``."""

    vocab_size: int
    max_len: int = 32

    @nn.compact
    def __call__(self, tokens: jax.Array) -> jax.Array:
        if tokens.shape[-1] > self.max_len:
            raise ValueError(f"sequences of length {tokens.shape[-1]} exceed the text tower's max_len {self.max_len}")
        valid = tokens != PAD_ID
        x = nn.Embed(self.vocab_size, self.width)(tokens)
        x = x + self.param("pos", nn.initializers.normal(0.02), (1, self.max_len, self.width))[:, : tokens.shape[-1]]
        x = self.encode(x, nn.make_attention_mask(valid, valid))
        w = valid[..., None].astype(x.dtype)
        return jnp.sum(x * w, axis=1) / jnp.maximum(jnp.sum(w, axis=1), 1.0)


class DualEncoder(nn.Module):
    """Image and text towers with linear projection heads into a shared, L2-normalized space.

    Parameters ``log_scale`` (log inverse temperature) and ``bias`` feed the losses: CLIP starts at
    scale 1/0.07 (bias unused), SigLIP at scale 10, bias -10.
    """

    image_tower: nn.Module
    text_tower: nn.Module
    embed_dim: int = 64
    init_scale: float = 1 / 0.07
    init_bias: float = 0.0

    def setup(self):
        self.image_proj = nn.Dense(self.embed_dim, use_bias=False, name="image_projection")
        self.text_proj = nn.Dense(self.embed_dim, use_bias=False, name="text_projection")
        self.log_scale = self.param("log_scale", nn.initializers.constant(math.log(self.init_scale)), ())
        self.bias = self.param("bias", nn.initializers.constant(self.init_bias), ())

    def encode_image(self, images: jax.Array) -> jax.Array:
        """[N, H, W(, C)] floats -> [N, embed_dim] unit vectors."""
        return l2_normalize(self.image_proj(self.image_tower(images)))

    def encode_text(self, tokens: jax.Array) -> jax.Array:
        """[N, L] int token ids -> [N, embed_dim] unit vectors."""
        return l2_normalize(self.text_proj(self.text_tower(tokens)))

    def __call__(self, images: jax.Array, tokens: jax.Array):
        """Returns (image embeddings, text embeddings, logit scale, logit bias)."""
        return self.encode_image(images), self.encode_text(tokens), jnp.exp(self.log_scale), self.bias


def build_dual_encoder(
    image_tower: str = "cnn",
    *,
    vocab_size: int,
    max_len: int = 32,
    embed_dim: int = 64,
    width: int = 64,
    depth: int = 2,
    heads: int = 4,
    init_scale: float = 1 / 0.07,
    init_bias: float = 0.0,
) -> DualEncoder:
    """A ``DualEncoder`` with a ``"cnn"`` or ``"vit"`` image tower and a text transformer of the given size."""
    if image_tower == "cnn":
        image = CNNTower(hidden=2 * width)
    elif image_tower == "vit":
        image = ViTTower(width=width, depth=depth, heads=heads, mlp=2 * width)
    else:
        raise ValueError(f"unknown image tower {image_tower!r}; choose 'cnn' or 'vit'")
    if vocab_size < 2:
        raise ValueError(f"vocab_size must be at least 2 (padding + one token), got {vocab_size}")
    text = TextTower(vocab_size=vocab_size, max_len=max_len, width=width, depth=depth, heads=heads, mlp=2 * width)
    return DualEncoder(image, text, embed_dim=embed_dim, init_scale=init_scale, init_bias=init_bias)
