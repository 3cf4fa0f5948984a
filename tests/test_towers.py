"""Dual-encoder towers: shapes, unit-norm outputs, padding masks, sharded == single device, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from embeddings_jax.models import towers
from embeddings_jax.ops.similarity import l2_normalize

N, L, VOCAB = 8, 10, 30


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    images = rng.random((N, 28, 28)).astype(np.float32)
    lengths = rng.integers(3, L, size=N)
    tokens = rng.integers(1, VOCAB, size=(N, L)).astype(np.int32)
    tokens[np.arange(L)[None, :] >= lengths[:, None]] = towers.PAD_ID
    return jnp.asarray(images), jnp.asarray(tokens)


@pytest.fixture(scope="module", params=["cnn", "vit"])
def model_and_params(request):
    model = towers.build_dual_encoder(request.param, vocab_size=VOCAB, max_len=16, embed_dim=12, width=16, depth=1)
    images, tokens = _inputs()
    return model, jax.jit(model.init)(jax.random.key(0), images, tokens)["params"]


def test_outputs_are_unit_vectors_in_one_space(model_and_params):
    model, params = model_and_params
    images, tokens = _inputs()
    x, y, scale, bias = model.apply({"params": params}, images, tokens)
    assert x.shape == y.shape == (N, 12)
    np.testing.assert_allclose(jnp.linalg.norm(x, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(jnp.linalg.norm(y, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(scale, 1 / 0.07, rtol=1e-5)
    assert bias == 0.0
    enc_x = model.apply({"params": params}, images[..., None], method=towers.DualEncoder.encode_image)
    enc_y = model.apply({"params": params}, tokens, method=towers.DualEncoder.encode_text)
    np.testing.assert_allclose(enc_x, x, atol=1e-6)  # [N, H, W] and [N, H, W, 1] are the same images
    np.testing.assert_allclose(enc_y, y, atol=1e-6)


def test_text_ignores_padding(model_and_params):
    model, params = model_and_params
    _, tokens = _inputs()
    enc = lambda t: model.apply({"params": params}, t, method=towers.DualEncoder.encode_text)
    np.testing.assert_allclose(enc(jnp.pad(tokens, ((0, 0), (0, 4)))), enc(tokens), atol=1e-5)  # more padding
    changed = tokens.at[0, 0].set(tokens[0, 0] % (VOCAB - 1) + 1)  # a different real token
    assert np.abs(np.asarray(enc(changed)[0] - enc(tokens)[0])).max() > 1e-4


def test_sharded_encoding_equals_single_device(model_and_params):
    model, params = model_and_params
    images, tokens = _inputs()
    mesh = Mesh(np.array(jax.devices()), ("data",))
    shard = NamedSharding(mesh, P("data"))
    fn = jax.jit(lambda p, i, t: model.apply({"params": p}, i, t)[:2])
    want = fn(params, images, tokens)
    got = fn(params, jax.device_put(images, shard), jax.device_put(tokens, shard))
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, atol=1e-5)


def test_siglip_init_and_normalize():
    cheap = towers.DualEncoder(  # towers without conv or attention layers: a quick init
        towers.CNNTower(features=(), hidden=8), towers.TextTower(VOCAB, depth=0, width=8),
        embed_dim=4, init_scale=10.0, init_bias=-10.0,
    )
    images, tokens = _inputs()
    params = cheap.init(jax.random.key(1), images, tokens)["params"]
    np.testing.assert_allclose(jnp.exp(params["log_scale"]), 10.0, rtol=1e-6)
    assert params["bias"] == -10.0
    np.testing.assert_allclose(l2_normalize(jnp.array([[3.0, 4.0], [0.0, 0.0]])), [[0.6, 0.8], [0.0, 0.0]])


def test_bad_input():
    with pytest.raises(ValueError, match="unknown image tower"):
        towers.build_dual_encoder("resnet", vocab_size=VOCAB)
    with pytest.raises(ValueError, match="vocab_size"):
        towers.build_dual_encoder("cnn", vocab_size=1)
    vit = towers.ViTTower(patch=5)
    with pytest.raises(ValueError, match="not a multiple of the patch size"):
        vit.init(jax.random.key(0), jnp.zeros((1, 28, 28)))
    text = towers.TextTower(vocab_size=VOCAB, max_len=4)
    with pytest.raises(ValueError, match="exceed the text tower's max_len"):
        text.init(jax.random.key(0), jnp.ones((1, 6), jnp.int32))
