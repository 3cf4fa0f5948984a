"""Template captions for image classes ("a blurry picture of the sneaker."), tokenized for a dual encoder.

Each training image is paired with a caption made from its class phrase and one of the training
templates; the held-out templates never appear in training and serve zero-shot evaluation.
Token tables are int32 ``[templates, classes, max_len]``: entry ``[t, c]`` is class ``c`` in template ``t``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from embeddings_jax.data.batching import epoch_batches
from embeddings_jax.data.images import class_names
from embeddings_jax.data.wordpiece import WordPieceTokenizer

TRAIN_TEMPLATES = (
    "a photo of a {}.",
    "a picture of a {}.",
    "an image of a {}.",
    "a black and white photo of a {}.",
    "a low resolution photo of the {}.",
    "a blurry picture of the {}.",
    "a grayscale image showing a {}.",
    "this is a {}.",
)
TEST_TEMPLATES = (  # never seen in training
    "a cropped photo of the {}.",
    "a pixelated rendering of a {}.",
    "there is a {} in this tiny scan.",
    "a small dark thumbnail of one {}.",
)
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def class_phrases(dataset: str) -> tuple[str, ...]:
    """Caption phrase of each class: Fashion-MNIST names lower-cased ("t-shirt/top"), MNIST "digit seven"."""
    if dataset == "mnist":
        return tuple(f"digit {d}" for d in DIGITS)
    return tuple(n.lower() for n in class_names(dataset))


def captions(templates: Sequence[str], phrases: Sequence[str]) -> list[list[str]]:
    """``[template][class]`` caption strings."""
    return [[t.format(p) for p in phrases] for t in templates]


def token_tables(
    dataset: str, max_len: int, *, seed: int = 0, piece_dropout: float = 0.1, piece_variants: int = 8
) -> tuple[WordPieceTokenizer, dict[str, np.ndarray]]:
    """Tokenizer fitted on the training captions, and int32 [templates, classes, L] id tables: "train" and
    "heldout" tokenized plainly, "train_dropout" = ``piece_variants`` word-piece-dropout spellings of each
    training caption stacked along the template axis (what training samples from)."""
    phrases = class_phrases(dataset)
    flat = lambda templates: [c for row in captions(templates, phrases) for c in row]
    tok = WordPieceTokenizer(flat(TRAIN_TEMPLATES))
    shape = (len(TRAIN_TEMPLATES), len(phrases), max_len)
    rng = np.random.default_rng([seed, 2])
    variants = [tok.encode(flat(TRAIN_TEMPLATES), max_len).reshape(shape)]
    variants += [
        tok.encode(flat(TRAIN_TEMPLATES), max_len, rng, piece_dropout).reshape(shape)
        for _ in range(piece_variants - 1)
    ]
    tables = {
        "train": variants[0],
        "train_dropout": np.concatenate(variants),
        "heldout": tok.encode(flat(TEST_TEMPLATES), max_len).reshape(len(TEST_TEMPLATES), len(phrases), -1),
    }
    return tok, tables


def caption_batches(images, labels, token_table: np.ndarray, batch_size: int, seed: int):
    """``(batch_fn, steps_per_epoch)``: shuffled images, each captioned with a random training template.

    token_table: int32 [templates, classes, L]. The batch of step s depends only on (seed, s).
    """
    base, steps = epoch_batches({"image": images, "label": labels}, batch_size, seed)

    def batch_fn(step: int) -> dict[str, np.ndarray]:
        b = base(step)
        t = np.random.default_rng([seed, step, 1]).integers(len(token_table), size=len(b["label"]))
        return {"image": b["image"], "tokens": token_table[t, b["label"]]}

    return batch_fn, steps
