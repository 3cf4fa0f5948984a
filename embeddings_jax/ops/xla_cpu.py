"""XLA:CPU compiler options for programs made of many small operations inside a loop.

Recent XLA:CPU hands reductions and elementwise fusions to YNNPACK by default. For the
``[256, 100]`` operands of a word2vec step inside a ``lax.scan`` that costs far more than it
saves: a multiply-and-reduce of 25,600 products took about 50 us as a YNNPACK fusion, against a
few microseconds as XLA's own loop fusion. Keeping YNNPACK for single matrix products only
made the skip-gram step 2.3x faster on a 2-core CPU (PTB + Brown, 256-token chunks).

The option is asked for per compiled function (``jax.jit(..., compiler_options=...)``), so it
changes nothing else in the process, and only where this XLA knows it: an XLA without it (or a
GPU) compiles with its defaults.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.sharding import Mesh

_LOOP_FRIENDLY = {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"}


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
    device = mesh.devices.flat[0]
    if device.platform != "cpu" or not _supported_on(device):
        return None
    return dict(_LOOP_FRIENDLY)
