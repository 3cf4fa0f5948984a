"""Test set-up: 8 simulated CPU devices, so every sharded path is exercised without accelerators."""

import os

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest


def pytest_configure(config):
    import jax

    assert jax.device_count() == 8, "tests expect 8 simulated CPU devices (set before JAX import)"


@pytest.fixture
def shared_data():
    """Skips a test when the registry cannot find the named dataset locally."""
    from embeddings_jax.data import registry

    def need(dataset: str):
        if not registry.is_available(dataset):
            pytest.skip(f"dataset {dataset!r} not in {registry.data_dir()} (set EMBEDDINGS_JAX_DATA)")
        return registry.dataset_dir(dataset)

    return need


@pytest.fixture(scope="session")
def clustered_points():
    """``make(n_centers, dim, n, n_queries, spread) -> (x [n, dim], q [n_queries, dim], centers)``:
    Gaussian clusters (unit noise around centres scaled by ``spread``), float32, seed 0."""
    import numpy as np

    def make(n_centers, dim, n, n_queries, spread):
        rng = np.random.default_rng(0)
        centers = rng.standard_normal((n_centers, dim)) * spread
        x = (centers[rng.integers(0, n_centers, n)] + rng.standard_normal((n, dim))).astype(np.float32)
        q = (centers[rng.integers(0, n_centers, n_queries)] + rng.standard_normal((n_queries, dim))).astype(np.float32)
        return x, q, centers

    return make
