"""Optional adapter for TensorFlow Datasets: ``tfds:<name>`` reads prepared TFDS data as numpy.

Uses ``tfds.data_source`` (random-access ArrayRecord files), which needs neither TensorFlow nor a
network once the data is prepared in ``data_dir`` (TFDS's own default is ``~/tensorflow_datasets``).
Install with ``pip install "embeddings-jax[tfds]"``.
"""

from __future__ import annotations

import numpy as np

PREFIX = "tfds:"


def is_tfds_name(name: str) -> bool:
    return name.startswith(PREFIX)


def load_tfds(name: str, split: str, data_dir: str | None = None) -> dict[str, np.ndarray]:
    """All examples of a prepared TFDS split as ``{feature: array [N, ...]}``.

    ``name`` may carry the ``tfds:`` prefix. Raises ImportError with the install command when
    tensorflow-datasets is missing, and ValueError for an empty split.
    """
    try:
        import tensorflow_datasets as tfds
    except ImportError as e:
        raise ImportError(
            f"{name!r} needs tensorflow-datasets: pip install 'embeddings-jax[tfds]'"
        ) from e
    source = tfds.data_source(name.removeprefix(PREFIX), split=split, data_dir=data_dir)
    n = len(source)
    if n == 0:
        raise ValueError(f"TFDS split {name}/{split} is empty")
    examples = [source[i] for i in range(n)]
    keys = examples[0].keys()
    return {k: np.stack([np.asarray(ex[k]) for ex in examples]) for k in keys}
