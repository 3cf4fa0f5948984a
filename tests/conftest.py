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
