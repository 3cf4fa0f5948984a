"""``RefineIndex``: FAISS IndexRefineFlat, exact re-ranking of any index's candidates."""

from __future__ import annotations

import numpy as np
from jax.sharding import Mesh

from embeddings_jax.index.base import Index, index_classes, pad_results
from embeddings_jax.index.sq8 import rescore


class RefineIndex(Index):
    """Searches ``base`` for ``int(k * k_factor)`` candidates and re-ranks them by exact distances to
    the raw float32 vectors kept here (FAISS IndexRefineFlat), so ``D`` holds exact distances.

    ``base`` must be empty (every vector added goes to both); ids, training, filters, ``remove_ids``,
    ``reset``, ``save`` and ``load`` act on both. ``reconstruct`` and ``range_search`` use the raw
    vectors (range search is exact over all of them). ``k_factor`` (>= 1) may be changed later.
    """

    def __init__(self, base: Index, k_factor: float = 1.0):
        if not isinstance(base, Index):
            raise TypeError(f"base must be an embeddings_jax index, got {type(base).__name__}")
        if base.ntotal:
            raise ValueError(f"RefineIndex needs an empty base index (it has {base.ntotal} vectors): the raw vectors "
                             "are kept from add, so build the RefineIndex first, then add")
        self.base = base  # before Index.__init__: _ids and _trained live on the base
        self.k_factor = k_factor
        self.requires_training = base.requires_training
        trained = base.is_trained
        super().__init__(base.dim, base.metric, mesh=base.mesh, block_size=base.block_size,
                         query_batch=base.query_batch, approx=base.approx)
        self._trained = trained
        self._x = np.zeros((0, self.dim), np.float32)

    @property
    def k_factor(self) -> float:
        return self._k_factor

    @k_factor.setter
    def k_factor(self, value) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
                or not np.isfinite(value) or value < 1:
            raise ValueError(f"k_factor must be a number >= 1 (candidates per result), got {value!r}")
        self._k_factor = float(value)

    # ids and the trained flag are the base's, so positions agree between the two
    @property
    def _ids(self) -> np.ndarray:
        return self.base._ids

    @_ids.setter
    def _ids(self, value) -> None:
        self.base._ids = value

    @property
    def _trained(self) -> bool:
        return self.base._trained

    @_trained.setter
    def _trained(self, value) -> None:
        self.base._trained = value

    def train(self, x) -> None:
        self.base.train(x)

    def add(self, x, ids=None) -> None:
        x_unit, ids = self._prepare_add(x, ids)
        self.base.add(x, ids)
        self._x = np.concatenate([self._x, x_unit])

    def _remove_rows(self, keep) -> None:
        self.base._remove_rows(keep)
        self._x = self._x[keep]

    def _vectors(self, positions):
        return self._x[positions]

    def _search(self, q, k, allowed, params, **options):
        candidates = max(k, int(k * self.k_factor))
        _, pos = self.base._search(q, candidates, allowed, params, **options)
        scores, pos = rescore(q, self._x, pos, self.kernel_metric, min(k, pos.shape[1]))
        return pad_results(scores, pos, k)

    def search(self, q, k: int, *, ids=None, exclude_ids=None, params=None, **options):
        """``Index.search`` with exact distances; ``options`` (e.g. ``nprobe``) go to the base's search."""
        return self._search_filtered(q, k, ids, exclude_ids, params, **options)

    # ---------------------------------------------------------------- persistence
    @classmethod
    def _from_config(cls, config: dict, mesh: Mesh | None) -> RefineIndex:
        spec = config.get("base") if isinstance(config, dict) else None
        if not isinstance(spec, dict) or set(spec) != {"class", "config"} or not isinstance(spec["config"], dict):
            raise ValueError("'base' must hold the base index's 'class' and 'config'")
        klass = index_classes().get(spec["class"]) if isinstance(spec["class"], str) else None
        if klass is None:
            raise ValueError(f"unknown base index class {spec['class']!r}")
        return cls(klass._from_config(spec["config"], mesh), **{k: v for k, v in config.items() if k != "base"})

    def _config(self):
        return {"base": {"class": type(self.base).__name__, "config": self.base._config()},
                "k_factor": self.k_factor}

    def _arrays(self):
        return {"x": self._x, **{f"base.{name}": a for name, a in self.base._arrays().items()}}

    def _array_specs(self, n):
        return {"x": (np.float32, (n, self.dim)),
                **{f"base.{name}": spec for name, spec in self.base._array_specs(n).items()}}

    def _restore(self, arrays):
        self._x = arrays["x"]
        self.base._restore({name[5:]: a for name, a in arrays.items() if name.startswith("base.")})

    def __repr__(self) -> str:
        return f"RefineIndex({self.base!r}, k_factor={self.k_factor})"
