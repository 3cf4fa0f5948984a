"""FAISS-style search filters: ``index.search(q, k, params=SearchParameters(sel=IDSelectorBatch(ids)))``.

A selector answers ``is_member(ids) -> bool`` for an array of ids at once (FAISS asks one id at a
time); the index turns the answer into the rows its search may return, inside the scan.
``search(q, k, ids=..., exclude_ids=...)`` is the short form of ``IDSelectorBatch`` / ``IDSelectorNot``.
"""

from __future__ import annotations

import dataclasses

import numpy as np


def id_array(ids, what: str = "ids") -> np.ndarray:
    """``ids`` as a flat int64 array (an empty list of any dtype is accepted)."""
    ids = np.asarray(ids)
    if ids.size and not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"{what} must be integers (the ids given to add), got dtype {ids.dtype}: "
                         f"{ids.reshape(-1)[:5].tolist()}")
    return ids.astype(np.int64).reshape(-1)


class IDSelector:
    """Base selector: ``is_member(ids [n]) -> bool [n]``."""

    def is_member(self, ids) -> np.ndarray:
        raise NotImplementedError


class IDSelectorBatch(IDSelector):
    """The ids in a given list (FAISS IDSelectorBatch)."""

    def __init__(self, ids):
        self.ids = np.unique(id_array(ids))

    def is_member(self, ids):
        return np.isin(np.asarray(ids, np.int64), self.ids)


class IDSelectorRange(IDSelector):
    """Ids in ``[imin, imax)`` (FAISS IDSelectorRange)."""

    def __init__(self, imin: int, imax: int):
        self.imin, self.imax = int(imin), int(imax)

    def is_member(self, ids):
        ids = np.asarray(ids, np.int64)
        return (ids >= self.imin) & (ids < self.imax)


class IDSelectorNot(IDSelector):
    """Every id the wrapped selector rejects (FAISS IDSelectorNot)."""

    def __init__(self, sel: IDSelector):
        self.sel = check_selector(sel)

    def is_member(self, ids):
        return ~self.sel.is_member(ids)


@dataclasses.dataclass
class SearchParameters:
    """Per-call search options (FAISS SearchParameters): ``sel`` restricts the ids returned."""

    sel: IDSelector | None = None


@dataclasses.dataclass
class SearchParametersIVF(SearchParameters):
    """``SearchParameters`` plus the cells an IVF index scans (FAISS SearchParametersIVF)."""

    nprobe: int | None = None


def check_selector(sel) -> IDSelector:
    if not isinstance(sel, IDSelector):
        raise TypeError(f"sel must be an embeddings_jax.index IDSelector (IDSelectorBatch, IDSelectorRange, "
                         f"IDSelectorNot), got {type(sel).__name__}; FAISS's own selector objects are not read")
    return sel
