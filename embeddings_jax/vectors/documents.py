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


class _TagIndex(dict):
    """``key_to_index`` that also answers for int tags (their keys), so every lookup of the base
    class takes them; anything that is not a tag is simply absent."""

    @staticmethod
    def _key(key):
        if isinstance(key, numbers.Integral) and not isinstance(key, bool) and key >= 0:
            return str(int(key))
        return key

    def __getitem__(self, key):
        return super().__getitem__(self._key(key))

    def __contains__(self, key) -> bool:
        try:
            return super().__contains__(self._key(key))
        except TypeError:  # unhashable: not a key
            return False

    def get(self, key, default=None):
        return super().get(self._key(key), default)


class DocumentVectors(KeyedVectors):
    """:class:`KeyedVectors` whose lookups also take int tags (see the module docstring)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.key_to_index = _TagIndex(self.key_to_index)

    def __getitem__(self, keys):
        if isinstance(keys, numbers.Integral):
            return self.get_vector(keys)
        return super().__getitem__(keys)

    def most_similar(self, positive=None, negative=None, *args, **kwargs):
        # The base class tells keys from vectors by ``isinstance(item, str)``.
        return super().most_similar(_keys(positive), _keys(negative), *args, **kwargs)

