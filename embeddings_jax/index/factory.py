"""``index_factory(d, "IVF512,PQ16,RFlat")``: FAISS's factory strings for the indexes this package has.

A description is comma-separated parts, as in FAISS (exact spelling, no spaces)::

    [IDMap | IDMap2 ,]  main  [, RFlat | , Refine(Flat)]

    main:  Flat | SQ8 | PQ<M> | PQ<M>x8 | IVF<nlist>,Flat | IVF<nlist>,PQ<M>[x8] | Binary | LSH[<nbits>][r]

``IDMap`` / ``IDMap2`` are accepted and change nothing (every index here stores ids and reconstructs).
``Binary`` is this package's ``BinaryIndex`` (sign codes, exact re-scoring), not a FAISS string.
``LSH<nbits>`` is FAISS's IndexLSH (``nbits`` defaults to ``d``): the signs of the first ``nbits``
coordinates; ``r`` projects on random directions first (Gaussian here, orthonormal in FAISS). FAISS's
trained thresholds (``t``) are not implemented. Hash tables and probes come as ``num_tables=`` /
``probes=`` keyword arguments.
"""

from __future__ import annotations

import re

import numpy as np

from embeddings_jax.index.base import Index, check_metric
from embeddings_jax.index.flat import FlatIndex
from embeddings_jax.index.ivf import IVFIndex, IVFPQIndex
from embeddings_jax.index.lsh import LSHIndex
from embeddings_jax.index.pq import BinaryIndex, PQIndex
from embeddings_jax.index.refine import RefineIndex
from embeddings_jax.index.sq8 import SQ8Index

# faiss.METRIC_INNER_PRODUCT and faiss.METRIC_L2
FAISS_METRICS = {0: "ip", 1: "l2"}

ACCEPTED = ("Flat", "SQ8", "PQ<M>", "PQ<M>x8", "IVF<nlist>,Flat", "IVF<nlist>,PQ<M>", "IVF<nlist>,PQ<M>x8",
            "Binary", "LSH[<nbits>][r]", "with an optional 'IDMap,' prefix and ',RFlat' or ',Refine(Flat)' suffix")
_PQ = re.compile(r"PQ(\d+)(?:x(\d+))?")
_IVF = re.compile(r"IVF(\d+)")
_LSH = re.compile(r"LSH(\d*)(r?)(t?)")


def _split(description: str) -> list[str]:
    """Comma-separated parts, commas inside parentheses kept (``Refine(IVF8,Flat)`` is one part)."""
    parts, depth, start = [], 0, 0
    for i, c in enumerate(description):
        depth += (c == "(") - (c == ")")
        if c == "," and depth == 0:
            parts.append(description[start:i])
            start = i + 1
    return parts + [description[start:]]


def _metric(metric) -> str:
    if isinstance(metric, (int, np.integer)) and not isinstance(metric, bool):
        if metric not in FAISS_METRICS:
            raise ValueError(f"unknown FAISS metric {metric}: only METRIC_INNER_PRODUCT (0) and METRIC_L2 (1) "
                             "are supported; or pass 'l2', 'ip' or 'cosine'")
        return FAISS_METRICS[int(metric)]
    if not isinstance(metric, str):
        raise TypeError(f"metric must be 'l2', 'ip', 'cosine' or faiss.METRIC_L2 / METRIC_INNER_PRODUCT, got {metric!r}")
    return check_metric(metric)


def index_factory(d: int, description: str, metric="l2", **kwargs) -> Index:
    """Builds the index a FAISS factory string describes (see the module docs for the grammar).

    Args:
      d: vector dimension.
      description: e.g. ``"Flat"``, ``"PQ16"``, ``"IVF512,PQ16,Refine(Flat)"``.
      metric: ``"l2"``, ``"ip"``, ``"cosine"``, or FAISS's ``METRIC_L2`` (1) / ``METRIC_INNER_PRODUCT`` (0).
      kwargs: passed to the main index's constructor (``mesh``, ``nprobe``, ``seed``, ...).
    Raises:
      ValueError naming the part of ``description`` that is not understood and listing what is.
    """
    metric = _metric(metric)
    if not isinstance(description, str) or not description:
        raise ValueError(f"description must be a non-empty string such as 'IVF512,PQ16', got {description!r}")
    parts = _split(description)

    def bad(part: str, why: str = "is not understood") -> ValueError:
        return ValueError(f"index_factory({description!r}): part {part!r} {why}. Accepted: {', '.join(ACCEPTED)}")

    if parts[0] in ("IDMap", "IDMap2"):
        parts = parts[1:]
    refine = bool(parts) and parts[-1] in ("RFlat", "Refine(Flat)")
    if refine:
        if len(parts) == 1:
            raise bad(parts[0], "needs an index before it, e.g. 'PQ16,RFlat'")
        parts = parts[:-1]
    elif parts and parts[-1].startswith(("Refine", "RFlat")):
        raise bad(parts[-1], "is not supported: only Refine(Flat) / RFlat (exact re-ranking) is implemented")
    if not parts or not all(parts):
        raise bad(description, "has an empty part or no index part")

    def built(klass, *args, part: str, **extra):
        try:
            return klass(d, metric, *args, **extra, **kwargs)
        except ValueError as e:
            raise bad(part, f"does not fit: {e}") from None

    def pq_m(part: str) -> int:
        match = _PQ.fullmatch(part)
        if match is None:
            raise bad(part)
        if match.group(2) is not None and int(match.group(2)) != 8:
            raise bad(part, f"asks for {match.group(2)}-bit codes; only 8-bit PQ codes are implemented "
                      f"(PQ{match.group(1)} or PQ{match.group(1)}x8)")
        return int(match.group(1))

    head = parts[0]
    ivf = _IVF.fullmatch(head)
    if ivf is not None:
        if len(parts) != 2:
            raise bad(description, "needs exactly one encoding after IVF<nlist>: Flat or PQ<M>")
        nlist, codes = int(ivf.group(1)), parts[1]
        if codes == "Flat":
            index = built(IVFIndex, nlist, part=description)
        elif codes.startswith("PQ"):
            index = built(IVFPQIndex, nlist, pq_m(codes), part=description)
        elif codes.startswith("SQ"):
            raise bad(codes, "after IVF is not implemented (no IVF scalar-quantizer index): use "
                      f"'IVF{nlist},Flat', 'IVF{nlist},PQ<M>' or a flat 'SQ8'")
        else:
            raise bad(codes, "is not an IVF encoding (Flat or PQ<M>)")
    elif head.startswith("IVF"):
        raise bad(head, "is not a plain inverted file: only IVF<nlist> (k-means coarse quantizer) is implemented")
    elif len(parts) != 1:
        raise bad(parts[1], f"cannot follow {head!r}")
    elif head == "Flat":
        index = built(FlatIndex, part=head)
    elif head == "SQ8":
        index = built(SQ8Index, part=head)
    elif head.startswith("SQ"):
        raise bad(head, "is not implemented: only 8-bit scalar quantization (SQ8)")
    elif head.startswith("PQ"):
        index = built(PQIndex, m=pq_m(head), part=head)
    elif head == "Binary":
        index = built(BinaryIndex, part=head)
    elif (lsh := _LSH.fullmatch(head)) is not None:
        if lsh.group(3):
            raise bad(head, "asks for trained thresholds, which are not implemented: use "
                      f"'LSH{lsh.group(1)}{lsh.group(2)}' (thresholds at zero)")
        index = built(LSHIndex, part=head, nbits=int(lsh.group(1)) if lsh.group(1) else d, rotate=bool(lsh.group(2)))
    else:
        raise bad(head)
    return RefineIndex(index) if refine else index
