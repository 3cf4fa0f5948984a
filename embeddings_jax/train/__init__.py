"""Training infrastructure shared by every model: state, sharding, loop, checkpoints, metrics."""

from embeddings_jax.train.checkpoint import Checkpointer, abstract_like
from embeddings_jax.train.logging import MetricsWriter, progress, read_metrics
from embeddings_jax.train.loop import LoopConfig, NonFiniteLossError, make_train_step, train
from embeddings_jax.train.sharding import batch_sharding, make_mesh, replicated, shard_batch
from embeddings_jax.train.state import TrainState, create_train_state

__all__ = [
    "Checkpointer", "LoopConfig", "MetricsWriter", "NonFiniteLossError", "TrainState",
    "abstract_like", "batch_sharding", "create_train_state", "make_mesh", "make_train_step",
    "progress", "read_metrics", "replicated", "shard_batch", "train",
]
