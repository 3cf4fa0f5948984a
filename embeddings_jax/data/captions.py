"""Flickr8k captions (five per image) with the official train/dev/test image splits.

Files come from the registry dataset ``"flickr8k_text"`` (``Flickr8k.token.txt.gz``: lines
``<image>.jpg#<k><TAB><caption>``, and ``Flickr_8k.{train,dev,test}Images.txt``). Images are
not part of the dataset: this is text-only caption retrieval data.

Example::

    caps = load_flickr8k("test")
    caps.captions[:2], caps.image_ids[:2]   # 5,000 captions of 1,000 images
    caps.relevant()[0]                       # ids of the other captions of the same image
    pair_sampler(caps.image_ids, 32, seed=0)(step)   # [32, 2] caption pairs for contrastive training
"""

from __future__ import annotations

import dataclasses
import gzip

import numpy as np

from embeddings_jax.data import registry

DATASET = "flickr8k_text"
SPLITS = {
    "train": "Flickr_8k.trainImages.txt",
    "dev": "Flickr_8k.devImages.txt",
    "test": "Flickr_8k.testImages.txt",
}
TOKEN_FILE = "Flickr8k.token.txt.gz"


@dataclasses.dataclass(frozen=True)
class Captions:
    """Captions of one split, ordered by image (file order of the split list), then caption number.

    Attributes:
      captions: the ``N`` caption strings (stripped, original case).
      image_ids: int64 ``[N]``: index of each caption's image in ``images``.
      images: the split's image file names, in the official list's order.
    """

    captions: list[str]
    image_ids: np.ndarray
    images: list[str]

    def __len__(self) -> int:
        return len(self.captions)

    def relevant(self) -> list[np.ndarray]:
        """For caption ``i``: the ids of the *other* captions of the same image (sorted)."""
        order = np.argsort(self.image_ids, kind="stable")
        bounds = np.searchsorted(self.image_ids[order], np.arange(len(self.images) + 1))
        groups = [order[bounds[g] : bounds[g + 1]] for g in range(len(self.images))]
        return [groups[g][groups[g] != i] for i, g in enumerate(self.image_ids)]

    def pairs(self) -> np.ndarray:
        """int64 ``[P, 2]``: every ordered pair (i, j), i != j, of captions of one image."""
        rel = self.relevant()
        return np.array([(i, j) for i, r in enumerate(rel) for j in r], dtype=np.int64)

    def first_images(self, n: int) -> Captions:
        """The captions of the split's first ``n`` images (a smaller evaluation set)."""
        keep = self.image_ids < n
        return Captions([c for c, k in zip(self.captions, keep) if k], self.image_ids[keep],
                        self.images[:n])


def pair_sampler(image_ids: np.ndarray, batch_size: int, seed: int):
    """``pairs(step) -> int [batch_size, 2]``: two different captions of each of ``batch_size``
    distinct images, for in-batch-negative training where a negative never shares the image.

    Images are shuffled once per epoch (seeded by the epoch) and the two captions of an image are
    drawn with a generator seeded by the step: a step's pairs never depend on what ran before.
    """
    groups = [np.flatnonzero(image_ids == g) for g in range(int(image_ids.max()) + 1)]
    per_epoch = len(groups) // batch_size
    if per_epoch == 0:
        raise ValueError(f"batch_size={batch_size} needs at least that many images; there are {len(groups)}")

    def pairs(step: int) -> np.ndarray:
        epoch, i = divmod(step, per_epoch)
        order = np.random.default_rng([seed, epoch]).permutation(len(groups))
        rng = np.random.default_rng([seed, epoch, i, 1])
        images = order[i * batch_size : (i + 1) * batch_size]
        return np.array([rng.choice(groups[g], 2, replace=False) for g in images])

    return pairs


def _read_lines(path) -> list[str]:
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [line.rstrip("\r\n") for line in f]


def load_flickr8k(split: str = "test") -> Captions:
    """Captions of the official ``"train"`` (6,000 images), ``"dev"`` or ``"test"`` (1,000 each) split.

    Caption lines whose image is not in the split are dropped (this also drops the known spurious
    id ``2258277193_586949ec62.jpg.1``, which is in no split list).
    """
    if split not in SPLITS:
        raise ValueError(f"unknown Flickr8k split {split!r}; choose from {sorted(SPLITS)}")
    images = [s.strip() for s in _read_lines(registry.fetch(DATASET, SPLITS[split])) if s.strip()]
    index = {name: i for i, name in enumerate(images)}
    by_image: dict[int, list[tuple[int, str]]] = {}
    for n, line in enumerate(_read_lines(registry.fetch(DATASET, TOKEN_FILE)), 1):
        if not line.strip():
            continue
        key, sep, caption = line.partition("\t")
        name, hash_, k = key.partition("#")
        if not sep or not hash_ or not k.isdigit():
            raise ValueError(f"{TOKEN_FILE} line {n}: expected '<image>#<k>\\t<caption>', got {line!r}")
        if name in index:
            by_image.setdefault(index[name], []).append((int(k), caption.strip()))
    missing = [images[i] for i in range(len(images)) if i not in by_image]
    if missing:
        raise ValueError(f"{len(missing)} {split} images have no caption in {TOKEN_FILE}, e.g. {missing[:3]}")
    captions, image_ids = [], []
    for i in range(len(images)):
        for _, caption in sorted(by_image[i]):
            captions.append(caption)
            image_ids.append(i)
    return Captions(captions, np.asarray(image_ids, dtype=np.int64), images)
