"""Similarities against plain numpy: f32, bf16 and int8-with-scales inputs."""

import jax.numpy as jnp
import numpy as np
import pytest

from embeddings_jax.ops import similarity as sim


def np_all(q, x):
    q, x = q.astype(np.float64), x.astype(np.float64)
    dot = q @ x.T
    cos = dot / (np.linalg.norm(q, axis=1)[:, None] * np.linalg.norm(x, axis=1)[None, :])
    euc = np.sqrt(((q[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    return dot, cos, euc


@pytest.fixture(scope="module")
def qx():
    rng = np.random.default_rng(0)
    return rng.standard_normal((6, 16)).astype(np.float32), rng.standard_normal((11, 16)).astype(np.float32)


def test_f32_against_numpy(qx):
    q, x = qx
    dot, cos, euc = np_all(q, x)
    np.testing.assert_allclose(sim.dot(q, x), dot, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(sim.cosine(q, x), cos, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(sim.euclidean(q, x), euc, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(sim.squared_euclidean(q, x), euc ** 2, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(sim.scores(q, x, "l2"), -(euc ** 2), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(sim.scores(q, x, "cosine"), cos, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(sim.scores(q, x, "ip"), dot, rtol=1e-5, atol=1e-5)


def test_euclidean_is_sqrt_of_summed_squares():
    q = np.array([[0.0, 0.0]], np.float32)
    x = np.array([[3.0, 4.0], [1.0, 0.0]], np.float32)
    np.testing.assert_allclose(sim.euclidean(q, x), [[5.0, 1.0]])


def test_cosine_does_not_assume_unit_norm(qx):
    q, x = qx
    np.testing.assert_allclose(sim.cosine(7.0 * q, 0.1 * x), sim.cosine(q, x), rtol=1e-5, atol=1e-6)
    zero = np.zeros((1, 16), np.float32)
    assert np.all(np.asarray(sim.cosine(zero, x)) == 0.0)


def test_bf16_inputs(qx):
    q, x = qx
    qb, xb = jnp.asarray(q, jnp.bfloat16), jnp.asarray(x, jnp.bfloat16)
    ref = np_all(np.asarray(qb, np.float32), np.asarray(xb, np.float32))
    out = sim.dot(qb, xb)
    assert out.dtype == jnp.float32  # accumulated in f32
    np.testing.assert_allclose(out, ref[0], rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(sim.cosine(qb, xb), ref[1], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(sim.euclidean(qb, xb), ref[2], rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("per", ["dimension", "vector"])
def test_int8_with_scales(qx, per):
    q, _ = qx
    rng = np.random.default_rng(1)
    codes = rng.integers(-128, 128, size=(11, 16)).astype(np.int8)
    if per == "dimension":
        scale, offset = rng.uniform(0.01, 0.1, 16).astype(np.float32), rng.standard_normal(16).astype(np.float32)
    else:
        scale, offset = rng.uniform(0.01, 0.1, (11, 1)).astype(np.float32), rng.standard_normal((11, 1)).astype(np.float32)
    x = codes.astype(np.float64) * scale + offset
    dot, cos, euc = np_all(q, x)
    np.testing.assert_allclose(sim.dot(q, codes, scale, offset), dot, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(sim.cosine(q, codes, scale, offset), cos, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(sim.euclidean(q, codes, scale, offset), euc, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(sim.dot(q, codes, scale), q.astype(np.float64) @ (codes * scale).T.astype(np.float64),
                               rtol=1e-5, atol=1e-4)


def test_hamming_against_numpy():
    rng = np.random.default_rng(2)
    a = rng.integers(0, 256, (5, 4), dtype=np.uint8)
    b = rng.integers(0, 256, (7, 4), dtype=np.uint8)
    ref = np.unpackbits(a[:, None, :] ^ b[None, :, :], axis=-1).sum(-1)
    np.testing.assert_array_equal(sim.hamming(a, b), ref)


def test_unknown_metric():
    with pytest.raises(ValueError, match="unknown metric"):
        sim.scores(np.zeros((1, 2)), np.zeros((1, 2)), "manhattan")
