"""Document vectors keyed by their tags (gensim's ``Doc2Vec.dv``).

gensim lets a document's tags be ints or strings: int tags ``0 .. n - 1`` are the first rows,
string tags follow in first-seen order. Here every key is a string (as in every
:class:`~embeddings_jax.vectors.KeyedVectors`): an int tag ``i`` is the key ``str(i)`` and may
be looked up, queried and tested as ``i``; results name it ``"i"``.
"""

from __future__ import annotations

import numbers

from embeddings_jax.vectors.keyed import KeyedVectors


def tag_key(tag) -> str:
    """The key of a document tag: a string as it is, an int as its decimal string."""
    if isinstance(tag, str):
        return tag
    if isinstance(tag, numbers.Integral) and not isinstance(tag, bool):
        if tag < 0:
            raise ValueError(f"int document tags must be >= 0, got {tag}")
        return str(int(tag))
    raise TypeError(f"document tags must be str or int, got {tag!r} ({type(tag).__name__})")


def _keys(items):
    """gensim's query forms (a tag, a vector, a list of them, ``(item, weight)`` pairs) with
    int tags turned into their keys; vectors pass unchanged."""
    if items is None or isinstance(items, str):
        return items
    if isinstance(items, numbers.Integral):
        return tag_key(items)
    if isinstance(items, tuple) and len(items) == 2 and isinstance(items[1], numbers.Real):
        return (_keys(items[0]), items[1])
    if isinstance(items, list):
        return [_keys(i) for i in items]
    return items


class DocumentVectors(KeyedVectors):
    """:class:`KeyedVectors` whose lookups also take int tags (see the module docstring)."""

    def __contains__(self, key) -> bool:
        return isinstance(key, (str, numbers.Integral)) and super().__contains__(_keys(key))

    def has_index_for(self, key) -> bool:
        return key in self

    def get_index(self, key, default=None) -> int:
        return super().get_index(_keys(key) if isinstance(key, numbers.Integral) else key, default)

    def __getitem__(self, keys):
        if isinstance(keys, numbers.Integral):
            return self.get_vector(keys)
        return super().__getitem__(keys)

    def most_similar(self, positive=None, negative=None, *args, **kwargs):
        return super().most_similar(_keys(positive), _keys(negative), *args, **kwargs)

    def similar_by_key(self, key, *args, **kwargs):
        return super().similar_by_key(_keys(key), *args, **kwargs)

    def similarity(self, w1, w2) -> float:
        return super().similarity(_keys(w1), _keys(w2))

    def distance(self, w1, w2) -> float:
        return super().distance(_keys(w1), _keys(w2))
