"""TFDS adapter (``tfds:<name>``), exercised with ``tfds.testing.mock_data`` (no TensorFlow needed)."""

import numpy as np
import pytest

tfds = pytest.importorskip("tensorflow_datasets")

from embeddings_jax.data import images, tfds_adapter


def test_tfds_mnist_through_load_mnist():
    with tfds.testing.mock_data(num_examples=12, policy=tfds.testing.MockPolicy.USE_CODE):
        x, y = images.load_mnist("train", "tfds:mnist")
        raw = tfds_adapter.load_tfds("mnist", "train")
    assert x.shape == (12, 28, 28) and x.dtype == np.uint8
    assert y.shape == (12,) and y.dtype == np.int32 and y.min() >= 0 and y.max() <= 9
    assert raw["image"].shape == (12, 28, 28, 1)
    np.testing.assert_array_equal(raw["image"][..., 0], x)
    assert images.class_names("tfds:fashion_mnist")[0] == "T-shirt/top"


def test_missing_tfds_name_is_a_clear_error():
    with tfds.testing.mock_data(num_examples=2), pytest.raises(Exception, match="not_a_dataset|not found|No builder"):
        tfds_adapter.load_tfds("tfds:not_a_dataset", "train")
