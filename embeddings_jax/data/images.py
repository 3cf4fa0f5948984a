"""MNIST-format image datasets (MNIST, Fashion-MNIST) from their original IDX files."""

from __future__ import annotations

import gzip
import pathlib

import numpy as np

from embeddings_jax.data import registry, tfds_adapter

IMAGE_DATASETS = ("mnist", "fashion_mnist")
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "trouser", "pullover", "dress", "coat",
    "sandal", "shirt", "sneaker", "bag", "ankle boot",
)
MNIST_CLASSES = tuple(str(i) for i in range(10))

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | pathlib.Path) -> np.ndarray:
    """Reads an IDX file (optionally gzipped) into an array of its declared shape and dtype."""
    path = pathlib.Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number {data[:4].hex()})")
    ndim = data[3]
    dims = np.frombuffer(data, ">u4", count=ndim, offset=4).astype(int)
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    expected = 4 + 4 * ndim + int(np.prod(dims)) * dtype.itemsize
    if len(data) != expected:
        raise ValueError(f"{path} is truncated or corrupt: {len(data)} bytes, expected {expected}")
    return np.frombuffer(data, dtype, offset=4 + 4 * ndim).reshape(dims).astype(dtype.newbyteorder("="))


def load_mnist(split: str = "train", dataset: str = "mnist") -> tuple[np.ndarray, np.ndarray]:
    """Images and labels of MNIST or Fashion-MNIST.

    ``dataset`` is ``"mnist"`` or ``"fashion_mnist"`` (registry IDX files), or ``"tfds:<name>"``
    for a prepared TFDS dataset with ``image`` and ``label`` features (the ``tfds`` extra).

    Returns:
      images: uint8 [N, 28, 28] (N = 60,000 train or 10,000 test), labels: int32 [N] in 0..9.
    """
    if tfds_adapter.is_tfds_name(dataset):
        data = tfds_adapter.load_tfds(dataset, split)
        images = data["image"]
        return images.reshape(images.shape[0], *images.shape[1:3]), data["label"].astype(np.int32)
    if dataset not in IMAGE_DATASETS:
        raise ValueError(f"unknown image dataset {dataset!r}; choose one of {IMAGE_DATASETS}")
    prefix = {"train": "train", "test": "t10k"}.get(split)
    if prefix is None:
        raise ValueError(f"unknown split {split!r}; MNIST-format datasets have 'train' and 'test'")
    images = read_idx(registry.fetch(dataset, f"{prefix}-images-idx3-ubyte.gz"))
    labels = read_idx(registry.fetch(dataset, f"{prefix}-labels-idx1-ubyte.gz")).astype(np.int32)
    if len(images) != len(labels):
        raise ValueError(f"{dataset}/{split}: {len(images)} images but {len(labels)} labels")
    return images, labels


def class_names(dataset: str) -> tuple[str, ...]:
    return FASHION_MNIST_CLASSES if dataset.removeprefix("tfds:") == "fashion_mnist" else MNIST_CLASSES


def to_unit_vectors(images: np.ndarray) -> np.ndarray:
    """uint8 [N, H, W] -> float32 [N, H * W] grey levels in [0, 1]."""
    return images.reshape(len(images), -1).astype(np.float32) / 255.0


def binarize_fixed(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """One stochastic binarization (pixel on with probability = grey level), fixed by ``seed``.

    The usual protocol for a binarized test set: drawn once, so every evaluation sees the same pixels.
    """
    return (np.random.default_rng(seed).random(x.shape, dtype=np.float32) < x).astype(np.float32)
