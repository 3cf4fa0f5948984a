"""Device mesh and data-parallel placement.

The mesh has one axis, ``"data"``: batches are split along it and parameters are replicated.
Multi-host runs use JAX's own runtime (``jax.distributed.initialize``): each process holds the rows
of every global batch that its own devices compute on (``process_rows``; with ``make_mesh()``,
process ``p`` of ``P`` holds block ``p`` of ``P`` equal blocks), and ``shard_batch`` assembles the
global array from those local rows with ``jax.make_array_from_process_local_data``.
"""

from __future__ import annotations

import itertools
import os
import warnings
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

DATA_AXIS = "data"


def make_mesh(devices: int | Sequence[jax.Device] | None = None) -> Mesh:
    """A 1-D ``("data",)`` mesh: over every device (None), the first ``devices`` (an int), or the
    given device list."""
    if devices is None or isinstance(devices, (int, np.integer)):
        available = jax.devices()
        n = len(available) if devices is None else int(devices)
        if not 1 <= n <= len(available):
            raise ValueError(f"asked for {devices} devices but only {len(available)} are available")
        devices = available[:n]
    devices = list(devices)
    if not devices:
        raise ValueError("a mesh needs at least one device")
    return Mesh(np.asarray(devices), (DATA_AXIS,))


def use_cpu_cores(n: int | None = None) -> bool:
    """Gives JAX's CPU backend ``max(n, os.cpu_count())`` devices, one worker each, if JAX has not
    started yet and no device count was set (``XLA_FLAGS=--xla_force_host_platform_device_count``
    or ``jax_num_cpu_devices``). Returns whether the count was set. Call it right after ``import
    jax``: once any JAX operation has run, the device count is fixed for the process."""
    from jax._src import xla_bridge  # the one public-API gap: has a backend started?

    set_by_user = "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", "")
    if xla_bridge.backends_are_initialized() or set_by_user or jax.config.jax_num_cpu_devices > 0:
        return False
    jax.config.update("jax_num_cpu_devices", max(int(n or 1), os.cpu_count() or 1))
    return True


def worker_devices(workers: int) -> list[jax.Device]:
    """The first ``workers`` devices, one per parallel worker; all of them where fewer exist,
    with a one-line warning that says how to get more on CPU (:func:`use_cpu_cores`)."""
    available = jax.devices()
    if workers > len(available):
        how = ("call embeddings_jax.train.sharding.use_cpu_cores() right after `import jax`"
               if available[0].platform == "cpu" else "this process has no more devices")  # fmt: skip
        warnings.warn(f"workers={workers} but JAX has {len(available)} device(s), so {len(available)} "
                      f"worker(s) train; {how}", stacklevel=3)  # fmt: skip
    return available[:workers]


def host_value(x) -> np.ndarray:
    """A replicated array as numpy, also where it spans other processes' devices (multi-host)."""
    return np.asarray(x if x.is_fully_addressable else x.addressable_data(0))


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


def process_rows(mesh: Mesh, batch_size: int) -> slice | np.ndarray:
    """Rows of a global batch of ``batch_size`` that this process's devices hold, in order: a slice
    (always, for a mesh of devices in process order) or an index array."""
    check_batch_size(batch_size, mesh)
    if jax.process_count() == 1:
        return slice(0, batch_size)
    blocks = sorted({idx[0].indices(batch_size)[:2]
                     for idx in batch_sharding(mesh).addressable_devices_indices_map((batch_size,)).values()})
    if not blocks:
        raise ValueError(f"process {jax.process_index()} has no device in the mesh; build it with make_mesh()")
    if all(a[1] == b[0] for a, b in itertools.pairwise(blocks)):
        return slice(blocks[0][0], blocks[-1][1])
    return np.concatenate([np.arange(start, stop) for start, stop in blocks])


def local_rows(batch: Any, mesh: Mesh) -> Any:
    """This process's rows (``process_rows``) of a global host batch; the batch itself for one process."""
    if jax.process_count() == 1:
        return batch
    rows = process_rows(mesh, batch_size_of(batch))
    return jax.tree.map(lambda x: np.asarray(x)[rows], batch)


def batch_size_of(batch: Any) -> int:
    """The shared leading size of a batch's arrays."""
    leaves = jax.tree.leaves(batch)
    if not leaves:
        raise ValueError("empty batch")
    sizes = {np.shape(x)[0] for x in leaves}
    if len(sizes) != 1:
        raise ValueError(f"batch arrays disagree on the batch size: {sorted(sizes)}")
    return sizes.pop()


def shard_batch(batch: Any, mesh: Mesh) -> Any:
    """Places a host batch (pytree of arrays with a shared leading axis) on the mesh.

    Single process: ``batch`` is the global batch. Multi-process: it is this process's rows
    (``process_rows``, e.g. from ``local_rows``) of a global batch ``process_count`` times larger.
    """
    size = batch_size_of(batch)
    sharding = batch_sharding(mesh)
    if jax.process_count() == 1:
        check_batch_size(size, mesh)
        return jax.device_put(batch, sharding)
    check_batch_size(size * jax.process_count(), mesh)
    return jax.tree.map(lambda x: jax.make_array_from_process_local_data(
        sharding, x, (size * jax.process_count(), *np.shape(x)[1:])), batch)
