"""Training infrastructure shared by every model: state, sharding, loop, checkpoints, metrics.

The names below load their module on first use, so that a light module of this package
(``train.atomic``, used by the data registry and the indexes) does not import Orbax.
"""

import importlib

_EXPORTS = {
    "Checkpointer": "checkpoint", "CheckpointMismatchError": "checkpoint", "abstract_like": "checkpoint",
    "MetricsWriter": "logging", "progress": "logging", "read_metrics": "logging",
    "LoopConfig": "loop", "NonFiniteLossError": "loop", "make_train_step": "loop", "train": "loop",
    "batch_sharding": "sharding", "make_mesh": "sharding", "replicated": "sharding", "shard_batch": "sharding",
    "TrainState": "state", "create_train_state": "state",
    "atomic_write": "atomic", "atomic_directory": "atomic", "resolve_directory": "atomic",
}
__all__ = [
    "CheckpointMismatchError", "Checkpointer", "LoopConfig", "MetricsWriter", "NonFiniteLossError", "TrainState",
    "abstract_like", "atomic_directory", "atomic_write", "batch_sharding", "create_train_state", "make_mesh",
    "make_train_step", "progress", "read_metrics", "replicated", "resolve_directory", "shard_batch", "train",
]


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
