"""Vocabulary building and corpus encoding for word2vec (gensim semantics).

``build_vocab`` streams token counts (pruning rare words when ``max_vocab_size`` is exceeded, as
gensim does), drops words below ``min_count`` (raised automatically to honour
``max_final_vocab``) and sorts the rest by descending frequency, ties in first-seen order.
``Vocab.encode`` turns sentences into one int32 array that marks sentence starts; words outside the
vocabulary are dropped, as in gensim.
"""

from __future__ import annotations

import array
import dataclasses
from collections.abc import Iterable

import numpy as np


@dataclasses.dataclass
class Corpus:
    """An encoded corpus, held as 4 bytes per in-vocabulary token.

    Attributes:
      tokens: ``[N] int32`` token ``i`` of a sentence as ``id << 1``, plus 1 on the sentence's
        first in-vocabulary token (:func:`pack_tokens`); sentences concatenated. A chunk of it
        carries its own sentence boundaries, so no ``[N]`` array of sentence ids is kept.
      raw_words: number of tokens before out-of-vocabulary words were dropped (what gensim's
        words/second counts).
      num_sentences: sentences read (gensim's ``corpus_count``).
    """

    tokens: np.ndarray
    raw_words: int
    num_sentences: int = 0

    def __len__(self) -> int:
        return int(self.tokens.size)

    @property
    def ids(self) -> np.ndarray:
        """``[N] int32`` token ids."""
        return self.tokens >> 1

    @property
    def sentence_ids(self) -> np.ndarray:
        """``[N] int32`` index of each token's sentence among the sentences with a token."""
        return (np.cumsum(self.tokens & 1) - 1).astype(np.int32)

    def longest_sentence(self) -> int:
        """In-vocabulary tokens of the longest sentence (0 for an empty corpus)."""
        starts = np.flatnonzero(self.tokens & 1)
        return int(np.diff(starts, append=len(self)).max()) if starts.size else 0


def pack_tokens(ids: np.ndarray, sentence_ids: np.ndarray) -> np.ndarray:
    """``[N] int32`` :attr:`Corpus.tokens` from token ids and non-decreasing sentence ids."""
    ids, sentence_ids = np.asarray(ids, np.int32), np.asarray(sentence_ids)
    starts = np.ones(ids.shape, np.int32)
    starts[1:] = sentence_ids[1:] != sentence_ids[:-1]
    return (ids << 1) | starts


def unpack_tokens(tokens):
    """``(ids, sentence_ids)`` of a slice of :attr:`Corpus.tokens` (numpy or jax), padding
    (``-1``) with id 0 and sentence ``-1``; sentence ids count the starts within the slice."""
    valid = (tokens >= 0).astype(tokens.dtype)
    sentence = ((tokens & 1) * valid).cumsum() * valid + valid - 1
    return (tokens >> 1) * valid, sentence


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

    def encode(self, sentences: Iterable[list[str]], kept: list[int] | None = None) -> Corpus:
        """The in-vocabulary words of ``sentences`` (any iterable, read once) as a :class:`Corpus`,
        built in a compact buffer of 4 bytes per token (no Python list of the corpus). ``kept``,
        when given, receives the index of every sentence that kept a token (Doc2Vec's rows)."""
        index = self.index
        buf = array.array("i")
        raw, n = 0, 0
        for n, sentence in enumerate(sentences, 1):
            raw += len(sentence)
            enc = [index[w] << 1 for w in sentence if w in index]
            if enc:
                enc[0] |= 1
                buf.extend(enc)
                if kept is not None:
                    kept.append(n - 1)
        return Corpus(np.frombuffer(buf, np.int32) if buf else np.zeros(0, np.int32), raw, n)


def count_words(
    sentences: Iterable[list[str]], max_vocab_size: int | None = None, trim_rule=None
) -> tuple[dict[str, int], int, int]:
    """Streaming word counts ``(counts, raw_words, num_sentences)``.

    With ``max_vocab_size``, whenever the table grows beyond it the words that `keeps_word` would
    drop at an increasing threshold (1, 2, 3, ...; ``trim_rule`` consulted) are pruned, as gensim's
    ``prune_vocab`` does (so its first pruning keeps every word), bounding memory on huge corpora.
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
            check_tokens(counts)  # before pruning can drop the offending key
            counts = {w: c for w, c in counts.items() if keeps_word(w, c, min_reduce, trim_rule)}
            min_reduce += 1
    check_tokens(counts)
    return counts, raw, n


def check_tokens(counts) -> None:
    """Every distinct token a string: checked on the V keys of ``counts`` (or on a token list),
    not on each of the N tokens; raises ``TypeError`` naming the first other one."""
    bad = [w for w in counts if not isinstance(w, str)][:1]  # a list: the bad token may be None
    if bad:
        bad = bad[0]
        raise TypeError(
            f"the corpus holds a token of type {type(bad).__name__} ({bad!r}); tokens must be strings "
            "(convert them, e.g. [str(t) for t in sentence])"
        )


# Answers of a gensim ``trim_rule(word, count, min_count)`` (``gensim.utils.RULE_*``).
RULE_DEFAULT, RULE_DISCARD, RULE_KEEP = 0, 1, 2


def keeps_word(word: str, count: int, min_count: int, trim_rule=None) -> bool:
    """Whether a word stays in the vocabulary: ``trim_rule``'s answer, else ``count >= min_count``."""
    rule = RULE_DEFAULT if trim_rule is None else trim_rule(word, count, min_count)
    if rule not in (RULE_DEFAULT, RULE_DISCARD, RULE_KEEP):
        raise ValueError(f"trim_rule returned {rule!r} for {word!r}; it must return 0 (default), "
                         "1 (discard) or 2 (keep)")
    return rule == RULE_KEEP or (rule == RULE_DEFAULT and count >= min_count)


def build_vocab(
    sentences: Iterable[list[str]],
    min_count: int = 5,
    max_vocab_size: int | None = None,
    max_final_vocab: int | None = None,
    *,
    trim_rule=None,
    sorted_vocab: bool = True,
    null_word: bool = False,
) -> Vocab:
    """Vocabulary of a corpus with gensim's ``min_count``/``max_vocab_size``/``max_final_vocab``.

    ``trim_rule(word, count, min_count)`` may keep (``RULE_KEEP``) or discard (``RULE_DISCARD``) a
    word whatever its count; ``RULE_DEFAULT`` applies ``min_count``. ``sorted_vocab=False`` keeps
    first-seen order; ``null_word`` appends gensim's ``"\\0"`` word (count 1).

    Raises:
      ValueError: empty corpus, or no word reaches ``min_count``.
    """
    _check_vocab_options(min_count, trim_rule)
    counts, raw, n = count_words(sentences, max_vocab_size, trim_rule)
    if raw == 0:
        raise ValueError("the corpus is empty: it has no tokens to build a vocabulary from")
    return vocab_from_counts(counts, raw, n, min_count, max_final_vocab, trim_rule=trim_rule,
                             sorted_vocab=sorted_vocab, null_word=null_word)


def _check_vocab_options(min_count: int, trim_rule) -> None:
    if min_count < 1:
        raise ValueError(f"min_count must be >= 1, got {min_count}")
    if trim_rule is not None and not callable(trim_rule):
        raise ValueError(f"trim_rule must be a function (word, count, min_count) -> 0/1/2, got {trim_rule!r}")


def vocab_from_counts(
    counts: dict[str, int],
    raw_words: int,
    num_sentences: int,
    min_count: int = 5,
    max_final_vocab: int | None = None,
    *,
    trim_rule=None,
    sorted_vocab: bool = True,
    null_word: bool = False,
) -> Vocab:
    """The :func:`build_vocab` rules applied to ready ``{word: count}`` (insertion order is the
    first-seen order that breaks ties); ``raw_words``/``num_sentences`` describe the counted corpus.

    Raises:
      ValueError: no counts, or no word reaches ``min_count``.
    """
    _check_vocab_options(min_count, trim_rule)
    if not counts:
        raise ValueError("there are no word counts to build a vocabulary from")
    ordered = sorted(counts.items(), key=lambda kv: -kv[1])  # stable: ties keep first-seen order
    if max_final_vocab is not None and len(ordered) > max_final_vocab:
        # gensim: raise min_count just above the count of the first word that does not fit.
        min_count = max(min_count, ordered[max_final_vocab][1] + 1)
    kept = [(w, c) for w, c in (ordered if sorted_vocab else counts.items())
            if keeps_word(w, c, min_count, trim_rule)]
    if null_word:
        kept.append(("\0", 1))
    if not kept:
        raise ValueError(
            f"min_count={min_count} removed every word (the most frequent word occurs "
            f"{ordered[0][1]} times in {raw_words} tokens); lower min_count or use a larger corpus"
        )
    return Vocab([w for w, _ in kept], np.array([c for _, c in kept]), raw_words, num_sentences)
