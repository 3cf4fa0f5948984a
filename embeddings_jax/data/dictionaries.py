"""Bilingual word dictionaries (``source<TAB>target`` lines) and word tokens for two languages.

A dictionary is a list of ``(source word, target word)`` pairs; a source word may have several
translations (one pair each). Splits are made by source word, so no test word is seen in
training with another of its translations.
"""

from __future__ import annotations

import os
import pathlib
import re
import zlib
from collections.abc import Iterable, Sequence

from embeddings_jax.data import registry

# Registered dictionaries: name -> file of the ``freedict`` dataset.
DICTIONARIES = {"en-fr": "eng-fra.train.tsv", "en-de": "eng-deu.train.tsv"}

_WORD = re.compile(r"[^\W\d_]+(?:['-][^\W\d_]+)*")
# French elided articles and pronouns, split off so that "l'homme" gives "l'" and "homme".
_ELISION = re.compile(r"^(?:l|d|j|n|s|c|m|t|qu)'(?=[^\W\d_])")


def load_dictionary(name_or_path: str | os.PathLike) -> list[tuple[str, str]]:
    """Pairs of a registered dictionary (``"en-fr"``, ``"en-de"``) or of a TSV file (one
    ``source<TAB>target`` pair a line, lower-cased as read; blank lines and ``#`` lines skipped)."""
    if str(name_or_path) in DICTIONARIES:
        path = registry.fetch("freedict", DICTIONARIES[str(name_or_path)])
    else:
        path = pathlib.Path(name_or_path)
        if not path.is_file():
            raise FileNotFoundError(
                f"no dictionary file {str(path)!r}; give a path or one of {sorted(DICTIONARIES)}"
            )
    pairs = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split("\t")
            if len(parts) != 2 or not all(parts):
                raise ValueError(f"{path}:{n}: expected 'source<TAB>target', got {line!r}")
            pairs.append((parts[0].lower(), parts[1].lower()))
    if not pairs:
        raise ValueError(f"dictionary {str(path)!r} holds no pairs")
    return pairs


def split_dictionary(
    pairs: Sequence[tuple[str, str]], test_fraction: float = 0.2, seed: int = 0
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """``(train, test)`` pairs, a source word and all its translations on one side: a stable hash
    of the word and ``seed`` decides, so the split does not depend on the file's order."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    cut = round(test_fraction * 10_000)

    def is_test(word: str) -> bool:
        return zlib.crc32(f"{seed}:{word}".encode()) % 10_000 < cut

    train = [p for p in pairs if not is_test(p[0])]
    test = [p for p in pairs if is_test(p[0])]
    return train, test


def word_tokens(text: str) -> list[str]:
    """Lower-cased words of ``text`` (letters, with inner apostrophes and hyphens), French
    elisions split off (``"l'homme" -> ["l'", "homme"]``); digits and punctuation dropped."""
    out = []
    for word in _WORD.findall(text.lower().replace("\u2019", "'")):
        elided = _ELISION.match(word)
        if elided:
            out.append(elided.group(0))
            word = word[elided.end():]
        out.append(word)
    return out


def tokenize_corpus(sentences: Iterable[str]) -> list[list[str]]:
    """:func:`word_tokens` of every sentence."""
    return [word_tokens(s) for s in sentences]
