"""Vocabulary building and corpus encoding for word2vec (gensim semantics).

``build_vocab`` streams token counts (pruning rare words when ``max_vocab_size`` is exceeded, as
gensim does), drops words below ``min_count`` (raised automatically to honour
``max_final_vocab``) and sorts the rest by descending frequency, ties in first-seen order.
``Vocab.encode`` turns sentences into one int32 id array with sentence ids; words outside the
vocabulary are dropped, as in gensim.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import numpy as np


@dataclasses.dataclass
class Corpus:
    """An encoded corpus.

    Attributes:
      ids: ``[N] int32`` token ids, sentences concatenated.
      sentence_ids: ``[N] int32`` index of the sentence each token belongs to.
      raw_words: number of tokens before out-of-vocabulary words were dropped (what gensim's
        words/second counts).
    """

    ids: np.ndarray
    sentence_ids: np.ndarray
    raw_words: int

    def __len__(self) -> int:
        return int(self.ids.size)


@dataclasses.dataclass
class Vocab:
    """Words sorted by descending count. ``index[word] -> id``; ``counts[id]``."""

    words: list[str]
    counts: np.ndarray
    raw_words: int = 0  # tokens seen while counting (all words, kept or not)
    num_sentences: int = 0

    def __post_init__(self):
        self.counts = np.asarray(self.counts, dtype=np.int64)
        self.index = {w: i for i, w in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word in self.index

    def encode(self, sentences: Iterable[list[str]]) -> Corpus:
        """Token ids of all in-vocabulary words with their sentence index."""
        index = self.index
        ids: list[int] = []
        sids: list[int] = []
        raw = 0
        for s, sentence in enumerate(sentences):
            raw += len(sentence)
            enc = [index[w] for w in sentence if w in index]
            ids.extend(enc)
            sids.extend([s] * len(enc))
        return Corpus(np.asarray(ids, np.int32), np.asarray(sids, np.int32), raw)


def count_words(
    sentences: Iterable[list[str]], max_vocab_size: int | None = None
) -> tuple[dict[str, int], int, int]:
    """Streaming word counts ``(counts, raw_words, num_sentences)``.

    With ``max_vocab_size``, whenever the table grows beyond it every word with count below an
    increasing threshold is pruned (gensim's ``prune_vocab``), bounding memory on huge corpora.
    """
    if isinstance(sentences, str):
        raise TypeError("sentences must be an iterable of token lists, not a string")
    counts: dict[str, int] = {}
    raw, n, min_reduce = 0, 0, 1
    for n, sentence in enumerate(sentences, 1):
        if isinstance(sentence, str):
            raise TypeError(
                "each sentence must be a list of tokens, got a string; split it first "
                "(e.g. [line.split() for line in lines])"
            )
        raw += len(sentence)
        for w in sentence:
            counts[w] = counts.get(w, 0) + 1
        if max_vocab_size and len(counts) > max_vocab_size:
            counts = {w: c for w, c in counts.items() if c > min_reduce}
            min_reduce += 1
    return counts, raw, n


def build_vocab(
    sentences: Iterable[list[str]],
    min_count: int = 5,
    max_vocab_size: int | None = None,
    max_final_vocab: int | None = None,
) -> Vocab:
    """Vocabulary of a corpus with gensim's ``min_count``/``max_vocab_size``/``max_final_vocab``.

    Raises:
      ValueError: empty corpus, or no word reaches ``min_count``.
    """
    if min_count < 1:
        raise ValueError(f"min_count must be >= 1, got {min_count}")
    counts, raw, n = count_words(sentences, max_vocab_size)
    if raw == 0:
        raise ValueError("the corpus is empty: it has no tokens to build a vocabulary from")
    ordered = sorted(counts.items(), key=lambda kv: -kv[1])  # stable: ties keep first-seen order
    if max_final_vocab is not None and len(ordered) > max_final_vocab:
        # gensim: raise min_count just above the count of the first word that does not fit.
        min_count = max(min_count, ordered[max_final_vocab][1] + 1)
    kept = [(w, c) for w, c in ordered if c >= min_count]
    if not kept:
        raise ValueError(
            f"min_count={min_count} removed every word (the most frequent word occurs "
            f"{ordered[0][1]} times in {raw} tokens); lower min_count or use a larger corpus"
        )
    return Vocab([w for w, _ in kept], np.array([c for _, c in kept]), raw, n)
