"""The one seam for XLA:CPU tuning of jitted loops of small operations (the word2vec step).

Two tricks, both for CPU meshes only, so a GPU or TPU reader can skip this module:

* :func:`cpu_compiler_options`: YNNPACK for single matrix products only. Recent XLA:CPU hands
  reductions and elementwise fusions to YNNPACK by default, which costs far more than it saves on
  the small operands of a loop body. Asked for per compiled function, so nothing else in the
  process changes, and only where this XLA knows the option.
* :func:`barrier`: an ``optimization_barrier`` at a named point of the math, active only while a
  step is traced inside :func:`fusion_barriers` (``True``). It asks XLA:CPU to materialise a value
  once instead of recomputing it inside every fusion that reads it; the math is unchanged.

:func:`tuned` says whether a mesh gets these tricks. The results notes (``experiments/results``)
give their measured effect.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools

import jax
import jax.numpy as jnp
from jax.sharding import Mesh

_LOOP_FRIENDLY = {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"}
_BARRIERS = contextvars.ContextVar("embeddings_jax_xla_cpu_barriers", default=False)


def tuned(mesh: Mesh) -> bool:
    """Whether a step on ``mesh`` gets the XLA:CPU tricks: its devices are CPUs."""
    return mesh.devices.flat[0].platform == "cpu"


@functools.cache
def _supported_on(device) -> bool:
    try:
        x = jax.device_put(jnp.zeros(()), device)
        jax.jit(lambda a: a + 1, compiler_options=_LOOP_FRIENDLY).lower(x).compile()
    except jax.errors.JaxRuntimeError:  # an XLA that does not know the option (or its value)
        return False
    return True


def cpu_compiler_options(mesh: Mesh) -> dict | None:
    """Options for a jitted loop of small operations on ``mesh``: YNNPACK for matrix products
    only, when the devices are CPUs and this XLA has the option; otherwise ``None``."""
    if not tuned(mesh) or not _supported_on(mesh.devices.flat[0]):
        return None
    return dict(_LOOP_FRIENDLY)


@contextlib.contextmanager
def fusion_barriers(enabled: bool):
    """Makes :func:`barrier` an ``optimization_barrier`` (``enabled``) or the identity while
    a function is traced inside this block. JAX caches the trace of a function, so enter it
    inside the traced function (as the word2vec step does), not around a call of a jitted one."""
    token = _BARRIERS.set(bool(enabled))
    try:
        yield
    finally:
        _BARRIERS.reset(token)


def barrier(x):
    """``x`` (any pytree), behind an ``optimization_barrier`` inside ``fusion_barriers(True)``."""
    return jax.lax.optimization_barrier(x) if _BARRIERS.get() else x


# Reads per lookup-table entry below which building the tables block by block, inside a loop, beats
# one program-level lookup fusion on XLA:CPU (which spreads a fusion over the cores but runs a loop
# body on one core): with one device per core every core runs its own loop, so the loop wins longer.
# Chosen on MNIST IVF-PQ (benchmarks/search_vs_faiss.py).
_CACHE_LOOP_MAX_READS = {"one_device": 2.5, "device_per_core": 12.0}


def tables_in_cache_loop(reads_per_entry: float, devices) -> bool:
    """Whether an IVF-PQ scan on ``devices`` should build its lookup tables block by block inside a
    loop (tables read while in cache) rather than all at once; off CPU, always the plain all-at-once path.
    ``None`` in ``devices`` stands for JAX's default device."""
    devices = list(devices)
    if (devices[0] or jax.devices()[0]).platform != "cpu":
        return False
    limit = _CACHE_LOOP_MAX_READS["one_device" if len(devices) == 1 else "device_per_core"]
    return reads_per_entry < limit
