"""Device mesh and data-parallel placement.

The mesh has one axis, ``"data"``: batches are split along it and parameters are replicated.
Multi-host runs use JAX's own runtime (``jax.distributed.initialize``); each process passes its
local slice of the batch and ``shard_batch`` assembles the global array.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

DATA_AXIS = "data"


def make_mesh(num_devices: int | None = None) -> Mesh:
    """A 1-D ``("data",)`` mesh over the first ``num_devices`` devices (all by default)."""
    devices = jax.devices()
    n = len(devices) if num_devices is None else num_devices
    if not 1 <= n <= len(devices):
        raise ValueError(f"asked for {num_devices} devices but only {len(devices)} are available")
    return Mesh(np.asarray(devices[:n]), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (batch) axis split over ``"data"``, other axes whole."""
    return NamedSharding(mesh, P(DATA_AXIS))


def check_batch_size(batch_size: int, mesh: Mesh) -> None:
    n = mesh.shape[DATA_AXIS]
    if batch_size % n:
        raise ValueError(
            f"batch size {batch_size} is not divisible by the {n} devices of the mesh; "
            f"choose a multiple of {n} (e.g. {max(n, batch_size // n * n)})"
        )


def shard_batch(batch: Any, mesh: Mesh) -> Any:
    """Places a host batch (pytree of arrays with a shared leading axis) on the mesh.

    Single process: ``batch`` is the global batch. Multi-process: it is this process's slice and
    the global batch is the concatenation over processes in process order.
    """
    leaves = jax.tree.leaves(batch)
    if not leaves:
        raise ValueError("empty batch")
    sizes = {np.shape(x)[0] for x in leaves}
    if len(sizes) != 1:
        raise ValueError(f"batch arrays disagree on the batch size: {sorted(sizes)}")
    sharding = batch_sharding(mesh)
    if jax.process_count() == 1:
        check_batch_size(sizes.pop(), mesh)
        return jax.device_put(batch, sharding)
    local = sizes.pop()
    check_batch_size(local * jax.process_count(), mesh)
    return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, x), batch)
