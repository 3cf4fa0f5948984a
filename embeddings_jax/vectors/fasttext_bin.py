"""The ``fasttext`` package's model file (``.bin``, version 12), read and written without it.

Layout (little-endian): magic ``793712314`` and version ``12`` (int32); the arguments (``dim,
ws, epoch, minCount, neg, wordNgrams, loss, model, bucket, minn, maxn, lrUpdateRate`` int32,
``t`` float64); the dictionary (``size, nwords, nlabels`` int32, ``ntokens, pruneidx_size``
int64, then per entry the UTF-8 word, a NUL, its int64 count and int8 type); a quantisation flag
(uint8) and the input matrix (``rows, cols`` int64, float32 rows: ``nwords`` word rows, then
``bucket`` n-gram rows); a flag and the output matrix (``nwords`` rows). Quantised (``.ftz``)
and pruned models are refused with a clear error.
"""

from __future__ import annotations

import dataclasses
import os
import struct

import numpy as np

from embeddings_jax.train.atomic import atomic_write

MAGIC, VERSION = 793712314, 12
LOSSES = {1: "hs", 2: "ns", 3: "softmax", 4: "ova"}
MODELS = {1: "cbow", 2: "sg", 3: "sup"}
_ARGS = ("dim", "ws", "epoch", "minCount", "neg", "wordNgrams", "loss", "model", "bucket", "minn",
         "maxn", "lrUpdateRate")  # fmt: skip


@dataclasses.dataclass
class FacebookModel:
    """A fastText model's contents: ``args`` (fastText's names; ``loss``/``model`` as names),
    ``words``/``counts`` (the word entries, most frequent first), ``ntokens`` (corpus tokens
    read), ``input [nwords + bucket, dim]`` and ``output [nwords, dim]`` float32."""

    args: dict
    words: list[str]
    counts: np.ndarray
    ntokens: int
    input: np.ndarray
    output: np.ndarray


def _read(f, fmt: str, path):
    size = struct.calcsize(fmt)
    data = f.read(size)
    if len(data) != size:
        raise ValueError(f"{path}: truncated fastText model file")
    return struct.unpack(fmt, data)


def _read_matrix(f, path) -> np.ndarray:
    rows, cols = _read(f, "<qq", path)
    if rows < 0 or cols < 0:
        raise ValueError(f"{path}: corrupt matrix shape ({rows}, {cols})")
    data = np.fromfile(f, "<f4", rows * cols)
    if data.size != rows * cols:
        raise ValueError(f"{path}: truncated fastText model file (matrix of {rows} x {cols})")
    return data.reshape(rows, cols)


def read_facebook_bin(path: str | os.PathLike) -> FacebookModel:
    """Reads a ``.bin`` written by the ``fasttext`` package (``save_model``) or :func:`write_facebook_bin`."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no fastText model at {path}")
    with open(path, "rb") as f:
        magic, version = _read(f, "<ii", path)
        if magic != MAGIC:
            raise ValueError(f"{path} is not a fastText .bin model (magic {magic}, expected {MAGIC}); "
                             "a .vec text file loads with KeyedVectors.load_word2vec_format")
        if version > VERSION:
            raise ValueError(f"{path}: fastText file version {version} is newer than {VERSION}")
        args = dict(zip(_ARGS, _read(f, "<12i", path)))
        (args["t"],) = _read(f, "<d", path)
        args["loss"], args["model"] = LOSSES.get(args["loss"]), MODELS.get(args["model"])
        size, nwords, nlabels = _read(f, "<3i", path)
        ntokens, pruneidx_size = _read(f, "<qq", path)
        words, counts, types = [], [], []
        for _ in range(size):
            raw = bytearray()
            while (c := f.read(1)) != b"\x00":
                if not c:
                    raise ValueError(f"{path}: truncated fastText dictionary")
                raw += c
            count, kind = _read(f, "<qb", path)
            words.append(raw.decode("utf-8", errors="replace"))
            counts.append(count)
            types.append(kind)
        if pruneidx_size > 0:
            raise ValueError(f"{path} is a pruned (quantised) fastText model; only full .bin models load")
        (quant_input,) = _read(f, "<?", path)
        if quant_input:
            raise ValueError(f"{path} is a quantised fastText model (.ftz); only full .bin models load")
        inp = _read_matrix(f, path)
        (quant_output,) = _read(f, "<?", path)
        if quant_output:
            raise ValueError(f"{path} has a quantised output matrix; only full .bin models load")
        out = _read_matrix(f, path)
    if nlabels or any(types):
        raise ValueError(f"{path} is a supervised fastText classifier ({nlabels} labels), not word vectors")
    if nwords != size or inp.shape[0] != nwords + args["bucket"] or inp.shape[1] != args["dim"]:
        raise ValueError(f"{path}: input matrix {inp.shape} does not match {nwords} words + "
                         f"{args['bucket']} buckets of dim {args['dim']}")
    return FacebookModel(args, words, np.asarray(counts, np.int64), int(ntokens), inp, out)


def write_facebook_bin(path: str | os.PathLike, model: FacebookModel) -> None:
    """Writes ``model`` as a ``.bin`` the ``fasttext`` package loads (``fasttext.load_model``).
    Atomic: a temporary file renamed over ``path``."""
    a = model.args
    codes = {"loss": {v: k for k, v in LOSSES.items()}, "model": {v: k for k, v in MODELS.items()}}
    head = struct.pack("<ii", MAGIC, VERSION)
    head += struct.pack("<12i", *(codes[k][a[k]] if k in codes else int(a[k]) for k in _ARGS))
    head += struct.pack("<d", float(a["t"]))
    v = len(model.words)
    head += struct.pack("<3iqq", v, v, 0, int(model.ntokens), -1)
    entries = b"".join(w.encode("utf-8") + b"\x00" + struct.pack("<qb", int(c), 0)
                       for w, c in zip(model.words, model.counts.tolist()))  # fmt: skip
    with atomic_write(path, "wb") as f:
        f.write(head + entries)
        for matrix in (model.input, model.output):
            m = np.ascontiguousarray(matrix, "<f4")
            f.write(struct.pack("<?qq", False, *m.shape))
            f.write(memoryview(m).cast("B"))
