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

Around the model: ``from_config`` / ``init_params`` / ``optimizer`` build what a run trains;
``save_model`` / ``load_model`` keep a trained run (params, config, tokenisers) in a directory;
``translate`` turns raw sentences into translations; ``evaluate_bleu``, ``beam_search_agreement``
and ``attention_map`` are the measurements of the seq2seq experiment.
"""

from __future__ import annotations

import functools
import json
import pathlib
import time
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import serialization

from embeddings_jax import decoding
from embeddings_jax.data import translation
from embeddings_jax.eval.bleu import corpus_bleu
from embeddings_jax.train.atomic import atomic_directory, resolve_directory

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


def from_config(config, src_vocab: int, tgt_vocab: int) -> Seq2Seq:
    """The ``Seq2Seq`` a config describes (the seq2seq experiment's fields)."""
    return Seq2Seq(
        src_vocab=src_vocab,
        tgt_vocab=tgt_vocab,
        embed_dim=config.embed_dim,
        hidden_dim=config.hidden_dim,
        num_layers=config.num_layers,
        bidirectional=config.bidirectional,
        attention=config.attention,
        attention_dim=config.attention_dim,
        dropout=config.dropout,
        readout_dim=config.get("readout_dim", 0),  # absent from configs saved before the option
        tie_embeddings=config.get("tie_embeddings", False),
    )


def init_params(model: Seq2Seq, key: jax.Array) -> dict:
    """Freshly initialised parameters (shapes do not depend on the dummy lengths used here)."""
    dummy = (jnp.zeros((1, 4), jnp.int32), jnp.ones((1, 4), bool), jnp.zeros((1, 3), jnp.int32))
    return model.init(key, *dummy)["params"]


# ---------------------------------------------------------------------------------------------
# Training.


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


def optimizer(config) -> optax.GradientTransformation:
    """Adam with global-norm clipping; linear warm-up then cosine decay to 5% of the peak rate."""
    schedule = optax.warmup_cosine_decay_schedule(
        0.0,
        config.learning_rate,
        config.warmup_steps,
        max(config.num_steps, config.warmup_steps + 1),
        0.05 * config.learning_rate,
    )
    return optax.chain(optax.clip_by_global_norm(config.clip_norm), optax.adam(schedule))


# ---------------------------------------------------------------------------------------------
# A trained run on disk.


MODEL_DIR = "model"  # inside a run's workdir


def save_model(workdir, config, params, src_tok, tgt_tok) -> pathlib.Path:
    """``<workdir>/model/{params.msgpack, model.json, tokenizers.json}``: enough to translate.

    Atomic: the folder is written beside its old version and renamed into place, so a save killed
    at any moment leaves the previous model or the new one, whole. Returns the folder."""
    path = pathlib.Path(workdir) / MODEL_DIR
    with atomic_directory(path) as tmp:
        (tmp / "tokenizers.json").write_text(json.dumps({"src": src_tok.to_json(), "tgt": tgt_tok.to_json()}))
        (tmp / "params.msgpack").write_bytes(serialization.to_bytes(params))
        (tmp / "model.json").write_text(config.to_json_best_effort(indent=2))
    return path


def load_model(workdir):
    """(model, params, src_tok, tgt_tok, config) saved by ``save_model`` in ``workdir`` (or in the
    workdir itself, where earlier versions saved them)."""
    workdir = pathlib.Path(workdir)
    if resolve_directory(workdir / MODEL_DIR).is_dir():
        workdir = workdir / MODEL_DIR
    for f in ("params.msgpack", "model.json", "tokenizers.json"):
        if not (workdir / f).exists():
            raise FileNotFoundError(
                f"{workdir / f} is missing; run the seq2seq experiment with --workdir {workdir}"
            )
    config = ml_collections.ConfigDict(json.loads((workdir / "model.json").read_text()))
    toks = json.loads((workdir / "tokenizers.json").read_text())
    src_tok = translation.tokenizer_from_json(toks["src"])
    tgt_tok = translation.tokenizer_from_json(toks["tgt"])
    model = from_config(config, src_tok.vocab_size, tgt_tok.vocab_size)
    target = jax.eval_shape(lambda: init_params(model, jax.random.PRNGKey(0)))
    params = serialization.from_bytes(target, (workdir / "params.msgpack").read_bytes())
    return model, params, src_tok, tgt_tok, config


# ---------------------------------------------------------------------------------------------
# Inference.


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
        cache, f, beam_size, alpha, translation.EOS, max_len, bos_id=translation.BOS
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
            cache, f, eos_id=translation.EOS, max_len=max_len, bos_id=translation.BOS
        )
    seqs, scores = decoding.beam_search(
        cache, f, beam_size, alpha, translation.EOS, max_len, bos_id=translation.BOS
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
    if isinstance(texts, str):
        raise TypeError("translate takes a list of sentences; wrap a single sentence: translate(..., [text], ...)")
    ids = translation.encode_sources(texts, src_tok, max_src_len, on_long)
    out = []
    for i in range(0, len(ids), batch_size):
        chunk = ids[i : i + batch_size]
        length = min(max_src_len, -(-max(map(len, chunk)) // 16) * 16)  # few distinct shapes
        src, mask = translation.pad(chunk + [[translation.EOS]] * (batch_size - len(chunk)), length)
        toks, scores = translate_ids(
            model, params, src, mask, beam_size=beam_size, alpha=alpha, max_len=max_len
        )
        if not np.isfinite(np.asarray(scores)[: len(chunk)]).all():
            raise ValueError("the model gave non-finite log-probabilities (NaN or inf parameters?); "
                             "its translations would be meaningless")
        out += [tgt_tok.decode(row) for row in np.asarray(toks)[: len(chunk)]]
    return out


# ---------------------------------------------------------------------------------------------
# Measurements.


def evaluate_bleu(
    model: Seq2Seq,
    params,
    src_tok,
    tgt_tok,
    sources: Sequence[str],
    references: Sequence[str],
    *,
    beams: Sequence[int],
    alpha: float,
    max_len: int,
    batch_size: int,
    lowercase: bool = False,
) -> tuple[dict, dict]:
    """Corpus BLEU and decode time of every decoder in ``beams`` (0 = greedy).

    Returns (metrics ``val_bleu_<decoder>``, ``val_decode_seconds_<decoder>`` and, when sacrebleu
    is installed, ``val_sacrebleu_<decoder>``, which must equal ours; hypotheses per decoder).
    """
    try:
        import sacrebleu
    except ImportError:
        sacrebleu = None
    metrics, hyps = {}, {}
    for k in beams:
        name = "greedy" if k == 0 else f"beam{k}"
        t0 = time.perf_counter()
        out = translate(
            model,
            params,
            sources,
            src_tok,
            tgt_tok,
            beam_size=k,
            alpha=alpha,
            max_src_len=max_len,
            max_len=max_len,
            batch_size=batch_size,
        )
        metrics[f"val_bleu_{name}"] = corpus_bleu(out, references, lowercase=lowercase)
        if sacrebleu is not None:
            score = sacrebleu.corpus_bleu(out, [references], lowercase=lowercase).score
            metrics[f"val_sacrebleu_{name}"] = score
        metrics[f"val_decode_seconds_{name}"] = time.perf_counter() - t0
        hyps[name] = out
    return metrics, hyps


def beam_search_agreement(
    model: Seq2Seq, params, src_tok, sources: Sequence[str], *, beam_size: int, alpha: float,
    max_len: int,
) -> float:
    """Fraction of sentences where the jitted beam search equals ``decoding.python_beam_search``."""
    ids = translation.encode_sources(sources, src_tok, max_len)
    src, mask = translation.pad(ids, max(map(len, ids)))
    cache = encode(model, params, src, mask)
    kw = {"beam_size": beam_size, "alpha": alpha, "max_len": max_len}
    ours = beam_search_ids(model, params, cache, **kw)
    ref = decoding.python_beam_search(
        cache, jitted_step_fn(model, params), **kw, eos_id=translation.EOS, bos_id=translation.BOS
    )
    return float(np.mean(np.all(np.asarray(ours[0][:, 0]) == ref[0][:, 0], axis=-1)))


def attention_map(
    model: Seq2Seq, params, src_tok, tgt_tok, source: str, target: str
) -> tuple[np.ndarray, list[str], list[str]]:
    """Attention [T, S] of the model re-reading ``target`` under teacher forcing, and the source
    and target token strings (each ending in ``<eos>``) that label its columns and rows."""
    s = src_tok.encode(source) + [translation.EOS]
    t = tgt_tok.encode(target) + [translation.EOS]
    src, mask = translation.pad([s], len(s))
    tgt_in = np.array([[translation.BOS] + t[:-1]], np.int32)
    w = attention_weights(model, params, src, mask, tgt_in)
    labels = lambda tok, ids: [tok.decode([i]) or "<eos>" for i in ids]
    return np.asarray(w[0]), labels(src_tok, s[:-1]) + ["<eos>"], labels(tgt_tok, t[:-1]) + ["<eos>"]
