"""Deterministic mini-batches: the batch of step ``s`` depends only on ``(seed, s)``.

That makes training resumable bit-for-bit: a run restarted from the checkpoint of step ``s``
sees exactly the batches the uninterrupted run would have seen.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np


def epoch_batches(
    arrays: dict[str, np.ndarray], batch_size: int, seed: int, *, process_index: int = 0,
    process_count: int = 1,
) -> tuple[Callable[[int], dict[str, np.ndarray]], int]:
    """Returns ``(batch_fn, steps_per_epoch)`` for shuffled, full batches (remainder dropped).

    Epoch ``e`` visits the examples in the order ``default_rng([seed, e]).permutation(n)``;
    ``batch_size`` is the global batch size. By default ``batch_fn(step)`` is the whole batch of
    ``step``. With ``process_count > 1`` (pass ``jax.process_index(), jax.process_count()``) it is
    only rows ``[p * b, (p + 1) * b)`` of it, ``b = batch_size // process_count``: each process reads
    only its own examples, and ``batch_fn.process_shard = (p, P)`` tells ``train.loop`` so.
    """
    sizes = {len(v) for v in arrays.values()}
    if len(sizes) != 1:
        raise ValueError(f"arrays disagree on the number of examples: {sorted(sizes)}")
    n = sizes.pop()
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    if n < batch_size:
        raise ValueError(f"only {n} examples for a batch size of {batch_size}")
    if not 0 <= process_index < process_count:
        raise ValueError(f"process_index must lie in [0, process_count={process_count}), got {process_index}")
    if batch_size % process_count:
        raise ValueError(
            f"the global batch size {batch_size} does not split over {process_count} processes; "
            f"choose a multiple of {process_count}"
        )
    steps_per_epoch = n // batch_size
    local = batch_size // process_count
    first = process_index * local

    @functools.lru_cache(maxsize=2)
    def permutation(epoch: int) -> np.ndarray:
        return np.random.default_rng([seed, epoch]).permutation(n)

    def batch_fn(step: int) -> dict[str, np.ndarray]:
        epoch, i = divmod(step, steps_per_epoch)
        idx = permutation(epoch)[i * batch_size + first : i * batch_size + first + local]
        return {k: v[idx] for k, v in arrays.items()}

    batch_fn.process_shard = (process_index, process_count)
    return batch_fn, steps_per_epoch
