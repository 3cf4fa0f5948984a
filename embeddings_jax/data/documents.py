"""Tagged documents for Doc2Vec (gensim's ``TaggedDocument`` / ``TaggedLineDocument``) and the
Brown Corpus as 500 documents with their genres.

* ``TaggedDocument(words, tags)``: a token list and its tags (gensim's namedtuple).
* ``TaggedLineDocument(path)``: one document a line of a text file, tagged by its line number.
* ``load_brown_documents()``: the 500 Brown files (``ca01`` ... ``cr09``) as token lists, with
  their file ids and the 15 genres of NLTK's ``cats.txt``.
"""

from __future__ import annotations

import dataclasses
import os
import zipfile
from collections.abc import Iterator
from typing import NamedTuple

from embeddings_jax.data import registry
from embeddings_jax.data.text import LineSentence, is_brown_file


class TaggedDocument(NamedTuple):
    """A document: ``words`` (a token list) and ``tags`` (a list of str or int tags)."""

    words: list[str]
    tags: list


class TaggedLineDocument:
    """Documents of a whitespace-tokenised file, one a line, tagged by their 0-based line number
    (gensim's ``TaggedLineDocument``: an empty line is an empty document, a long line is not cut;
    re-iterable, streamed, strict UTF-8)."""

    def __init__(self, source: str | os.PathLike):
        self.file = LineSentence(source)

    def __iter__(self) -> Iterator[TaggedDocument]:
        for number, words in enumerate(self.file.lines()):
            yield TaggedDocument(words, [number])


@dataclasses.dataclass
class BrownDocuments:
    """``documents[i]`` (tokens of file ``fileids[i]``, tags stripped) and its ``genres[i]``."""

    documents: list[list[str]]
    fileids: list[str]
    genres: list[str]

    def tagged(self) -> list[TaggedDocument]:
        """Each document tagged by its position (``dv[i]`` is document ``i``)."""
        return [TaggedDocument(words, [i]) for i, words in enumerate(self.documents)]


def load_brown_documents(lower: bool = True) -> BrownDocuments:
    """The 500 Brown Corpus files as documents (1.16M tokens) and their genres (``cats.txt``)."""
    path = registry.fetch("brown", "brown.zip")
    with zipfile.ZipFile(path) as z:
        genre_of = dict(line.split() for line in z.read("brown/cats.txt").decode().splitlines() if line.strip())
        names = sorted(n for n in z.namelist() if is_brown_file(n))
        docs, ids = [], []
        for name in names:
            text = z.read(name).decode("utf-8", errors="replace")
            words = [t.rsplit("/", 1)[0] for t in text.split()]
            docs.append([w.lower() for w in words] if lower else words)
            ids.append(name.rsplit("/", 1)[-1])
    missing = [i for i in ids if i not in genre_of]
    if missing:
        raise ValueError(f"{path}: cats.txt gives no genre for {missing[:5]}")
    return BrownDocuments(docs, ids, [genre_of[i] for i in ids])
