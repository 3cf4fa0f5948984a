"""The word2vec updates of one chunk: skip-gram / CBOW x negative sampling / hierarchical softmax.

A chunk is ``C`` consecutive (subsampled, compacted) corpus tokens; centre ``j`` is trained
against the contexts ``j + o`` its reduced window reaches (:func:`context_windows`). Each variant
is one function that returns the gradient of the input side and the sparse update of its output
table, read off shifted copies of the ``[C, D]`` input rows, so no ``[C, 2W, D]`` tensor of
context rows is gathered:

* :func:`skipgram_ns`: every (context, centre) pair, plus negatives shared by groups of
  ``negative_group`` inputs spread over the chunk (:func:`_groups`) as a batched
  ``[S, D] @ [D, K]`` product weighted by each input's number of pairs (the batch-shared
  negatives of Ji et al., 2016, organised by input instead of by centre; same expected update);
* :func:`cbow_ns`: the mean (or sum) of the window against the centre and ``K`` shared
  negatives (a negative equal to the centre is skipped, as in gensim);
* :func:`skipgram_hs` / :func:`cbow_hs`: the inner nodes on the centre's Huffman path are its
  outputs (a ``[2W, D] @ [D, L]`` product per centre for skip-gram).

As in gensim, a pair whose score lies beyond ``+-MAX_EXP`` gets no update (:func:`_error`). All
updates of a chunk come from the same parameters (a mini-batch, unlike gensim's sequential
Hogwild SGD) and are sparse: rows ``[M]`` and deltas ``[M, D]`` to scatter-add, never a dense
``V x D`` gradient, and plain SGD needs no optimizer state. :func:`~embeddings_jax.ops.xla_cpu.barrier`
marks the values XLA:CPU should materialise once; elsewhere it is the identity.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from embeddings_jax.ops.xla_cpu import barrier


@dataclasses.dataclass(frozen=True)
class StepConfig:
    """Static (hashable) settings of the update."""

    sg: bool
    hs: bool
    negative: int
    window: int
    cbow_mean: bool
    chunk_size: int
    negative_group: int = 1  # inputs (C / S apart) sharing one draw of negatives
    capacity: int = 0  # tokens kept per chunk after subsampling (0: chunk_size)
    max_repeats: float = 16.0  # cap on summed updates of one Huffman node per step (hs)
    shrink_windows: bool = True  # gensim's dynamic windows; False: every centre sees all W
    compute_loss: bool = False  # also sum gensim's training loss (stats[3])

    @property
    def negative_draws(self) -> int:
        """Negatives drawn per group. An input word of skip-gram stands for up to ``2W`` pairs
        that gensim gives ``K`` fresh negatives each; drawing ``K * W`` (weighted accordingly)
        keeps the variance of its update near gensim's instead of reusing ``K`` draws ``2W``
        times. CBOW has one example per centre: ``K``."""
        if not self.negative:
            return 0
        return self.negative * self.window if self.sg else self.negative

    def __post_init__(self):
        if self.capacity <= 0 or self.capacity > self.chunk_size:
            object.__setattr__(self, "capacity", self.chunk_size)


MAX_EXP = 6.0  # gensim (and the C tool's table) ignore pairs whose score lies beyond +-MAX_EXP


def _error(label, logits):
    """``label - sigmoid(logits)``, zero where ``|logits| >= MAX_EXP``: gensim skips those pairs
    (their sigmoid is off its table), which also bounds how hard a saturated pair can pull."""
    return jnp.where(jnp.abs(logits) < MAX_EXP, label - jax.nn.sigmoid(logits), 0.0)


def _loss(label, logits, weight):
    """gensim's training loss, ``-log sigmoid(+-logits)`` (``+`` where ``label`` is 1), summed
    with ``weight`` over the pairs gensim trains (``|logits| < MAX_EXP``)."""
    z = (2.0 * label - 1.0) * logits
    return jnp.sum(jnp.where(jnp.abs(logits) < MAX_EXP, -jax.nn.log_sigmoid(z), 0.0) * weight)


# ---------------------------------------------------------------- windows as shifted rows
def _pad(x: jax.Array, w: int, fill=0) -> jax.Array:
    return jnp.pad(x, [(w, w)] + [(0, 0)] * (x.ndim - 1), constant_values=fill)


def _shift(xp: jax.Array, o: int, w: int, c: int) -> jax.Array:
    """``x[j + o]`` for ``j < c`` from ``xp = _pad(x, w)`` (a slice, fused into its consumer)."""
    return xp[w + o : w + o + c]


def _unshift_sum(parts: list[jax.Array], offsets, w: int, c: int) -> jax.Array:
    """Adjoint of the shifts: ``out[j] = sum_o parts[o][j - o]``, ``[C, ...]`` each -> ``[C, ...]``."""
    out = jnp.zeros((c + 2 * w,) + parts[0].shape[1:], parts[0].dtype)
    for part, o in zip(parts, offsets):
        out = out.at[w + o : w + o + c].add(part)
    return out[w : w + c]


def _unshift_weighted(weights: list[jax.Array], rows: jax.Array, offsets, w: int, c: int):
    """``out[j] = sum_o weights[o][j - o] * rows[j - o]``: :func:`_unshift_sum` of the parts
    ``weights[o][:, None] * rows`` (``[C]`` each, ``rows [C, D]``) in one fused pass over ``rows``."""
    # Padded rows materialised once, not recomputed by their producer once per offset.
    rp = barrier(_pad(rows, w))
    return sum(
        _shift(_pad(wt, w), -o, w, c)[:, None] * _shift(rp, -o, w, c)
        for wt, o in zip(weights, offsets)
    )


@dataclasses.dataclass(frozen=True)
class Windows:
    """The training pairs of a chunk: centre ``j`` and context ``j + o`` where ``masks[i][j]``
    (``o = offsets[i]``), with the input rows ``x [C, D]`` of its tokens ``ids [C]``."""

    ids: jax.Array
    offsets: tuple[int, ...]
    masks: list[jax.Array]  # [C] each: is (centre j, context j + o) a pair?
    count: jax.Array  # [C] contexts per centre
    x: jax.Array
    xp: jax.Array  # x padded by W rows on each side
    w: int
    c: int

    def context(self, o: int) -> jax.Array:
        """``[C, D]`` rows ``x[j + o]`` (zero beyond the chunk)."""
        return _shift(self.xp, o, self.w, self.c)

    def unshift_sum(self, parts: list[jax.Array]) -> jax.Array:
        return _unshift_sum(parts, self.offsets, self.w, self.c)

    def unshift_weighted(self, weights: list[jax.Array], rows: jax.Array) -> jax.Array:
        return _unshift_weighted(weights, rows, self.offsets, self.w, self.c)


def context_windows(syn0: jax.Array, draws: dict, cfg: StepConfig) -> Windows:
    """The pairs of a chunk from its draws (``ids``, ``sents``, ``reach [C]``): same sentence,
    within the centre's reduced window."""
    w, c = cfg.window, cfg.capacity
    ids, sents, reach = draws["ids"], draws["sents"], draws["reach"]
    valid = sents >= 0
    offsets = tuple(range(-w, 0)) + tuple(range(1, w + 1))
    sp = _pad(sents, w, -1)
    masks = [
        (valid & (_shift(sp, o, w, c) == sents) & (abs(o) <= reach)).astype(syn0.dtype)
        for o in offsets
    ]
    count = sum(masks)
    # Row masks and input rows materialised once, not recomputed inside each [C, D] consumer.
    masks, count = barrier((masks, count))
    x = barrier(syn0[ids])
    return Windows(ids, offsets, masks, count, x, _pad(x, w), w, c)


# ---------------------------------------------------------------- shared products
def _group_products(o, x, error):
    """Scores of ``K`` outputs against ``S`` inputs per group, and both gradients.

    Args:
      o: ``[G, K, D]`` output rows; x: ``[G, S, D]`` input rows;
      error: ``logits [G, K, S] -> [G, K, S]``, the learning rate times the error of each pair.
    Returns: ``(d_x [G, S, D], d_o [G, K, D], logits [G, K, S])``.

    The scores are computed transposed (``[G, K, S]``) and the error is transposed once, in
    memory, for ``d_x``: then every product contracts the left operand's last dimension with the
    right operand's middle one (or both last ones for the scores), the forms XLA:CPU runs fastest.
    """
    logits = jnp.einsum("gkd,gsd->gks", o, x)
    g = error(logits)
    d_o = jnp.einsum("gks,gsd->gkd", g, x)
    # The barrier keeps the transposed copy: without it XLA folds the transpose into the product.
    d_x = jnp.einsum("gsk,gkd->gsd", barrier(jnp.swapaxes(g, 1, 2)), o)
    return d_x, d_o, logits


def _groups(x: jax.Array, s: int) -> jax.Array:
    """``[C, ...] -> [C / S, S, ...]``: group ``g`` holds inputs ``g, g + C / S, g + 2 C / S, ...``.
    Strided, not consecutive: neighbouring tokens are related (the same topic, adjacent graph
    nodes), so a draw of negatives shared by them would push its rows S times the same way."""
    return jnp.swapaxes(x.reshape((s, -1) + x.shape[1:]), 0, 1)


def _ungroup(x: jax.Array) -> jax.Array:
    """Inverse of :func:`_groups`: ``[C / S, S, ...] -> [C, ...]``."""
    return jnp.swapaxes(x, 0, 1).reshape((-1,) + x.shape[2:])


def _shared_negatives(table, rows, x, alpha, weight, mask=None):
    """Negatives shared by groups of inputs, as batched matrix products.

    Args:
      table: ``[V, D]`` output vectors; rows: ``[G, K]`` negatives of each group.
      x: ``[G, S, D]`` input rows (``S`` inputs per group); weight: ``[G, S]`` how many
        (input, positive) pairs each input row stands for; mask: optional ``[G, K, S]``.
    Returns:
      ``(d_x [G, S, D], (rows [G * K], d_out [G * K, D]), loss)`` (the loss of the negatives).
    """
    pair_weight = weight[:, None, :] if mask is None else weight[:, None, :] * mask
    d_x, d_o, logits = _group_products(table[rows], x, lambda z: _error(0.0, z) * alpha * pair_weight)
    return d_x, (rows.reshape(-1), d_o.reshape(-1, d_o.shape[-1])), _loss(0.0, logits, pair_weight)


def _huffman_paths(syn1, tables, ids, examples, cfg: StepConfig):
    """The inner nodes on each centre's Huffman path: ``points [C, L]``, their labels
    (``1 - code``), ``on_path [C, L]`` (paths are padded to ``L``), rows ``o [C, L, D]`` and
    each node's update scale ``[C, L]``, for ``examples [C]`` examples per centre.

    Every path starts at the root, so the top inner nodes receive one update per example of the
    chunk. Sequential SGD lets each react to the last; summed at once they would overshoot, so a
    node's summed update is scaled to at most ``max_repeats`` updates' worth (O(V) counts per
    step, no V x D state).
    """
    dt = syn1.dtype
    points = tables["points"][ids]
    labels = 1.0 - tables["codes"][ids].astype(dt)
    on_path = (jnp.arange(points.shape[1])[None, :] < tables["lengths"][ids][:, None]).astype(dt)
    n_node = jnp.zeros(syn1.shape[0], dt).at[points].add(on_path * examples[:, None])
    node_scale = jnp.minimum(1.0, cfg.max_repeats / jnp.maximum(n_node[points], 1.0))
    return points, labels, on_path, syn1[points], node_scale


# ---------------------------------------------------------------- the four variants
def skipgram_ns(win: Windows, syn1neg, negs, alpha, cfg: StepConfig):
    """Skip-gram with negative sampling: input = context ``j + o``, output = centre ``j``
    (gensim's orientation), and the negatives ``negs [C / S, K']`` of each input's group.

    Returns ``(d_x [C, D], (rows, deltas), loss)``, the deltas for ``syn1neg``.
    """
    s = cfg.negative_group
    y = syn1neg[win.ids]  # [C, D] positive outputs (the centre words)
    pos_g = []  # pos_g[o][j]: the error of the pair (j + o, j), times alpha
    d_y = jnp.zeros_like(y)
    loss = 0.0
    for m, o in zip(win.masks, win.offsets):
        xo = win.context(o)
        f = jnp.sum(xo * y, -1)
        g = _error(1.0, f) * alpha * m
        pos_g.append(g)
        d_y = d_y + g[:, None] * xo
        loss = loss + _loss(1.0, f, m)
    # Every pair with input j shares j's group negatives: the negative term of input j is
    # counted once, weighted by its number of pairs.
    n_pairs = win.unshift_sum(win.masks)  # [C]
    weight = _groups(n_pairs * (cfg.negative / cfg.negative_draws), s)
    d_xn, (rows, d_o), neg_loss = _shared_negatives(syn1neg, negs, _groups(win.x, s), alpha, weight)
    d_x = _ungroup(d_xn) + win.unshift_weighted(pos_g, y)
    return d_x, (jnp.concatenate([win.ids, rows]), jnp.concatenate([d_y, d_o])), loss + neg_loss


def skipgram_hs(win: Windows, syn1, tables, alpha, cfg: StepConfig):
    """Skip-gram with hierarchical softmax: per centre, its ``L`` path nodes against its ``2W``
    contexts. Returns ``(d_x [C, D], (rows, deltas), loss)``, the deltas for ``syn1``."""
    points, labels, on_path, o, node_scale = _huffman_paths(syn1, tables, win.ids, win.count, cfg)
    xctx = jnp.stack([win.context(off) for off in win.offsets], axis=1)  # [C, 2W, D]
    weight = jnp.stack(win.masks, axis=1)[:, None, :] * on_path[:, :, None]
    d_ctx, d_o, logits = _group_products(
        o, xctx, lambda z: _error(labels[:, :, None], z) * alpha * weight
    )  # [C, 2W, D], [C, L, D], [C, L, 2W]
    d_x = win.unshift_sum([d_ctx[:, i] for i in range(len(win.offsets))])
    d_o = d_o * node_scale[:, :, None]
    loss = _loss(labels[:, :, None], logits, weight)
    return d_x, (points.reshape(-1), d_o.reshape(-1, d_o.shape[-1])), loss


def cbow_input(win: Windows, cfg: StepConfig):
    """CBOW's input ``h [C, D]``, the mean (or sum) of each centre's context rows, and
    ``has_ctx [C]`` (1 where the centre has a context)."""
    h = sum(m[:, None] * win.context(o) for m, o in zip(win.masks, win.offsets))
    if cfg.cbow_mean:
        h = h / jnp.maximum(win.count, 1.0)[:, None]
    return h, (win.count > 0).astype(h.dtype)


def cbow_ns(win: Windows, h, has_ctx, syn1neg, negs, alpha, cfg: StepConfig):
    """CBOW with negative sampling: ``h`` against the centre and its group's negatives (one
    equal to the centre is skipped, as in gensim). Returns ``(d_h [C, D], (rows, deltas), loss)``."""
    s = cfg.negative_group
    y = syn1neg[win.ids]  # [C, D] positive outputs (the centre words)
    f = jnp.sum(h * y, -1)
    g = _error(1.0, f) * alpha * has_ctx
    d_y = g[:, None] * h
    mask = (negs[:, :, None] != _groups(win.ids, s)[:, None, :]).astype(h.dtype)  # [G, K, S]
    d_hn, (rows, d_o), neg_loss = _shared_negatives(
        syn1neg, negs, _groups(h, s), alpha, _groups(has_ctx, s), mask
    )
    d_h = g[:, None] * y + _ungroup(d_hn)
    loss = _loss(1.0, f, has_ctx) + neg_loss
    return d_h, (jnp.concatenate([win.ids, rows]), jnp.concatenate([d_y, d_o])), loss


def cbow_hs(win: Windows, h, has_ctx, syn1, tables, alpha, cfg: StepConfig):
    """CBOW with hierarchical softmax: ``h`` against the centre's path nodes.
    Returns ``(d_h [C, D], (rows, deltas), loss)``, the deltas for ``syn1``."""
    points, labels, on_path, o, node_scale = _huffman_paths(syn1, tables, win.ids, has_ctx, cfg)
    logits = jnp.einsum("cd,cld->cl", h, o)
    weight = on_path * has_ctx[:, None]
    g = _error(labels, logits) * alpha * weight
    d_h = jnp.einsum("cl,cld->cd", g, o)
    d_o = (g * node_scale)[:, :, None] * h[:, None, :]
    loss = _loss(labels, logits, weight)
    return d_h, (points.reshape(-1), d_o.reshape(-1, d_o.shape[-1])), loss


def updates_from_draws(params, tables, draws: dict, alpha, cfg: StepConfig):
    """Sparse updates of one chunk given its random draws (see ``step.sample_chunk``).

    Args:
      params: ``{"syn0": [V, D], "syn1neg": [V, D] (negative > 0), "syn1": [V - 1, D] (hs)}``.
      tables: device constants: ``codes``/``points [V, L]``, ``lengths [V]`` (hs).
      draws: ``ids``/``sents``/``reach [C]``, ``negs`` (negative > 0), ``n_kept``, ``n_dropped``.
      alpha: learning rate (scalar).
    Returns:
      ``(updates, stats)``: ``updates[name] = (rows [M] int32, deltas [M, D])`` to scatter-add,
      ``stats = [kept tokens, trained centres (CBOW) or pairs (SG), tokens lost to overflow,
      training loss (``cfg.compute_loss``; else 0)]``.
    """
    win = context_windows(params["syn0"], draws, cfg)
    updates, grads, losses = {}, [], []  # the input side's gradient and loss of each output table
    if cfg.sg:
        if cfg.negative:
            d, updates["syn1neg"], loss = skipgram_ns(win, params["syn1neg"], draws["negs"], alpha, cfg)
            grads.append(d)
            losses.append(loss)
        if cfg.hs:
            d, updates["syn1"], loss = skipgram_hs(win, params["syn1"], tables, alpha, cfg)
            grads.append(d)
            losses.append(loss)
        d_x = sum(grads[1:], grads[0])
        n_trained = sum(m.sum() for m in win.masks)
    else:
        h, has_ctx = cbow_input(win, cfg)
        if cfg.negative:
            d, updates["syn1neg"], loss = cbow_ns(
                win, h, has_ctx, params["syn1neg"], draws["negs"], alpha, cfg
            )
            grads.append(d)
            losses.append(loss)
        if cfg.hs:
            d, updates["syn1"], loss = cbow_hs(win, h, has_ctx, params["syn1"], tables, alpha, cfg)
            grads.append(d)
            losses.append(loss)
        d_h = sum(grads[1:], grads[0])
        if not cfg.cbow_mean:  # gensim divides the error over summed windows
            d_h = d_h / jnp.maximum(win.count, 1.0)[:, None]
        d_x = win.unshift_weighted(win.masks, d_h)
        n_trained = has_ctx.sum()
    updates["syn0"] = (win.ids, d_x)
    loss = sum(losses) if cfg.compute_loss else 0.0  # dead code for XLA when not asked for
    stats = jnp.stack([draws["n_kept"], n_trained, draws["n_dropped"], loss]).astype(win.x.dtype)
    return updates, stats


def apply_updates(params: dict, updates: dict) -> dict:
    """Scatter-adds each table's ``(rows, deltas)`` into ``params`` (rows out of range dropped)."""
    return {
        name: table.at[updates[name][0]].add(updates[name][1], mode="drop")
        if name in updates
        else table
        for name, table in params.items()
    }
