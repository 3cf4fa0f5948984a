"""GRU encoder-decoder for translation (d2l seq2seq, Bahdanau et al. 2015), flax.linen.

* ``Encoder``: embedding + stacked GRU layers, uni- or bi-directional, dropout between layers;
  padded positions are skipped with ``seq_lengths``.
* Decoder (one step, ``DecoderCell``), two variants:
  - ``attention=False``: the d2l decoder, fed the encoder's final top-layer state (the "context")
    concatenated to every input embedding;
  - ``attention=True``: Bahdanau additive attention, the previous top-layer state queries the
    encoder outputs (padding masked) and the attended context is concatenated to the input.
* Output: logits from the top GRU state, or (``readout_dim > 0``) from Bahdanau's "deep
  output" ``tanh(W [state; context; input embedding])`` of size ``readout_dim``; with
  ``tie_embeddings`` (needs ``readout_dim == embed_dim``) the output matrix is the target
  embedding table (Press & Wolf 2017), which regularises small corpora such as Multi30k.
* ``Seq2Seq``: ``__call__`` (teacher forcing, training) scans the very cell that
  ``decode_step`` runs at inference time, so both paths share one definition.

The decoding cache is a dict whose leaves all have the hypothesis dimension first (the beam
search reorders them with one gather): ``h`` [N, layers, H], and ``context`` [N, H] or
``keys`` [N, S, A], ``values`` [N, S, He], ``mask`` [N, S].
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from embeddings_jax import decoding
from embeddings_jax.data import parallel

MASKED = -1e9


class Encoder(nn.Module):
    vocab_size: int
    embed_dim: int
    hidden_dim: int
    num_layers: int = 2
    bidirectional: bool = True
    dropout: float = 0.0

    @nn.compact
    def __call__(self, src, src_mask, train: bool = False):
        """src int [B, S], src_mask bool [B, S] -> outputs [B, S, D*H], final states [B, layers, D*H]."""
        x = nn.Embed(self.vocab_size, self.embed_dim, name="embed")(src)
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
        lengths = src_mask.sum(axis=1).astype(jnp.int32)
        finals = []
        for layer in range(self.num_layers):
            fwd = nn.RNN(nn.GRUCell(self.hidden_dim), name=f"fwd_{layer}")
            carry, y = fwd(x, seq_lengths=lengths, return_carry=True)
            if self.bidirectional:
                bwd = nn.RNN(
                    nn.GRUCell(self.hidden_dim), reverse=True, keep_order=True, name=f"bwd_{layer}"
                )
                carry_b, y_b = bwd(x, seq_lengths=lengths, return_carry=True)
                carry, y = jnp.concatenate([carry, carry_b], -1), jnp.concatenate([y, y_b], -1)
            finals.append(carry)
            x = (
                nn.Dropout(self.dropout, deterministic=not train)(y)
                if layer < self.num_layers - 1
                else y
            )
        return x, jnp.stack(finals, axis=1)


class DecoderCell(nn.Module):
    """One decoder step: (cache, embedded token [N, E]) -> (cache, (features [N, H], attention [N, S]))."""

    hidden_dim: int
    num_layers: int
    attention: bool
    attention_dim: int
    dropout: float = 0.0

    @nn.compact
    def __call__(self, cache, emb, train: bool = False):
        """Returns the new cache and ((top state [N, H], context [N, C]), attention [N, S])."""
        h = cache["h"]
        if self.attention:
            query = nn.Dense(self.attention_dim, use_bias=False, name="query")(h[:, -1])
            energy = jnp.tanh(cache["keys"] + query[:, None, :])
            scores = nn.Dense(1, use_bias=False, name="energy")(energy)[..., 0]
            weights = jax.nn.softmax(jnp.where(cache["mask"], scores, MASKED), axis=-1)
            context = jnp.einsum("ns,nsd->nd", weights, cache["values"])
        else:
            context, weights = cache["context"], jnp.zeros(h.shape[:1] + (0,), h.dtype)
        x = jnp.concatenate([emb, context], axis=-1)
        new_h = []
        for layer in range(self.num_layers):
            hl, x = nn.GRUCell(self.hidden_dim, name=f"gru_{layer}")(h[:, layer], x)
            new_h.append(hl)
            x = nn.Dropout(self.dropout, deterministic=not train)(x)
        return {**cache, "h": jnp.stack(new_h, axis=1)}, ((x, context), weights)


class Seq2Seq(nn.Module):
    src_vocab: int
    tgt_vocab: int
    embed_dim: int = 256
    hidden_dim: int = 256
    num_layers: int = 2
    bidirectional: bool = True
    attention: bool = True
    attention_dim: int = 256
    dropout: float = 0.2
    readout_dim: int = 0  # 0: logits from the top GRU state
    tie_embeddings: bool = False

    def setup(self):
        if self.tie_embeddings and self.readout_dim != self.embed_dim:
            raise ValueError(
                f"tie_embeddings needs readout_dim == embed_dim, got {self.readout_dim} and "
                f"{self.embed_dim}"
            )
        self.encoder = Encoder(
            self.src_vocab,
            self.embed_dim,
            self.hidden_dim,
            self.num_layers,
            self.bidirectional,
            self.dropout,
        )
        # Encoder final states (and, with attention, outputs) -> decoder sizes.
        self.bridge = nn.Dense(self.hidden_dim, name="bridge")
        if self.attention:
            self.keys = nn.Dense(self.attention_dim, use_bias=False, name="keys")
        self.tgt_embed = nn.Embed(self.tgt_vocab, self.embed_dim)
        self.cell = DecoderCell(
            self.hidden_dim, self.num_layers, self.attention, self.attention_dim, self.dropout
        )
        if self.readout_dim:
            self.readout = nn.Dense(self.readout_dim, name="readout")
        self.drop = nn.Dropout(self.dropout)
        if self.tie_embeddings:
            self.out_bias = self.param("out_bias", nn.initializers.zeros, (self.tgt_vocab,))
        else:
            self.out = nn.Dense(self.tgt_vocab)

    def logits(self, x, context, emb, train: bool = False):
        """Next-token logits [..., V] from the top state, the context and the input embedding."""
        if self.readout_dim:
            x = jnp.tanh(self.readout(jnp.concatenate([x, context, emb], axis=-1)))
            x = self.drop(x, deterministic=not train)
        if self.tie_embeddings:
            return self.tgt_embed.attend(x) + self.out_bias
        return self.out(x)

    def encode(self, src, src_mask, train: bool = False) -> dict:
        """src int [B, S], src_mask bool [B, S] -> the decoder's initial cache (see module doc)."""
        outputs, finals = self.encoder(src, src_mask, train)
        h = jnp.tanh(self.bridge(finals))  # [B, layers, H]
        if self.attention:
            return {
                "h": h,
                "keys": self.keys(outputs),
                "values": outputs,
                "mask": src_mask.astype(bool),
            }
        return {"h": h, "context": h[:, -1]}

    def decode_step(self, tokens, cache):
        """tokens int [N] (previous token), cache -> next-token logits [N, V], new cache."""
        emb = self.tgt_embed(tokens)
        cache, ((x, context), _) = self.cell(cache, emb, False)
        return self.logits(x, context, emb), cache

    def __call__(self, src, src_mask, tgt_in, train: bool = False):
        """Teacher forcing: logits [B, T, V] and attention weights [B, T, S] (T x 0 without attention)."""
        cache = self.encode(src, src_mask, train)
        emb = self.drop(self.tgt_embed(tgt_in), deterministic=not train)
        scan = nn.scan(
            lambda cell, c, e: cell(c, e, train),
            variable_broadcast="params",
            split_rngs={"params": False, "dropout": True},
            in_axes=1,
            out_axes=1,
        )
        _, ((x, context), weights) = scan(self.cell, cache, emb)
        return self.logits(x, context, emb, train), weights


def masked_cross_entropy(logits, targets, mask, label_smoothing: float = 0.0):
    """Mean token cross-entropy over real (mask=True) positions; [B, T, V], [B, T], [B, T].

    ``label_smoothing`` eps trains against (1 - eps) one-hot + eps uniform (Szegedy et al. 2016).
    """
    logp = jax.nn.log_softmax(logits.astype(jnp.float32))  # one normalisation serves both terms
    ce = -jnp.take_along_axis(logp, targets[..., None].astype(jnp.int32), axis=-1)[..., 0]
    if label_smoothing:
        ce = (1.0 - label_smoothing) * ce - label_smoothing * jnp.mean(logp, axis=-1)
    mask = mask.astype(jnp.float32)
    return jnp.sum(ce * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def make_loss_fn(model: Seq2Seq, label_smoothing: float = 0.0):
    """``loss_fn(params, batch, rng) -> (loss, {"tokens", "accuracy", "nll"})`` for the loop.

    ``loss`` is smoothed when ``label_smoothing > 0``; ``nll`` is always the plain cross-entropy.
    """

    def loss_fn(params, batch, rng):
        logits, _ = model.apply(
            {"params": params},
            batch["src"],
            batch["src_mask"],
            batch["tgt_in"],
            train=True,
            rngs={"dropout": rng},
        )
        loss = masked_cross_entropy(logits, batch["tgt_out"], batch["tgt_mask"], label_smoothing)
        nll = (
            masked_cross_entropy(logits, batch["tgt_out"], batch["tgt_mask"])
            if label_smoothing
            else loss
        )
        mask = batch["tgt_mask"].astype(jnp.float32)
        acc = jnp.sum((jnp.argmax(logits, -1) == batch["tgt_out"]) * mask) / jnp.maximum(
            jnp.sum(mask), 1.0
        )
        return loss, {"tokens": jnp.sum(mask), "accuracy": acc, "nll": nll}

    return loss_fn


def step_fn(model: Seq2Seq, params):
    """The model as a ``decoding.TokensToLogits`` function."""
    return lambda tokens, cache: model.apply(
        {"params": params}, tokens, cache, method=Seq2Seq.decode_step
    )


@functools.partial(jax.jit, static_argnames=("model",))
def encode(model: Seq2Seq, params, src, src_mask) -> dict:
    """Jitted ``Seq2Seq.encode`` (inference): the decoding cache for a batch of sources."""
    return model.apply({"params": params}, src, src_mask, method=Seq2Seq.encode)


@functools.partial(jax.jit, static_argnames=("model",))
def attention_weights(model: Seq2Seq, params, src, src_mask, tgt_in):
    """Attention [B, T, S] of the model reading ``tgt_in`` under teacher forcing (inference)."""
    return model.apply({"params": params}, src, src_mask, tgt_in)[1]


def jitted_step_fn(model: Seq2Seq, params):
    """``step_fn`` compiled with the parameters as an argument (not baked-in constants)."""
    step = jax.jit(lambda p, tokens, cache: step_fn(model, p)(tokens, cache))
    return lambda tokens, cache: step(params, tokens, cache)


@functools.partial(jax.jit, static_argnames=("model", "beam_size", "alpha", "max_len"))
def beam_search_ids(model: Seq2Seq, params, cache, *, beam_size: int, alpha: float, max_len: int):
    """Jitted ``decoding.beam_search`` of the model from an encoder cache: [B, K, L], [B, K]."""
    f = step_fn(model, params)
    return decoding.beam_search(
        cache, f, beam_size, alpha, parallel.EOS, max_len, bos_id=parallel.BOS
    )


@functools.partial(jax.jit, static_argnames=("model", "beam_size", "alpha", "max_len"))
def translate_ids(
    model: Seq2Seq,
    params,
    src,
    src_mask,
    *,
    beam_size: int = 0,
    alpha: float = 0.0,
    max_len: int = 32,
):
    """Greedy (``beam_size=0``) or beam search in one jitted program.

    Returns the best sequence per sentence int32 [B, max_len] and its score [B].
    """
    cache = model.apply({"params": params}, src, src_mask, method=Seq2Seq.encode)
    f = step_fn(model, params)
    if beam_size == 0:
        return decoding.greedy_search(
            cache, f, eos_id=parallel.EOS, max_len=max_len, bos_id=parallel.BOS
        )
    seqs, scores = decoding.beam_search(
        cache, f, beam_size, alpha, parallel.EOS, max_len, bos_id=parallel.BOS
    )
    return seqs[:, 0], scores[:, 0]


def translate(
    model: Seq2Seq,
    params,
    texts: Sequence[str],
    src_tok,
    tgt_tok,
    *,
    beam_size: int = 0,
    alpha: float = 0.0,
    max_src_len: int = 64,
    max_len: int = 64,
    batch_size: int = 128,
    on_long: str = "truncate",
) -> list[str]:
    """Translates raw sentences (batched; sources padded to ``max_src_len``).

    Bad input: empty strings translate from ``[<eos>]``; sources over ``max_src_len`` tokens are
    truncated with a warning (``on_long="error"`` raises instead); unknown words become ``<unk>``.
    """
    ids = parallel.encode_sources(texts, src_tok, max_src_len, on_long)
    out = []
    for i in range(0, len(ids), batch_size):
        chunk = ids[i : i + batch_size]
        length = min(max_src_len, -(-max(map(len, chunk)) // 16) * 16)  # few distinct shapes
        src, mask = parallel.pad(chunk + [[parallel.EOS]] * (batch_size - len(chunk)), length)
        toks, _ = translate_ids(
            model, params, src, mask, beam_size=beam_size, alpha=alpha, max_len=max_len
        )
        out += [tgt_tok.decode(row) for row in np.asarray(toks)[: len(chunk)]]
    return out
