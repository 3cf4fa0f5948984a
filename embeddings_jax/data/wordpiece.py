"""Greedy longest-match-first word pieces (as BERT) over a vocabulary of training words + characters.

A word seen when fitting is one piece; an unseen word ("pixelated") falls back to the longest known
prefixes and ``##``-continuations, down to single characters. Id 0 is padding, id 1 unknown.

Example::

    tok = WordPieceTokenizer(["a photo of a sneaker."])
    tok.tokenize("a photograph")        # ["a", "photo", "##g", "##r", "##a", "##p", "##h"]
    tok.encode(["a photo"], max_len=4)  # int32 [1, 4], padded with PAD_ID
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np

PAD_ID = 0


class WordPieceTokenizer:
    """Vocabulary = the words of ``texts`` + single characters (start and ``##`` continuation).

    ``dropout`` (training only, as BPE-dropout) spells a word out in characters with that probability,
    so the character pieces that unseen words fall back to are trained too.
    """

    def __init__(self, texts: Iterable[str]):
        words = sorted({w for t in texts for w in self.split(t)})
        chars = sorted(set("abcdefghijklmnopqrstuvwxyz0123456789") | {c for w in words for c in w})
        pieces = ["[PAD]", "[UNK]", *words, *(c for c in chars if c not in words), *(f"##{c}" for c in chars)]
        self.vocab = {p: i for i, p in enumerate(dict.fromkeys(pieces))}
        assert self.vocab["[PAD]"] == PAD_ID

    @staticmethod
    def split(text: str) -> list[str]:
        return re.findall(r"[a-z0-9]+|[^a-z0-9\s]", text.lower())

    def tokenize(self, text: str, rng: np.random.Generator | None = None, dropout: float = 0.0) -> list[str]:
        out = []
        for word in self.split(text):
            if rng is not None and rng.random() < dropout:
                out += [word[0], *(f"##{c}" for c in word[1:])]
                continue
            start = 0
            while start < len(word):
                for end in range(len(word), start, -1):
                    piece = word[start:end] if start == 0 else f"##{word[start:end]}"
                    if piece in self.vocab:
                        break
                else:
                    piece, end = "[UNK]", start + 1
                out.append(piece)
                start = end
        return out

    def encode(self, texts: Sequence[str], max_len: int, rng=None, dropout: float = 0.0) -> np.ndarray:
        """int32 ``[N, max_len]`` ids, padded with 0. Raises ValueError when a text does not fit."""
        ids = np.zeros((len(texts), max_len), np.int32)
        for i, t in enumerate(texts):
            pieces = self.tokenize(t, rng, dropout)
            if len(pieces) > max_len:
                raise ValueError(f"caption {t!r} has {len(pieces)} word pieces; raise max_len above {max_len}")
            ids[i, : len(pieces)] = [self.vocab[p] for p in pieces]
        return ids

    def __len__(self) -> int:
        return len(self.vocab)
