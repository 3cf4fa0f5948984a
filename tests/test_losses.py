"""Contrastive losses: definitions, blockwise and sharded parity (value and gradient), memory, bad input."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from embeddings_jax.ops import losses

B, D = 40, 16  # 40 = 8 devices x 5 rows; block 16 leaves an uneven last block of 8


def _pairs(b=B, d=D, seed=0):
    k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
    x = losses.l2_normalize(jax.random.normal(k1, (b, d)))
    y = losses.l2_normalize(x + 0.7 * jax.random.normal(k2, (b, d)))
    log_q = jnp.log(jax.random.uniform(k3, (b,), minval=0.01, maxval=0.5))
    return x, y, log_q


X, Y, LOG_Q = _pairs()

# name -> loss(x, y, scale, bias, **form); every loss is differentiated in x, y, scale and bias.
LOSSES = {
    "in_batch": lambda x, y, s, b, **kw: losses.in_batch_softmax_loss(x, y, temperature=1 / s, **kw),
    "in_batch_logq": lambda x, y, s, b, **kw: losses.in_batch_softmax_loss(
        x, y, temperature=1 / s, log_q=LOG_Q, **kw
    ),
    "clip": lambda x, y, s, b, **kw: losses.clip_loss(x, y, scale=s, **kw),
    "siglip": lambda x, y, s, b, **kw: losses.siglip_loss(x, y, scale=s, bias=b, **kw),
}


def _value_and_grads(name, **form):
    fn = jax.jit(jax.value_and_grad(lambda *a: LOSSES[name](*a, **form), argnums=(0, 1, 2, 3)))
    return fn(X, Y, 10.0, -3.0)


@functools.cache
def _reference(name):
    return _value_and_grads(name)


def _assert_close(got, want, rtol=1e-5):
    (v, grads), (v0, grads0) = got, want
    np.testing.assert_allclose(v, v0, rtol=rtol)
    for g, g0 in zip(grads, grads0):
        # relative to the largest entry: entries near zero carry no relative information
        err = float(jnp.max(jnp.abs(g - g0))) / max(float(jnp.max(jnp.abs(g0))), 1e-30)
        assert err <= rtol, err


@pytest.fixture(scope="module")
def mesh():
    return Mesh(np.array(jax.devices()), ("data",))


# ---------------------------------------------------------------------------------------------------- definitions


def test_in_batch_softmax_matches_cross_entropy_with_log_q():
    s = 10.0
    logits = s * np.asarray(X) @ np.asarray(Y).T - np.asarray(LOG_Q)[None, :]
    logp = logits - np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1, keepdims=True)) - logits.max(1, keepdims=True)
    want = -np.mean(np.diag(logp))
    got = losses.in_batch_softmax_loss(X, Y, temperature=1 / s, log_q=LOG_Q)
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_clip_is_mean_of_both_directions():
    s = 7.0
    i2t = losses.in_batch_softmax_loss(X, Y, temperature=1 / s)
    t2i = losses.in_batch_softmax_loss(Y, X, temperature=1 / s)
    np.testing.assert_allclose(losses.clip_loss(X, Y, scale=s), (i2t + t2i) / 2, rtol=1e-6)


def test_siglip_matches_pairwise_definition():
    s, b = 10.0, -3.0
    logits = s * np.asarray(X, np.float64) @ np.asarray(Y, np.float64).T + b
    z = 2 * np.eye(B) - 1
    want = np.sum(np.log1p(np.exp(-z * logits))) / B
    np.testing.assert_allclose(losses.siglip_loss(X, Y, scale=s, bias=b), want, rtol=1e-5)


def test_perfect_pairs_give_low_loss():
    e = losses.l2_normalize(jnp.eye(8))
    assert losses.clip_loss(e, e, scale=100.0) < 1e-6
    assert losses.in_batch_softmax_loss(e, e, temperature=0.01) < 1e-6


# ---------------------------------------------------------------------------------------------------- parity


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("block", [16, 64])
def test_blockwise_equals_reference(name, block):
    _assert_close(_value_and_grads(name, block_size=block), _reference(name))


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("block", [None, 2])
def test_shard_map_equals_reference_on_8_devices(name, block, mesh):
    _assert_close(_value_and_grads(name, mesh=mesh, block_size=block), _reference(name))


@pytest.mark.parametrize("name,block", [("in_batch_logq", 16), ("clip", None), ("clip", 16), ("siglip", 16)])
def test_global_view_under_jit_with_sharded_inputs(name, block, mesh):
    shard = NamedSharding(mesh, P("data"))
    x, y = jax.device_put(X, shard), jax.device_put(Y, shard)
    fn = jax.jit(jax.value_and_grad(lambda *a: LOSSES[name](*a, block_size=block), argnums=(0, 1, 2, 3)))
    v, grads = fn(x, y, 10.0, -3.0)
    _assert_close((v, grads), _reference(name))


def test_shard_map_inside_jit_with_a_learnable_scale(mesh):
    """The train-step pattern: parameters replicated, batch sharded, gradient of the scale not scaled by 8."""
    shard = NamedSharding(mesh, P("data"))

    @jax.jit
    def grads(log_scale, x, y):
        return jax.grad(lambda t: losses.clip_loss(x, y, scale=jnp.exp(t), mesh=mesh, block_size=4))(log_scale)

    want = jax.grad(lambda t: losses.clip_loss(X, Y, scale=jnp.exp(t)))(2.0)
    np.testing.assert_allclose(grads(2.0, jax.device_put(X, shard), jax.device_put(Y, shard)), want, rtol=1e-5)


def test_blockwise_never_materializes_b_by_b():
    b, d, block = 4096, 8, 128
    x, y, _ = _pairs(b, d)

    def temp_bytes(**form):
        fn = jax.jit(jax.value_and_grad(lambda x, y: losses.clip_loss(x, y, scale=10.0, **form), argnums=(0, 1)))
        return fn.lower(x, y).compile().memory_analysis().temp_size_in_bytes

    assert temp_bytes() > b * b * 4  # the reference holds the logits
    assert temp_bytes(block_size=block) < 8 * b * block * 4  # a few tiles of [block, b]


# ---------------------------------------------------------------------------------------------------- bad input


def test_mismatched_batch_sizes():
    with pytest.raises(ValueError, match="mismatched batch sizes"):
        losses.clip_loss(X, Y[:-1], scale=1.0)
    with pytest.raises(ValueError, match="mismatched embedding sizes"):
        losses.siglip_loss(X, Y[:, :-1], scale=1.0)
    with pytest.raises(ValueError, match="log_q"):
        losses.in_batch_softmax_loss(X, Y, log_q=LOG_Q[:-1])


def test_zero_vectors():
    with pytest.raises(ValueError, match="all-zero row"):
        losses.in_batch_softmax_loss(X.at[3].set(0.0), Y)
    with pytest.raises(ValueError, match="all-zero"):
        losses.l2_normalize(jnp.zeros((2, 3)))


def test_batch_not_divisible_by_device_count(mesh):
    with pytest.raises(ValueError, match="not divisible by the 8 devices"):
        losses.clip_loss(X[:36], Y[:36], scale=1.0, mesh=mesh)


def test_bad_shapes_and_block():
    with pytest.raises(ValueError, match=r"\[batch, dim\]"):
        losses.clip_loss(X[0], Y[0], scale=1.0)
    with pytest.raises(ValueError, match="block_size"):
        losses.clip_loss(X, Y, scale=1.0, block_size=0)
    with pytest.raises(ValueError, match="temperature must be positive"):
        losses.in_batch_softmax_loss(X, Y, temperature=0.0)
