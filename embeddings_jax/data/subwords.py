"""fastText's character n-grams (Bojanowski et al., 2017) and their hashed bucket rows.

A word is wrapped as ``<word>``; its n-grams are the substrings of ``min_n..max_n`` characters
(UTF-8 characters, not bytes), each hashed by 32-bit FNV-1a over its bytes into one of ``bucket``
rows. The hash reads each byte as a *signed* char, as fastText's C++ does, so the rows of a word
with non-ASCII letters match the ``fasttext`` package's and gensim's, and ``.bin`` files
interoperate. In fastText's input table, row ``i < V`` is word ``i`` and row ``V + h`` is
bucket ``h``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

FNV_OFFSET, FNV_PRIME = 2166136261, 16777619
BOW, EOW = "<", ">"
EOS = "</s>"  # fastText's end-of-line token: a word of its vocabulary without n-grams


def _fnv_step(h: int, byte: int) -> int:
    """One FNV-1a step; bytes >= 0x80 are sign-extended (C++ ``uint32_t(int8_t(c))``)."""
    return ((h ^ (byte | 0xFFFFFF00 if byte & 0x80 else byte)) * FNV_PRIME) & 0xFFFFFFFF


def ft_hash(data: str | bytes) -> int:
    """fastText's 32-bit hash of a string (its UTF-8 bytes)."""
    h = FNV_OFFSET
    for byte in data.encode("utf-8") if isinstance(data, str) else data:
        h = _fnv_step(h, byte)
    return h


def _ngrams(word: str, min_n: int, max_n: int):
    """``(bytes, hash)`` of each n-gram of ``<word>``, in fastText's order (by start, then length).
    Single characters at the ends (``<`` and ``>`` alone) are skipped, as in fastText."""
    b = (BOW + word + EOW).encode("utf-8")
    size = len(b)
    for i in range(size):
        if b[i] & 0xC0 == 0x80:  # a UTF-8 continuation byte starts no character
            continue
        h, j, n = FNV_OFFSET, i, 0
        while j < size and n < max_n:
            h = _fnv_step(h, b[j])
            j += 1
            while j < size and b[j] & 0xC0 == 0x80:
                h = _fnv_step(h, b[j])
                j += 1
            n += 1
            if n >= min_n and not (n == 1 and (i == 0 or j == size)):
                yield b[i:j], h


def char_ngrams(word: str, min_n: int = 3, max_n: int = 6) -> list[str]:
    """The character n-grams of ``<word>`` (duplicates kept, as fastText trains them)."""
    return [g.decode("utf-8") for g, _ in _ngrams(word, min_n, max_n)]


def ngram_buckets(word: str, min_n: int = 3, max_n: int = 6, bucket: int = 2_000_000) -> list[int]:
    """The bucket of each n-gram of ``word`` (``hash % bucket``); empty when ``bucket == 0``."""
    if bucket <= 0 or max_n < min_n:
        return []
    return [h % bucket for _, h in _ngrams(word, min_n, max_n)]


def check_ngram_settings(min_n: int, max_n: int, bucket: int) -> None:
    """Integers with ``min_n >= 1`` and ``max_n, bucket >= 0`` (``max_n < min_n`` or ``bucket =
    0`` means no n-grams: plain word vectors)."""
    for name, v in (("min_n", min_n), ("max_n", max_n), ("bucket", bucket)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"{name} must be an integer, got {v!r}")
    if min_n < 1 or max_n < 0 or bucket < 0:
        raise ValueError(f"need min_n >= 1, max_n >= 0 and bucket >= 0 (got min_n={min_n}, "
                         f"max_n={max_n}, bucket={bucket})")


def subword_rows(words: Sequence[str], min_n: int, max_n: int, bucket: int):
    """Every word's rows of fastText's input table, flattened.

    Returns ``(starts [V + 1] int64, rows [N] int32)``: word ``i``'s rows are
    ``rows[starts[i]:starts[i + 1]]``, its own row ``i`` first, then ``V + b`` for each n-gram
    bucket ``b`` (with repeats, as fastText; none for fastText's ``</s>``). ``V + bucket`` must
    fit in int32.
    """
    check_ngram_settings(min_n, max_n, bucket)
    v = len(words)
    if v + bucket >= 2**31:
        raise ValueError(f"{v} words + {bucket} buckets exceed the int32 row range")
    per_word = [[i] + ([] if w == EOS else [v + b for b in ngram_buckets(w, min_n, max_n, bucket)])
                for i, w in enumerate(words)]
    lengths = np.fromiter((len(r) for r in per_word), np.int64, count=v)
    starts = np.zeros(v + 1, np.int64)
    np.cumsum(lengths, out=starts[1:])
    rows = np.fromiter((r for rs in per_word for r in rs), np.int32, count=int(starts[-1]))
    return starts, rows
