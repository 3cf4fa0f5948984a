"""Deterministic mini-batches: the batch of step ``s`` depends only on ``(seed, s)``.

That makes training resumable bit-for-bit: a run restarted from the checkpoint of step ``s``
sees exactly the batches the uninterrupted run would have seen.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np


def epoch_batches(
    arrays: dict[str, np.ndarray], batch_size: int, seed: int
) -> tuple[Callable[[int], dict[str, np.ndarray]], int]:
    """Returns ``(batch_fn, steps_per_epoch)`` for shuffled, full batches (remainder dropped).

    Epoch ``e`` visits the examples in the order ``default_rng([seed, e]).permutation(n)``.
    """
    sizes = {len(v) for v in arrays.values()}
    if len(sizes) != 1:
        raise ValueError(f"arrays disagree on the number of examples: {sorted(sizes)}")
    n = sizes.pop()
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    if n < batch_size:
        raise ValueError(f"only {n} examples for a batch size of {batch_size}")
    steps_per_epoch = n // batch_size

    @functools.lru_cache(maxsize=2)
    def permutation(epoch: int) -> np.ndarray:
        return np.random.default_rng([seed, epoch]).permutation(n)

    def batch_fn(step: int) -> dict[str, np.ndarray]:
        epoch, i = divmod(step, steps_per_epoch)
        idx = permutation(epoch)[i * batch_size : (i + 1) * batch_size]
        return {k: v[idx] for k, v in arrays.items()}

    return batch_fn, steps_per_epoch
