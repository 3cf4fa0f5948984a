"""The word2vec updates of one chunk: skip-gram / CBOW x negative sampling / hierarchical softmax.

A chunk is ``C`` consecutive (subsampled, compacted) corpus tokens; centre ``j`` is trained
against the contexts ``j + o`` its reduced window reaches (:func:`context_windows`). Each variant
is one function that returns the gradient of the input side and the sparse update of its output
table. Skip-gram scores its pairs block by block, a ``[B, D] @ [D, B + 2W]`` product of a block's
centres against the rows around them; CBOW sums each window from shifted copies of the ``[C, D]``
input rows. Neither gathers a ``[C, 2W, D]`` tensor of context rows:

* :func:`skipgram_ns`: every (context, centre) pair, plus negatives shared by groups of
  ``negative_group`` inputs spread over the chunk (:func:`_groups`) as a batched
  ``[S, D] @ [D, K]`` product weighted by each input's number of pairs (the batch-shared
  negatives of Ji et al., 2016, organised by input instead of by centre; same expected update);
* :func:`cbow_ns`: the mean (or sum) of the window against the centre and ``K`` shared
  negatives (a negative equal to the centre is skipped, as in gensim);
* :func:`skipgram_hs` / :func:`cbow_hs`: the inner nodes on the centre's Huffman path are its
  outputs (for skip-gram, all ``B L`` path nodes of a block against its ``B + 2W`` rows).

A token's input row is its word's row of ``syn0``, or for fastText (:func:`subword_inputs`) the
mean of its word row and its character n-gram rows, every one of which then receives the token's
whole gradient (as fastText and gensim update them); CBOW then averages all rows of its window.

As in gensim, a pair whose score lies beyond ``+-MAX_EXP`` gets no update (:func:`_error`). All
updates of a chunk come from the same parameters (a mini-batch, unlike gensim's sequential
Hogwild SGD) and are sparse: rows ``[M]`` and deltas ``[M, D]`` to scatter-add, never a dense
``V x D`` gradient, and plain SGD needs no optimizer state. :func:`~embeddings_jax.ops.xla_cpu.barrier`
marks the values XLA:CPU should materialise once; elsewhere it is the identity.
"""

from __future__ import annotations

import dataclasses
import functools

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
    subword_slots: int = 0  # fastText: input-table rows gathered per chunk (0: one row per word)
    doc: str = ""  # Doc2Vec: "dbow" (the document predicts each word), "dm" (it joins each window)
    # or "dmc" (it and the window's rows, concatenated, predict the centre)
    words: bool = True  # train the word model (sg/cbow over windows); PV-DBOW's dbow_words
    frozen_words: bool = False  # infer_vector: only the document vectors learn

    @property
    def negative_draws(self) -> int:
        """Negatives drawn per group. An input word of skip-gram stands for up to ``2W`` pairs
        that gensim gives ``K`` fresh negatives each; drawing ``K * W`` (weighted accordingly)
        keeps the variance of its update near gensim's instead of reusing ``K`` draws ``2W``
        times. CBOW has one example per centre: ``K``."""
        if not self.negative:
            return 0
        return self.negative * self.window if self.sg and self.words else self.negative

    def __post_init__(self):
        if self.capacity <= 0 or self.capacity > self.chunk_size:
            object.__setattr__(self, "capacity", self.chunk_size)
        if self.doc not in ("", "dbow", "dm", "dmc"):
            raise ValueError(f"doc must be '', 'dbow', 'dm' or 'dmc', got {self.doc!r}")
        if self.doc in ("dm", "dmc") and self.sg or self.doc != "dbow" and not self.words:
            raise ValueError("PV-DM trains CBOW windows (sg=False, words=True); only PV-DBOW may skip words")


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


# ---------------------------------------------------------------- windows: a band of blocks, or shifts
def block_size(c: int, w: int) -> int:
    """Centres per block: the smallest divisor of ``c`` that is at least ``max(w, 8)``, so the
    contexts of a block's centres lie in it and its two neighbours."""
    b = min(max(w, 8), c)
    while c % b:
        b += 1
    return b


def _pad(x: jax.Array, w: int, fill=0) -> jax.Array:
    return jnp.pad(x, [(w, w)] + [(0, 0)] * (x.ndim - 1), constant_values=fill)


def _shift(xp: jax.Array, o: int, w: int, c: int) -> jax.Array:
    """``x[j + o]`` for ``j < c`` from ``xp = _pad(x, w)`` (a slice, fused into its consumer)."""
    return xp[w + o : w + o + c]


def _halo(a: jax.Array, w: int, b: int, fill=0) -> jax.Array:
    """``[C, ...] -> [C / B, B + 2W, ...]``: block ``n``'s rows ``a[nB - W + k]`` (``fill``
    beyond the chunk), three slices of the padded rows (``W <= B``)."""
    ap, c = _pad(a, w, fill), a.shape[0]
    rows = lambda start: ap[start : start + c].reshape((-1, b) + a.shape[1:])
    parts = [rows(0)[:, :w], rows(w), rows(2 * w)[:, b - w :]] if w else [rows(0)]
    return jnp.concatenate(parts, axis=1)


@dataclasses.dataclass(frozen=True)
class Windows:
    """The training pairs of a chunk, (centre ``j``, context ``p``): same sentence, ``0 < |p - j|
    <=`` the centre's reduced window; ``x [C, D]`` are the input rows of the tokens ``ids [C]``.

    Two layouts of the same pairs, each where it runs fastest:

    * ``band`` (skip-gram, whose every pair has its own score): the ``C`` centres form
      ``N = C / B`` blocks of ``B``, block ``n``'s contexts are its ``B + 2W`` positions
      ``p = nB - W + k`` (:meth:`halo`), and ``band[n, r, k]`` says whether (centre ``nB + r``,
      context ``p``) is a pair. Every score of a block is one ``[B, D] @ [D, B + 2W]`` product;
      the extra products on non-pairs cost less than one pass over the rows per offset.
    * ``masks`` (CBOW, whose centres sum their window): ``masks[i][j]`` says whether (``j``,
      ``j + offsets[i]``) is a pair, read off shifted copies of the rows (:meth:`context`) in one
      fused pass, with no ``[C, 2W, D]`` tensor of context rows.
    """

    ids: jax.Array
    x: jax.Array
    count: jax.Array  # [C] contexts per centre
    w: int
    b: int = 0
    band: jax.Array | None = None  # [N, B, B + 2W]
    masks: tuple[jax.Array, ...] = ()  # [C] each
    offsets: tuple[int, ...] = ()
    subwords: SubwordInputs | None = None  # fastText's rows behind ``x``

    @property
    def c(self) -> int:
        return self.ids.shape[0]

    def blocks(self, a: jax.Array) -> jax.Array:
        """``[C, ...] -> [N, B, ...]``."""
        return a.reshape((-1, self.b) + a.shape[1:])

    def halo(self, a: jax.Array) -> jax.Array:
        """``[C, ...] -> [N, B + 2W, ...]``: block ``n``'s context rows (zero beyond the chunk)."""
        return _halo(a, self.w, self.b)

    def fold(self, a: jax.Array) -> jax.Array:
        """Adjoint of :meth:`halo`: ``[N, B + 2W, ...] -> [C, ...]``, each position's sum."""
        w, b = self.w, self.b
        zeros = [(0, 0)] * (a.ndim - 2)
        out = a[:, w : w + b]
        if w:  # halo rows belong to the neighbouring blocks (dropped beyond the chunk)
            out = out + jnp.pad(a[1:, :w], [(0, 1), (b - w, 0)] + zeros)
            out = out + jnp.pad(a[:-1, w + b :], [(1, 0), (0, b - w)] + zeros)
        return out.reshape((-1,) + a.shape[2:])

    @functools.cached_property
    def xp(self) -> jax.Array:
        """``x`` padded by ``W`` zero rows on each side, built once for all offsets."""
        return _pad(self.x, self.w)

    def context(self, o: int) -> jax.Array:
        """``[C, D]`` rows ``x[j + o]`` (zero beyond the chunk)."""
        return _shift(self.xp, o, self.w, self.c)

    def unshift_weighted(self, weights: list[jax.Array], rows: jax.Array) -> jax.Array:
        """``out[p] = sum_i weights[i][p - o_i] * rows[p - o_i]`` (``[C]`` each, ``rows [C, D]``):
        the adjoint of the shifts, in one fused pass over ``rows``."""
        w, c = self.w, self.c
        rp = barrier(_pad(rows, w))  # padded once, not recomputed by its producer per offset
        return sum(
            _shift(_pad(wt, w), -o, w, c)[:, None] * _shift(rp, -o, w, c)
            for wt, o in zip(weights, self.offsets)
        )

    def unshift_blocks(self, weights: list[jax.Array], blocks: list[jax.Array]) -> jax.Array:
        """``out[p] = sum_i weights[i][p - o_i] * blocks[i][p - o_i]``: :meth:`unshift_weighted`
        with its own ``[C, D]`` rows per offset."""
        w, c = self.w, self.c
        return sum(
            _shift(_pad(wt[:, None] * b, w), -o, w, c) for wt, b, o in zip(weights, blocks, self.offsets)
        )


# ---------------------------------------------------------------- fastText's input rows
@dataclasses.dataclass(frozen=True)
class SubwordInputs:
    """A chunk's rows of fastText's input table, flattened in token order into ``T`` slots.

    ``rows [T]`` (``len(syn0)``, i.e. dropped, for unused slots), ``owner [T]`` the token of
    each slot, ``n_rows [C]`` the rows each token got (its word row and n-gram rows; fewer only
    if the chunk overflows its ``T`` slots, counted in ``n_cut``).
    """

    rows: jax.Array
    owner: jax.Array
    n_rows: jax.Array
    n_cut: jax.Array


def subword_inputs(syn0, tables, ids, valid, cfg: StepConfig):
    """``(row sums [C, D], SubwordInputs)`` of tokens ``ids [C]`` (``valid``: real tokens).

    ``tables["row_start"] [V]``, ``tables["n_rows"] [V]`` and ``tables["rows"] [N]`` list each
    word's rows (``data.subwords.subword_rows``). The ``T = cfg.subword_slots`` slots hold the
    tokens' rows one after another: slot ``s`` belongs to the last token starting at or before
    it, so no ``[C, max rows]`` padding is gathered.
    """
    c, t = ids.shape[0], cfg.subword_slots
    n = jnp.where(valid, tables["n_rows"][ids], 0)
    start = jnp.cumsum(n) - n
    owner = jnp.cumsum(jnp.zeros(t, jnp.int32).at[start].add(1, mode="drop")) - 1  # [T]
    k = jnp.arange(t) - start[owner]
    used = k < n[owner]
    rows = tables["rows"][tables["row_start"][ids[owner]] + jnp.where(used, k, 0)]
    rows = jnp.where(used, rows, syn0.shape[0])
    sums = jnp.zeros((c, syn0.shape[1]), syn0.dtype).at[owner].add(
        syn0.at[rows].get(mode="fill", fill_value=0), indices_are_sorted=True
    )
    n_used = jnp.clip(t - start, 0, n)  # a token's rows beyond the last slot are cut
    return sums, SubwordInputs(rows, owner, n_used.astype(syn0.dtype), (n_used < n).sum())


def input_updates(win: Windows, d_x: jax.Array):
    """The input table's sparse update from the tokens' gradients ``d_x [C, D]``: a word's row,
    or (fastText) every row of the token, each getting the token's whole gradient."""
    if win.subwords is None:
        return win.ids, d_x
    return win.subwords.rows, d_x[win.subwords.owner]


# ---------------------------------------------------------------- Doc2Vec's document rows
@dataclasses.dataclass(frozen=True)
class DocInputs:
    """Each token's document vector: ``x [C, D]`` (zero for padding), ``has [C]`` (1 where the
    token has a document) and ``rows [C]`` its row of ``dv`` (``len(dv)``, i.e. dropped, if none)."""

    x: jax.Array
    has: jax.Array
    rows: jax.Array


def doc_inputs(dv: jax.Array, docs: jax.Array) -> DocInputs:
    """The :class:`DocInputs` of tokens whose document rows are ``docs [C]`` (``-1``: padding)."""
    rows = jnp.where(docs >= 0, docs, dv.shape[0])
    return DocInputs(dv.at[rows].get(mode="fill", fill_value=0), (docs >= 0).astype(dv.dtype), rows)


def context_windows(syn0: jax.Array, draws: dict, cfg: StepConfig, tables=None) -> Windows:
    """The pairs of a chunk from its draws (``ids``, ``sents``, ``reach [C]``), laid out as a
    band for skip-gram and as shifted masks for CBOW (see :class:`Windows`). With
    ``cfg.subword_slots`` the input rows are fastText's (``tables`` lists them): skip-gram's
    ``x`` is each token's mean row, CBOW's the sum (averaged over all rows of the window)."""
    ids, sents, reach = draws["ids"], draws["sents"], draws["reach"]
    c = ids.shape[0]
    w = min(cfg.window, c - 1)  # no pair spans more than the chunk
    sub = None
    if cfg.subword_slots:
        x, sub = subword_inputs(syn0, tables, ids, sents >= 0, cfg)
        if cfg.sg:
            x = x / jnp.maximum(sub.n_rows, 1.0)[:, None]
        x = barrier(x)
    else:
        x = barrier(syn0[ids])  # input rows materialised once, not recomputed inside each consumer
    if cfg.sg:
        b = block_size(c, w)
        offset = jnp.arange(b + 2 * w)[None, :] - w - jnp.arange(b)[:, None]  # [B, B + 2W]
        centre = lambda a: a.reshape(-1, b, 1)
        band = (
            (centre(sents) >= 0)
            & (_halo(sents, w, b, -1)[:, None, :] == centre(sents))
            & (offset != 0)
            & (jnp.abs(offset) <= centre(reach))
        ).astype(syn0.dtype)
        band, count = barrier((band, band.sum(-1).reshape(c)))
        return Windows(ids, x, count, w, b=b, band=band, subwords=sub)
    offsets = tuple(range(-w, 0)) + tuple(range(1, w + 1))
    sp = _pad(sents, w, -1)
    masks = tuple(
        ((sents >= 0) & (_shift(sp, o, w, c) == sents) & (abs(o) <= reach)).astype(syn0.dtype)
        for o in offsets
    )
    masks, count = barrier((masks, sum(masks)))
    return Windows(ids, x, count, w, masks=masks, offsets=offsets, subwords=sub)


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
    # Every pair of a block at once: centres' outputs against the block's context rows.
    d_ctx, d_y, f = _group_products(
        win.blocks(y), win.halo(win.x), lambda z: _error(1.0, z) * alpha * win.band
    )  # [N, B + 2W, D], [N, B, D], [N, B, B + 2W]
    loss = _loss(1.0, f, win.band)
    # Every pair with input j shares j's group negatives: the negative term of input j is
    # counted once, weighted by its number of pairs.
    n_pairs = win.fold(win.band.sum(1))  # [C]
    weight = _groups(n_pairs * (cfg.negative / cfg.negative_draws), s)
    d_xn, (rows, d_o), neg_loss = _shared_negatives(syn1neg, negs, _groups(win.x, s), alpha, weight)
    d_x = _ungroup(d_xn) + win.fold(d_ctx)
    d_y = d_y.reshape(y.shape)
    return d_x, (jnp.concatenate([win.ids, rows]), jnp.concatenate([d_y, d_o])), loss + neg_loss


def skipgram_hs(win: Windows, syn1, tables, alpha, cfg: StepConfig):
    """Skip-gram with hierarchical softmax: per block, the ``L`` path nodes of each of its ``B``
    centres against the block's ``B + 2W`` context rows (masked to the pairs).
    Returns ``(d_x [C, D], (rows, deltas), loss)``, the deltas for ``syn1``."""
    points, labels, on_path, o, node_scale = _huffman_paths(syn1, tables, win.ids, win.count, cfg)
    n, b, l = win.band.shape[0], win.b, points.shape[1]
    # Per block, the path nodes of all its centres against all its context rows.
    weight = (win.band[:, :, None, :] * win.blocks(on_path)[:, :, :, None]).reshape(n, b * l, -1)
    label = win.blocks(labels).reshape(n, b * l, 1)
    d_ctx, d_o, logits = _group_products(
        win.blocks(o).reshape(n, b * l, -1), win.halo(win.x),
        lambda z: _error(label, z) * alpha * weight,
    )  # [N, B + 2W, D], [N, B L, D], [N, B L, B + 2W]
    d_o = d_o.reshape(o.shape) * node_scale[:, :, None]
    loss = _loss(label, logits, weight)
    return win.fold(d_ctx), (points.reshape(-1), d_o.reshape(-1, d_o.shape[-1])), loss


def cbow_input(win: Windows, cfg: StepConfig, doc: DocInputs | None = None):
    """CBOW's input ``h [C, D]``, the mean (or sum) of each centre's context rows, ``has_ctx
    [C]`` (1 where the centre has an input) and ``n_in [C]``, the rows summed into ``h``: the
    contexts, or (fastText) all their word and n-gram rows, plus (PV-DM) the document's row."""
    h = sum(m[:, None] * win.context(o) for m, o in zip(win.masks, win.offsets))
    n_in = win.count
    if win.subwords is not None:
        n_rows = _pad(win.subwords.n_rows, win.w)
        n_in = sum(m * _shift(n_rows, o, win.w, win.c) for m, o in zip(win.masks, win.offsets))
    has_ctx = (win.count > 0).astype(h.dtype)
    if doc is not None:  # the document is one more input of every window (gensim's train_document_dm)
        h, n_in, has_ctx = h + doc.x, n_in + doc.has, doc.has
    if cfg.cbow_mean:
        h = h / jnp.maximum(n_in, 1.0)[:, None]
    return h, has_ctx, n_in


def concat_input(win: Windows, doc: DocInputs, null_row: jax.Array) -> jax.Array:
    """PV-DM over concatenated windows (gensim's ``dm_concat``): ``[C, (1 + 2W) D]``, the
    document's row then the row at each offset ``-W..-1, 1..W`` of the full window, the null
    word's row where the window leaves the document, or the chunk (no window spans chunks)."""
    parts = [jnp.where(m[:, None] > 0, win.context(o), null_row) for m, o in zip(win.masks, win.offsets)]
    return jnp.concatenate([doc.x] + parts, axis=1)


def concat_gradients(win: Windows, d_h: jax.Array, has: jax.Array):
    """The adjoint of :func:`concat_input`: ``(d_doc [C, D], d_x [C, D] of each position,
    d_null [D])`` from ``d_h [C, (1 + 2W) D]`` (``has [C]``: real centres)."""
    d = win.x.shape[1]
    blocks = [d_h[:, (i + 1) * d : (i + 2) * d] for i in range(len(win.offsets))]
    d_x = win.unshift_blocks(list(win.masks), blocks)
    d_null = sum((((1.0 - m) * has)[:, None] * g).sum(0) for m, g in zip(win.masks, blocks))
    return d_h[:, :d], d_x, d_null


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


def _output_updates(win: Windows, h, has_ctx, params, tables, negs, alpha, cfg: StepConfig):
    """One input row per centre (CBOW's window, or PV-DBOW's document) against the centre's
    outputs: ``(d_h [C, D], {table: (rows, deltas)}, [losses])`` of each output loss."""
    grads, updates, losses = [], {}, []
    if cfg.negative:
        d, updates["syn1neg"], loss = cbow_ns(win, h, has_ctx, params["syn1neg"], negs, alpha, cfg)
        grads.append(d)
        losses.append(loss)
    if cfg.hs:
        d, updates["syn1"], loss = cbow_hs(win, h, has_ctx, params["syn1"], tables, alpha, cfg)
        grads.append(d)
        losses.append(loss)
    return sum(grads[1:], grads[0]), updates, losses


def _merge(updates: dict, more: dict) -> dict:
    """Both sets of sparse updates, the rows of a table present in both concatenated."""
    out = dict(updates)
    for name, (rows, deltas) in more.items():
        if name in out:
            rows, deltas = jnp.concatenate([out[name][0], rows]), jnp.concatenate([out[name][1], deltas])
        out[name] = (rows, deltas)
    return out


def updates_from_draws(params, tables, draws: dict, alpha, cfg: StepConfig):
    """Sparse updates of one chunk given its random draws (see ``step.sample_chunk``).

    Args:
      params: ``{"syn0": [V, D], "syn1neg": [V, D] (negative > 0), "syn1": [V - 1, D] (hs)}``,
        and ``"dv": [N, D]`` document vectors (``cfg.doc``).
      tables: device constants: ``codes``/``points [V, L]``, ``lengths [V]`` (hs);
        ``row_start``/``n_rows [V]``, ``rows [N]`` (fastText, see :func:`subword_inputs`);
        ``null_row`` (``dmc``: the null word's id).
      draws: ``ids``/``sents``/``reach [C]``, ``negs`` (negative > 0), ``n_kept``, ``n_dropped``,
        and ``docs [C]`` each token's document row (``cfg.doc``; ``-1`` for padding).
      alpha: learning rate (scalar).
    Returns:
      ``(updates, stats)``: ``updates[name] = (rows [M] int32, deltas [M, D])`` to scatter-add,
      ``stats = [kept tokens, trained centres (CBOW) or pairs (SG) (+ PV-DBOW's document
      examples), tokens lost to overflow, training loss (``cfg.compute_loss``; else 0)]``; a
      fastText token cut short of its rows by a full chunk counts as lost to overflow.
    """
    doc = doc_inputs(params["dv"], draws["docs"]) if cfg.doc else None
    if cfg.words:
        win = context_windows(params["syn0"], draws, cfg, tables)
    else:  # PV-DBOW alone: no word pairs, only each token's (document, word) example
        win = Windows(draws["ids"], None, (draws["sents"] >= 0).astype(params["dv"].dtype), 0)
    updates, losses, n_trained = {}, [], 0.0
    if cfg.words and cfg.sg:
        grads = []
        if cfg.negative:
            d, updates["syn1neg"], loss = skipgram_ns(win, params["syn1neg"], draws["negs"], alpha, cfg)
            grads.append(d)
            losses.append(loss)
        if cfg.hs:
            d, updates["syn1"], loss = skipgram_hs(win, params["syn1"], tables, alpha, cfg)
            grads.append(d)
            losses.append(loss)
        d_x = sum(grads[1:], grads[0])
        n_trained = win.band.sum()
    elif cfg.doc == "dmc":  # the document and the whole window, side by side, predict the centre
        null = tables["null_row"]
        h = concat_input(win, doc, params["syn0"][null])
        d_h, updates, losses = _output_updates(win, h, doc.has, params, tables, draws.get("negs"), alpha, cfg)
        d_doc, d_x, d_null = concat_gradients(win, d_h, doc.has)
        n_trained = doc.has.sum()
    elif cfg.words:
        h, has_ctx, n_in = cbow_input(win, cfg, doc if cfg.doc == "dm" else None)
        d_h, updates, losses = _output_updates(win, h, has_ctx, params, tables, draws.get("negs"), alpha, cfg)
        if not cfg.cbow_mean:  # gensim divides the error over summed windows
            d_h = d_h / jnp.maximum(n_in, 1.0)[:, None]
        d_x = win.unshift_weighted(win.masks, d_h)  # each context gets its centres' gradients
        d_doc = d_h  # PV-DM: the document row gets its windows' gradient, as a context does
        n_trained = has_ctx.sum()
    if cfg.doc == "dbow":  # the document row against each token's outputs (the first K negatives)
        negs = draws["negs"][:, : cfg.negative] if cfg.negative else None
        d_doc, more, more_losses = _output_updates(win, doc.x, doc.has, params, tables, negs, alpha, cfg)
        updates, losses = _merge(updates, more), losses + more_losses
        n_trained = n_trained + doc.has.sum()
    if cfg.words:
        updates["syn0"] = input_updates(win, d_x)
    if cfg.doc == "dmc":  # the null word's row is trained too, as gensim's
        updates = _merge(updates, {"syn0": (null[None], d_null[None])})
    if cfg.doc:
        updates["dv"] = (doc.rows, d_doc)
    if cfg.frozen_words:
        updates = {"dv": updates["dv"]}
    loss = sum(losses) if cfg.compute_loss else 0.0  # dead code for XLA when not asked for
    n_dropped = draws["n_dropped"] + (0 if win.subwords is None else win.subwords.n_cut)
    dtype = params["syn0"].dtype
    stats = jnp.stack([draws["n_kept"], n_trained, n_dropped, loss]).astype(dtype)
    return updates, stats


def apply_updates(params: dict, updates: dict) -> dict:
    """Scatter-adds each table's ``(rows, deltas)`` into ``params`` (rows out of range dropped)."""
    return {
        name: table.at[updates[name][0]].add(updates[name][1], mode="drop")
        if name in updates
        else table
        for name, table in params.items()
    }
