"""Quantizers against numpy: SQ8 round trip, PQ encoding and ADC tables, binary codes."""

import jax.numpy as jnp
import numpy as np
import pytest

from embeddings_jax.ops import quantize


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(0).standard_normal((600, 16)).astype(np.float32)


def test_sq8_per_dimension_round_trip(x):
    scale, offset = quantize.train_sq8(x)
    codes = quantize.encode_sq8(x, scale, offset)
    assert codes.dtype == np.uint8 and codes.nbytes * 4 == x.nbytes
    err = np.abs(quantize.decode_sq8(codes, scale, offset) - x)
    assert (err <= scale / 2 + 1e-6).all()
    assert codes.min() == 0 and codes.max() == 255  # the trained range is used fully
    # out-of-range values clip instead of wrapping
    assert quantize.encode_sq8(x[:1] * 0 + 1e6, scale, offset).min() == 255


def test_sq8_per_vector_round_trip(x):
    codes, scale, offset = quantize.encode_sq8_per_vector(x)
    assert scale.shape == (600, 1)
    err = np.abs(quantize.decode_sq8(codes, scale, offset) - x)
    assert (err <= scale / 2 + 1e-6).all()


def test_sq8_constant_dimension():
    x = np.ones((5, 3), np.float32)
    scale, offset = quantize.train_sq8(x)
    np.testing.assert_array_equal(quantize.decode_sq8(quantize.encode_sq8(x, scale, offset), scale, offset), x)


def test_pq_encode_is_nearest_centroid_per_subspace(x):
    codebooks = quantize.train_pq(x, 4, ksub=16, iters=5)
    assert codebooks.shape == (4, 16, 4)
    codes = quantize.encode_pq(x, codebooks)
    sub = x.reshape(600, 4, 4)
    d = ((sub[:, :, None, :] - codebooks[None]) ** 2).sum(-1)  # [N, M, ksub]
    np.testing.assert_array_equal(codes, d.argmin(-1))
    recon = quantize.decode_pq(codes, codebooks)
    assert ((recon - x) ** 2).sum() < 0.5 * (x ** 2).sum()  # 16 centroids per 4-d subspace explain most variance


@pytest.mark.parametrize("metric", ["l2", "ip"])
def test_adc_equals_score_against_reconstruction(x, metric):
    rng = np.random.default_rng(1)
    codebooks = rng.standard_normal((4, 16, 4)).astype(np.float32)
    codes = rng.integers(0, 16, (50, 4)).astype(np.uint8)
    q = rng.standard_normal((7, 16)).astype(np.float32)
    recon = quantize.decode_pq(codes, codebooks).astype(np.float64)
    ref = q @ recon.T if metric == "ip" else -((q[:, None, :] - recon[None]) ** 2).sum(-1)
    lut = quantize.pq_lut(jnp.asarray(q), jnp.asarray(codebooks), metric).swapaxes(0, 1)
    np.testing.assert_allclose(quantize.adc_scores(lut, jnp.asarray(codes)), ref, rtol=1e-5, atol=1e-4)


def test_pq_bad_dimensions(x):
    with pytest.raises(ValueError, match="multiple"):
        quantize.train_pq(x, 5)
    with pytest.raises(ValueError, match="at least 256"):
        quantize.train_pq(x[:100], 4)


def test_binary_codes():
    x = np.array([[1.0, -1.0, 0.0, 2.0, -3.0, 0.5, 0.5, -0.1, 4.0]], np.float32)
    codes = quantize.binary_codes(x)
    assert codes.shape == (1, 2) and codes.dtype == np.uint8
    np.testing.assert_array_equal(np.unpackbits(codes, axis=1)[:, :9], (x > 0).astype(np.uint8))
