"""Autoencoder / VAE models, the ELBO terms, the IWAE log-likelihood estimate and the vae report."""

import json

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from embeddings_jax.data.images import binarize_fixed
from embeddings_jax.eval.likelihood import iwae_log_likelihood
from embeddings_jax.models.autoencoder import VAE, AutoEncoder, model_from_config
from embeddings_jax.ops.densities import bernoulli_log_likelihood, gaussian_kl, gaussian_log_density
from experiments.common import RESULTS_DIR
from experiments.reports import vae as report
from experiments.vae import get_config


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_shapes_encode_generate(arch):
    key = jax.random.PRNGKey(0)
    x = jax.random.uniform(key, (4, 784))
    vae = VAE(arch=arch, hidden=32, latents=5)
    params = vae.init(key, x, key)["params"]
    logits, mean, logvar = vae.apply({"params": params}, x, key)
    assert logits.shape == (4, 784) and mean.shape == logvar.shape == (4, 5)
    assert vae.apply({"params": params}, x, method=VAE.encode).shape == (4, 5)
    assert vae.apply({"params": params}, jnp.zeros((3, 5)), method=VAE.generate).shape == (3, 784)
    ae = AutoEncoder(arch=arch, hidden=32, latents=5)
    p = ae.init(key, x)["params"]
    rec, code = ae.apply({"params": p}, x)
    assert rec.shape == (4, 784) and code.shape == (4, 5)


def test_elbo_terms_match_closed_forms():
    logits = jnp.array([[0.0, 2.0, -1.0]])
    x = jnp.array([[1.0, 0.0, 1.0]])
    p = jax.nn.sigmoid(logits)
    expected = jnp.sum(x * jnp.log(p) + (1 - x) * jnp.log(1 - p))
    np.testing.assert_allclose(bernoulli_log_likelihood(logits, x), [expected], rtol=1e-6)
    mean, logvar = jnp.array([[0.5, -1.0]]), jnp.array([[0.2, -0.3]])
    var = jnp.exp(logvar)
    kl = 0.5 * jnp.sum(var + mean**2 - 1 - logvar)
    np.testing.assert_allclose(gaussian_kl(mean, logvar), [kl], rtol=1e-6)
    np.testing.assert_allclose(gaussian_kl(jnp.zeros((1, 3)), jnp.zeros((1, 3))), [0.0], atol=1e-7)


def _toy_decoder(latents=1, pixels=12):
    """A fixed random decoder z -> Bernoulli logits over ``pixels``."""
    w1 = jax.random.normal(jax.random.PRNGKey(1), (latents, 16))
    w2 = jax.random.normal(jax.random.PRNGKey(2), (16, pixels)) * 0.5
    return lambda z: jnp.tanh(z @ w1) @ w2


def test_iwae_converges_to_exact_log_likelihood_by_quadrature():
    decode = _toy_decoder()
    x = (jax.random.uniform(jax.random.PRNGKey(3), (3, 12)) < 0.5).astype(jnp.float32)
    # Exact log p(x) = log integral p(x|z) N(z; 0, 1) dz on a fine grid (1-D latent).
    grid = jnp.linspace(-12, 12, 20001)[:, None]
    log_joint = bernoulli_log_likelihood(decode(grid)[:, None, :], x[None]) + gaussian_log_density(
        grid, 0.0, jnp.zeros_like(grid)
    )[:, None]
    exact = jax.nn.logsumexp(log_joint, axis=0) + jnp.log(grid[1, 0] - grid[0, 0])

    def posterior(x):  # a deliberately imperfect proposal: broad Gaussian around 0.3
        return jnp.full((x.shape[0], 1), 0.3), jnp.full((x.shape[0], 1), 0.5)

    k1 = jnp.mean(jnp.stack([iwae_log_likelihood(posterior, decode, x, jax.random.PRNGKey(s), 1, 1)
                             for s in range(200)]), axis=0)
    k20000 = iwae_log_likelihood(posterior, decode, x, jax.random.PRNGKey(7), 20000, 2000)
    gap = exact - k20000  # a lower bound that tightens as k grows; Monte-Carlo noise ~0.005
    assert np.all(gap > -0.01) and np.all(gap < 0.03), gap
    assert np.all(k1 < exact)  # the ELBO (k = 1) is a strict lower bound in expectation
    assert np.all(k1 < k20000 - 0.1)


def test_iwae_argument_errors():
    decode = _toy_decoder()
    post = lambda x: (jnp.zeros((1, 1)), jnp.zeros((1, 1)))
    with pytest.raises(ValueError, match="multiple of chunk"):
        iwae_log_likelihood(post, decode, jnp.zeros((1, 12)), jax.random.PRNGKey(0), 150, 100)


def test_config_and_model_errors():
    with pytest.raises(ValueError, match="unknown vae config args"):
        get_config("runlocal,imagenet")
    c = get_config("runlocal")
    c.pixels = "grey"
    with pytest.raises(ValueError, match="unknown pixels 'grey'"):
        model_from_config(c)
    c = get_config("conv,ae")
    assert (c.arch, c.model) == ("conv", "ae")


def test_fixed_binarization_is_deterministic_and_unbiased():
    x = np.full((200, 784), 0.3, np.float32)
    a, b = binarize_fixed(x), binarize_fixed(x)
    np.testing.assert_array_equal(a, b)
    assert set(np.unique(a)) == {0.0, 1.0}
    assert abs(a.mean() - 0.3) < 0.005


@pytest.mark.parametrize("name", ["vae_mnist", "vae_fashion_mnist"])
def test_report_renders_the_committed_results(name):
    saved = json.loads((RESULTS_DIR / f"{name}.json").read_text())
    config = ml_collections.ConfigDict(saved.pop("config"))
    metrics = {k: v for k, v in saved.items() if k not in ("command", "hardware", "git_sha")}
    markdown = report.markdown(config, metrics, [f"{name}_images.png", f"{name}_latent.png"])
    assert markdown.rstrip() == (RESULTS_DIR / f"{name}.md").read_text().split("\n\nCommand: `")[0]


def test_report_writes_the_same_files_twice(tmp_path):
    config = get_config("runlocal")
    result = {"mnist_test_elbo_nats": -101.5, "mnist_test_kl_nats": 25.25}
    rng = np.random.default_rng(0)
    rows = {"test image": rng.random((16, 784)), "reconstruction": rng.random((16, 784))}
    codes, labels = rng.normal(size=(200, config.latents)), rng.integers(0, 10, 200)
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        report.write(config, result, rows, codes, labels, tmp_path / d)
    for f in ("vae_mnist.md", "vae_mnist.json", "vae_mnist_images.png", "vae_mnist_latent.png"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    assert "| `mnist_test_kl_nats` | 25.25 |" in (tmp_path / "a" / "vae_mnist.md").read_text()
