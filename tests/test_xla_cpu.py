"""XLA:CPU compiler options for loops of small operations (ops/xla_cpu.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from embeddings_jax.ops.xla_cpu import barrier, cpu_compiler_options, fusion_barriers
from embeddings_jax.train.sharding import make_mesh


def _scan_of_small_reductions(x, y):
    def body(acc, _):
        return acc + jnp.sum(x * (y + acc[:, None]), -1) * 1e-3, None

    return jax.lax.scan(body, jnp.zeros(x.shape[0]), None, length=4)[0]


def test_options_keep_reductions_out_of_ynnpack_and_change_no_result():
    mesh = make_mesh(jax.devices()[:1])
    opts = cpu_compiler_options(mesh)
    if opts is None:
        pytest.skip("this XLA:CPU has no YNNPACK fusion option")
    x, y = (jax.random.normal(jax.random.key(i), (256, 100)) for i in range(2))
    plain = jax.jit(_scan_of_small_reductions)
    tuned = jax.jit(_scan_of_small_reductions, compiler_options=opts)
    assert "__ynn_fusion" not in tuned.lower(x, y).compile().as_text()
    np.testing.assert_allclose(tuned(x, y), plain(x, y), rtol=1e-5, atol=1e-5)


def test_options_only_for_cpu_meshes():
    opts = cpu_compiler_options(make_mesh(jax.devices()[:1]))
    assert opts is None or set(opts) == {"xla_cpu_experimental_ynn_fusion_type"}
    if jax.default_backend() != "cpu":
        assert cpu_compiler_options(make_mesh(jax.devices())) is None


def test_barrier_only_inside_fusion_barriers():
    def has_barrier():  # a fresh function each time: JAX caches the trace of a function
        return "optimization_barrier" in str(jax.make_jaxpr(lambda x: barrier(x) * 2.0)(1.0))

    assert not has_barrier()
    with fusion_barriers(True):
        assert has_barrier()
        with fusion_barriers(False):
            assert not has_barrier()
        assert has_barrier() and barrier(1.5) == 1.5
    assert not has_barrier()
