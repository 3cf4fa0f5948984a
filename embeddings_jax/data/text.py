"""Text corpora as lists of tokenised sentences (``list[list[str]]``).

* ``load_ptb(split)``: Penn Treebank LM text (Mikolov's version), one sentence per line.
* ``load_brown(lower=True)``: the Brown Corpus from NLTK's ``brown.zip`` with the ``/tag`` suffix
  stripped from every ``word/tag`` token, one sentence per line.
* ``read_sentences(path)``: any whitespace-tokenised text file (optionally ``.gz``), one sentence
  per line; a single huge line (text8) is cut into ``max_sentence_length``-word pieces.
* ``LineSentence(path)``: gensim's streaming corpus of such a file, re-iterable, strict UTF-8 (a
  byte sequence that is not UTF-8 is an error naming the line, never a silent replacement).
* ``analogy_path()``: the Google ``questions-words.txt`` analogy file.

Files come from :mod:`embeddings_jax.data.registry` (datasets ``ptb``, ``brown``, ``eval``).
"""

from __future__ import annotations

import gzip
import io
import os
import pathlib
import zipfile
from collections.abc import Iterable, Iterator

from embeddings_jax.data import registry

PTB_SPLITS = ("train", "valid", "test")
# gensim and the original word2vec cut sentences longer than this (text8 is a single line).
MAX_SENTENCE_LENGTH = 10_000


def _open_text(path: pathlib.Path):
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


def iter_sentences(
    path: str | os.PathLike, lower: bool = False, max_sentence_length: int = MAX_SENTENCE_LENGTH
) -> Iterator[list[str]]:
    """Streams whitespace-tokenised sentences (one per line) from a text or ``.gz`` file.

    Empty lines are skipped; lines longer than ``max_sentence_length`` tokens are split.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"text file {path} does not exist")
    if max_sentence_length < 1:
        raise ValueError(f"max_sentence_length must be >= 1, got {max_sentence_length}")
    with _open_text(path) as f:
        for line in f:
            toks = (line.lower() if lower else line).split()
            for i in range(0, len(toks), max_sentence_length):
                yield toks[i : i + max_sentence_length]


class LineSentence:
    """Sentences of a whitespace-tokenised text file (or ``.gz``), one per line, read afresh on
    every iteration (gensim's ``LineSentence``: the corpus is never held in memory as strings).

    Lines longer than ``max_sentence_length`` tokens are cut; ``limit`` reads only that many lines.
    """

    def __init__(self, source: str | os.PathLike, max_sentence_length: int = MAX_SENTENCE_LENGTH,
                 limit: int | None = None):
        self.source = pathlib.Path(source)
        if not self.source.is_file():
            raise FileNotFoundError(f"corpus file {self.source} does not exist (or is not a file)")
        if not os.access(self.source, os.R_OK):
            raise PermissionError(f"corpus file {self.source} is not readable")
        if max_sentence_length < 1:
            raise ValueError(f"max_sentence_length must be >= 1, got {max_sentence_length}")
        self.max_sentence_length, self.limit = int(max_sentence_length), limit

    def __iter__(self) -> Iterator[list[str]]:
        for toks in self.lines():
            for i in range(0, len(toks), self.max_sentence_length):
                yield toks[i : i + self.max_sentence_length]

    def lines(self) -> Iterator[list[str]]:
        """Every line's tokens, one list per line of the file (empty lines too, none cut)."""
        opener = gzip.open if self.source.suffix == ".gz" else open
        with opener(self.source, "rb") as f:
            for number, raw in enumerate(f, 1):
                if self.limit is not None and number > self.limit:
                    return
                try:
                    yield raw.decode("utf-8").split()
                except UnicodeDecodeError as e:
                    raise ValueError(
                        f"{self.source}: line {number} is not valid UTF-8 (byte {e.start}: "
                        f"{raw[e.start:e.start + 4]!r}); convert the file to UTF-8 first (e.g. iconv)"
                    ) from None


def read_sentences(
    path: str | os.PathLike, lower: bool = False, max_sentence_length: int = MAX_SENTENCE_LENGTH
) -> list[list[str]]:
    """All sentences of a text file (see :func:`iter_sentences`)."""
    return list(iter_sentences(path, lower=lower, max_sentence_length=max_sentence_length))


def load_ptb(split: str = "train") -> list[list[str]]:
    """PTB sentences of one split (``train``, ``valid`` or ``test``); already lower-cased."""
    if split not in PTB_SPLITS:
        raise ValueError(f"unknown PTB split {split!r}; choose one of {PTB_SPLITS}")
    return read_sentences(registry.fetch("ptb", f"ptb.{split}.txt.gz"))


def is_brown_file(name: str) -> bool:
    """Whether a ``brown.zip`` member is a text file (``ca01`` ... ``cr09``; README, CONTENTS
    and cats.txt are metadata)."""
    base = name.rsplit("/", 1)[-1]
    return len(base) == 4 and base[0] == "c" and base[1].isalpha() and base[2:].isdigit()


def _brown_lines(z: zipfile.ZipFile) -> Iterator[str]:
    for name in sorted(z.namelist()):
        if is_brown_file(name):
            yield from z.read(name).decode("utf-8", errors="replace").splitlines()


def load_brown(lower: bool = True) -> list[list[str]]:
    """Brown Corpus sentences (500 files, ~57k sentences, 1.16M tokens), tags stripped."""
    path = registry.fetch("brown", "brown.zip")
    sentences = []
    with zipfile.ZipFile(path) as z:
        for line in _brown_lines(z):
            toks = [t.rsplit("/", 1)[0] for t in line.split()]
            if toks:
                sentences.append([t.lower() for t in toks] if lower else toks)
    return sentences


def analogy_path() -> pathlib.Path:
    """Path of Mikolov's ``questions-words.txt`` (19,544 analogy questions in 14 sections)."""
    return registry.fetch("eval", "questions-words.txt")


def load_corpus(name: str) -> list[list[str]]:
    """Named corpus: ``ptb`` (train split), ``brown``, ``ptb_brown`` (both), ``fra_eng`` (the English
    side of the fra-eng train split), ``flickr8k`` (the train split's captions), or a file path.
    The last two are lower-cased and split at spaces, with ``, . ! ?`` as tokens."""
    if name == "ptb":
        return load_ptb("train")
    if name == "brown":
        return load_brown()
    if name in ("ptb_brown", "ptb+brown"):
        return load_ptb("train") + load_brown()
    if name == "fra_eng":
        from embeddings_jax.data.translation import load_fra_eng, preprocess

        return [preprocess(s).split() for s in load_fra_eng("train")[0]]
    if name == "flickr8k":
        from embeddings_jax.data.captions import load_flickr8k
        from embeddings_jax.data.translation import preprocess

        return [preprocess(s).split() for s in load_flickr8k("train").captions]
    if pathlib.Path(name).is_file():
        return read_sentences(name)
    raise ValueError(
        f"unknown corpus {name!r}: use 'ptb', 'brown', 'ptb_brown', 'fra_eng', 'flickr8k' or a text file path"
    )


def count_words(sentences: Iterable[list[str]]) -> int:
    return sum(len(s) for s in sentences)
