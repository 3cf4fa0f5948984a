"""Reading gensim's native ``.kv`` / model pickles without gensim: a restricted unpickler that
builds numpy arrays and plain containers only; every other class the file names becomes an inert
`Stub` holding its state, so nothing in the file runs."""

from __future__ import annotations

import importlib
import pickle

import numpy as np


class Stub:
    """Inert stand-in for a class a gensim pickle names: it records its state and runs nothing."""

    gensim_name = "?"

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        if isinstance(state, tuple) and len(state) == 2:  # (dict, slots)
            state = {**(state[0] or {}), **(state[1] or {})}
        if isinstance(state, dict):
            self.__dict__.update(state)

    def __setitem__(self, key, value):  # a dict subclass's items (none in a KeyedVectors)
        pass

    def append(self, value):  # a list subclass's items
        pass

    def extend(self, values):
        pass


_STUBS: dict[str, type] = {}
_NUMPY_CORE = "numpy._core" if int(np.__version__.split(".")[0]) >= 2 else "numpy.core"
_NUMPY_GLOBALS = {
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
}  # fmt: skip
_SAFE_GLOBALS = {
    ("builtins", n) for n in ("object", "set", "frozenset", "list", "dict", "tuple", "int", "float",
                              "complex", "str", "bytes", "bytearray", "bool", "slice", "range")
} | {("collections", "OrderedDict"), ("collections", "defaultdict"), ("copyreg", "_reconstructor"),
     ("_codecs", "encode")}  # fmt: skip


class GensimUnpickler(pickle.Unpickler):
    """Builds numpy arrays and plain containers; every other class or function the pickle names
    becomes an inert ``Stub`` (so nothing from the file runs, and gensim need not be installed)."""

    def __init__(self, f):
        super().__init__(f, encoding="latin1")  # as gensim: Python 2 pickles hold latin-1 strings

    def find_class(self, module, name):
        legacy = module.replace("numpy._core", "numpy.core")
        if (legacy, name) in _NUMPY_GLOBALS:
            return getattr(importlib.import_module(legacy.replace("numpy.core", _NUMPY_CORE)), name)
        if (module, name) in _SAFE_GLOBALS:
            return super().find_class(module, name)
        full = f"{module}.{name}"
        if full not in _STUBS:
            _STUBS[full] = type(name, (Stub,), {"gensim_name": full, "__module__": __name__})
        return _STUBS[full]

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("persistent ids are not part of a gensim save")
