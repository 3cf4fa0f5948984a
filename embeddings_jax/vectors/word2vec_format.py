"""The word2vec C tool's vector files: a ``V D`` header line, then one entry per word, its vector
as text or as ``D`` little-endian floats (binary); GloVe's files are the text form without the
header. Readers take plain, ``.gz`` or ``.bz2`` files; binary ones are read in blocks."""

from __future__ import annotations

import bz2
import contextlib
import gzip
import os
import pathlib
import shutil

import numpy as np

from embeddings_jax.train.atomic import atomic_write

_BINARY_CHUNK = 1 << 20  # bytes read at a time from a word2vec binary file
_MAX_WORD_BYTES = 1 << 16  # a binary entry whose word runs longer is not word2vec binary


def open_bytes(path: pathlib.Path):
    opener = {".gz": gzip.open, ".bz2": bz2.open}.get(path.suffix, open)
    return opener(path, "rb")


@contextlib.contextmanager
def atomic_output(path, append: bool):
    """``atomic_write(path, "wb")``; with ``append`` the new file starts as a copy of the old one."""
    with atomic_write(path, "wb") as f:
        if append and os.path.isfile(path):
            with open(path, "rb") as old:
                shutil.copyfileobj(old, f)
        yield f


def read_fvocab(fvocab, errors: str) -> dict[str, int]:
    counts = {}
    with open(fvocab, "rb") as f:
        for n, line in enumerate(f, 1):
            parts = line.decode("utf-8", errors).split()
            if not parts:
                continue
            try:
                word, count = parts
                counts[word] = int(count)
            except ValueError:
                raise ValueError(f"{fvocab}:{n}: expected 'word count', got {line.strip()!r}") from None
    return counts


def read_header(f, path, encoding: str, errors: str) -> tuple[int, int]:
    try:
        line = f.readline(200)
        header = line.decode(encoding, errors).split()
        v, d = int(header[0]), int(header[1])
        if not line.endswith(b"\n") or len(header) != 2:
            raise ValueError
    except (IndexError, ValueError):
        raise ValueError(
            f"{path}: first line must be '<vocab size> <dimension>' (for a GloVe file without one, "
            "pass no_header=True)"
        ) from None
    if v < 0 or d <= 0:
        raise ValueError(f"{path}: header '{v} {d}' needs a vocabulary size >= 0 and a dimension > 0")
    return v, d


def text_shape(f, path, encoding: str, errors: str) -> tuple[int, int]:
    """``(lines, values on the first line)`` of a header-less text file (GloVe)."""
    first = f.readline()
    if not first.strip():
        raise ValueError(f"{path}: the first line is empty; a GloVe file starts with 'word v1 v2 ...'")
    d = len(_decode(first, encoding, errors, path, 0, False).rstrip().split(" ")) - 1
    if d <= 0:
        raise ValueError(f"{path}: the first line holds a word but no values")
    n, tail = 1, b""
    while block := f.read(_BINARY_CHUNK):
        n, tail = n + block.count(b"\n"), block
    if tail and not tail.endswith(b"\n"):
        n += 1  # a last line without its newline
    return n, d


def read_text(f, path, v: int, d: int, dtype, encoding: str, errors: str, first: int):
    keys, vecs = [], np.empty((v, d), dtype)
    for i in range(v):
        line = f.readline()
        if not line:
            raise ValueError(f"{path}: line {i + first}: the file ends after {i} of {v} vectors")
        parts = _decode(line, encoding, errors, path, i, False).rstrip().split(" ")
        if len(parts) != d + 1:
            raise ValueError(
                f"{path}: line {i + first} has {len(parts) - 1} values, expected {d}"
                + (" (if the file is binary, load it with binary=True)" if i == 0 else "")
            )
        keys.append(parts[0])
        try:
            vecs[i] = np.asarray(parts[1:], dtype)
        except ValueError as e:
            raise ValueError(f"{path}: line {i + first}: {e}") from None
    return keys, vecs


def read_binary(f, path, v: int, d: int, encoding: str, errors: str):
    """Entries ``word<space><d little-endian float32>``, read in large blocks."""
    size = 4 * d
    keys, vecs = [], np.empty((v, d), np.float32)
    buf, pos, eof = b"", 0, False
    for i in range(v):
        while True:
            space = buf.find(b" ", pos)
            if space >= 0 and len(buf) - space - 1 >= size:
                break
            if space < 0 and len(buf) - pos > _MAX_WORD_BYTES:
                raise ValueError(f"{path}: entry {i} has no word ending in a space within "
                                 f"{_MAX_WORD_BYTES} bytes: not a word2vec binary file")
            if eof:
                if space < 0:
                    raise ValueError(f"{path}: file ends in the middle of entry {i}")
                raise ValueError(f"{path}: truncated vector for entry {i}")
            block = f.read(_BINARY_CHUNK)
            eof = not block
            buf, pos = buf[pos:] + block, 0
        raw = buf[space + 1 : space + 1 + size]
        if i == 0 and _looks_like_text(raw):
            raise ValueError(
                f"{path} is in the word2vec text format (its first vector is written as "
                "digits), not binary: load it with binary=False"
            )
        word = buf[pos:space].lstrip(b"\n")  # the original tool ends every vector with a newline
        keys.append(_decode(word, encoding, errors, path, i, True))
        vecs[i] = np.frombuffer(raw, "<f4")
        pos = space + 1 + size
    return keys, vecs


def _looks_like_text(raw: bytes) -> bool:
    """Whether the bytes read as one binary vector are decimal numbers (a text file read as binary)."""
    return not raw.translate(None, b"0123456789.-+eE \n")


def _decode(raw: bytes, encoding: str, errors: str, path, i: int, binary: bool) -> str:
    try:
        return raw.decode(encoding, errors)
    except UnicodeDecodeError:
        hint = "" if binary else " (a binary file read as text? load it with binary=True)"
        raise ValueError(
            f"{path}: entry {i} is not valid {encoding}{hint}; pass encoding= or "
            "unicode_errors='replace' for another encoding"
        ) from None
