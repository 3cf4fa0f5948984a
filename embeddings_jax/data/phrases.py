"""Collocation detection (Mikolov et al. 2013b, section 4): gensim 4.x's ``Phrases`` / ``FrozenPhrases``.

``Phrases(sentences)`` counts every word and every bigram of adjacent words; a bigram ``a b`` becomes
the token ``a_b`` when its score beats ``threshold``:

* ``"default"``: ``(count(a b) - min_count) / (count(a) * count(b)) * len_vocab`` (the paper's
  formula, scaled by the number of counted keys, unigrams and bigrams together);
* ``"npmi"``: ``ln(p(a b) / (p(a) p(b))) / -ln(p(a b))`` with ``p = count / corpus_word_count``, in
  ``[-1, 1]``, and ``-inf`` below ``min_count``;
* or any function taking the keywords ``worda_count, wordb_count, bigram_count, len_vocab,
  min_count, corpus_word_count``.

Connector words (``ENGLISH_CONNECTOR_WORDS``: articles, some prepositions and conjunctions) are
skipped over: ``bank of america`` is counted and scored as the bigram ``bank america`` and joined as
``bank_of_america``; a phrase never starts or ends with a connector. Applying a model reads a sentence
left to right and joins greedily: once ``a b`` is joined, ``b`` cannot start the next phrase. Longer
phrases (``new_york_times``) come from a second ``Phrases`` trained on the first one's output.

``model[sentence]`` transforms one token list; ``model[corpus]`` returns the corpus transformed
lazily, re-iterable when ``corpus`` is (a one-shot iterator gives a one-shot generator).
``freeze()`` keeps only the phrases that pass (``FrozenPhrases``: smaller, same output).
``save(path)`` writes JSON (settings and counts, no pickle); ``Phrases.load(path)`` reads either class.

Differences from gensim, on purpose: bad arguments raise ``ValueError`` / ``TypeError`` naming the
problem (a string where token lists belong, ``min_count < 1``, an unknown scoring name); an empty
string token is kept in the output (gensim drops it); a custom scorer is saved by import path.
"""

from __future__ import annotations

import importlib
import inspect
import itertools
import json
import logging
import math
import os
import pathlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator

from embeddings_jax.data.vocab import check_tokens
from embeddings_jax.train.atomic import atomic_write

log = logging.getLogger(__name__)

FORMAT = "embeddings_jax.phrases"
FORMAT_VERSION = 1
NEGATIVE_INFINITY = float("-inf")
_END = object()

# Words a phrase may contain in its middle but never start or end with (gensim's set).
ENGLISH_CONNECTOR_WORDS = frozenset([
    "a", "an", "the",  # articles
    "for", "of", "with", "without", "at", "from", "to", "in", "on", "by",  # prepositions, deliberately few
    "and", "or",  # conjunctions, deliberately few
])
SCORER_ARGS = ("worda_count", "wordb_count", "bigram_count", "len_vocab", "min_count", "corpus_word_count")


# ---------------------------------------------------------------- scorers (gensim's signature)
def original_scorer(worda_count, wordb_count, bigram_count, len_vocab, min_count, corpus_word_count):
    """Mikolov et al.'s ``(bigram_count - min_count) / (worda_count * wordb_count) * len_vocab``."""
    denom = worda_count * wordb_count
    if denom == 0:
        return NEGATIVE_INFINITY
    return (bigram_count - min_count) / float(denom) * len_vocab


def npmi_scorer(worda_count, wordb_count, bigram_count, len_vocab, min_count, corpus_word_count):
    """Normalised pointwise mutual information (Bouma 2009) in ``[-1, 1]``; ``-inf`` below ``min_count``."""
    if bigram_count < min_count:
        return NEGATIVE_INFINITY
    n = float(corpus_word_count)
    pa, pb, pab = worda_count / n, wordb_count / n, bigram_count / n
    try:
        return math.log(pab / (pa * pb)) / -math.log(pab)
    except (ValueError, ZeroDivisionError):  # a zero count, or pab == 1: never a phrase
        return NEGATIVE_INFINITY


SCORERS = {"default": original_scorer, "npmi": npmi_scorer}


def _resolve_scoring(scoring) -> Callable:
    if isinstance(scoring, str):
        if scoring not in SCORERS:
            raise ValueError(f"unknown scoring {scoring!r}: use 'default', 'npmi' or a function")
        return SCORERS[scoring]
    if not callable(scoring):
        raise TypeError(f"scoring must be 'default', 'npmi' or a function, got {type(scoring).__name__}")
    try:
        params = inspect.signature(scoring).parameters
    except (TypeError, ValueError):
        return scoring  # a builtin without a signature: trust it
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        positional_only = inspect.Parameter.POSITIONAL_ONLY
        missing = [a for a in SCORER_ARGS if a not in params or params[a].kind is positional_only]
        if missing:
            raise ValueError(f"the scoring function takes these keywords: {', '.join(SCORER_ARGS)}; "
                             f"it lacks {', '.join(missing)}")
    return scoring


def _scoring_name(scoring: Callable) -> str:
    """``default``, ``npmi`` or ``module:qualname`` of a function that import can find again."""
    for name, fn in SCORERS.items():
        if scoring is fn:
            return name
    module, qualname = getattr(scoring, "__module__", None), getattr(scoring, "__qualname__", "")
    found = None
    if module and "<" not in qualname:
        try:
            found = importlib.import_module(module)
            for part in qualname.split("."):
                found = getattr(found, part)
        except (ImportError, AttributeError):
            found = None
    if found is not scoring:
        raise ValueError(f"cannot save the scoring function {scoring!r}: only 'default', 'npmi' or a function "
                         "defined at the top level of an importable module (not a lambda, a closure or a "
                         "callable object) can be saved, by its 'module:name' path")
    return f"{module}:{qualname}"


def _load_scoring(name: str) -> Callable:
    if name in SCORERS:
        return SCORERS[name]
    module, _, qualname = name.partition(":")
    try:
        found = importlib.import_module(module)
        for part in qualname.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"the saved model scores with {name!r}, which cannot be imported here ({e}); "
                         "make that module importable before loading") from e
    return _resolve_scoring(found)


# ---------------------------------------------------------------- argument checks
def _check_connectors(connector_words) -> frozenset:
    if isinstance(connector_words, (str, bytes)):
        raise TypeError("connector_words must be a set of words, not a string; "
                        "e.g. frozenset('of the'.split()) or ENGLISH_CONNECTOR_WORDS")
    words = frozenset(connector_words)
    bad = [w for w in words if not isinstance(w, str)][:1]
    if bad:
        raise TypeError(f"connector_words must be strings, got {bad[0]!r}")
    return words


def _check_delimiter(delimiter) -> str:
    if not isinstance(delimiter, str):
        raise TypeError(f"delimiter must be a str, got {type(delimiter).__name__}")
    if not delimiter:
        raise ValueError("delimiter must not be empty: it joins a phrase's words and splits them again")
    return delimiter


def _check_number(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise TypeError(f"{name} must be a number, got {value!r}")
    return value


def _check_settings(min_count, threshold, scoring_fn, max_vocab_size) -> None:
    _check_number("min_count", min_count)
    if min_count < 1:
        raise ValueError(f"min_count must be at least 1, got {min_count}")
    _check_number("threshold", threshold)
    if scoring_fn is original_scorer and threshold <= 0:
        raise ValueError(f"threshold must be positive for 'default' scoring, got {threshold}")
    if scoring_fn is npmi_scorer and not -1 <= threshold <= 1:
        raise ValueError(f"threshold must be within [-1, 1] for 'npmi' scoring, got {threshold}")
    if isinstance(max_vocab_size, bool) or not isinstance(max_vocab_size, int) or max_vocab_size < 1:
        raise ValueError(f"max_vocab_size must be a positive integer, got {max_vocab_size!r}")


def _sentence(sentence, where: str) -> list:
    if isinstance(sentence, (str, bytes)):
        raise TypeError(f"{where} is a string, but a sentence must be a list of tokens; split it first "
                        "(e.g. [line.split() for line in lines])")
    return sentence if isinstance(sentence, list) else list(sentence)


def _check_corpus(sentences) -> None:
    if isinstance(sentences, (str, bytes, os.PathLike)):
        raise TypeError("got a string or path, but a sentence must be a list of tokens and a corpus "
                        "an iterable of them; split the text first (text.split()), or read a file with "
                        "embeddings_jax.data.text.LineSentence(path)")


# ---------------------------------------------------------------- counting
def _prune(vocab: Counter, min_reduce: int) -> None:
    """Drops every key counted fewer than ``min_reduce`` times (gensim's ``prune_vocab``)."""
    for key in [k for k, c in vocab.items() if c < min_reduce]:
        del vocab[key]


def candidates(sentence: list, join: Callable, connector_words: frozenset) -> tuple[list | None, list[str]]:
    """``(at, keys)``: the bigrams a phrase model counts and may join in ``sentence``. ``keys[k]`` joins
    the ``k``-th and ``k+1``-th non-connector words with the connectors between them; ``at`` holds the
    positions of the non-connector words, or is ``None`` when the sentence has no connector."""
    if connector_words and not connector_words.isdisjoint(sentence):
        at = [i for i, w in enumerate(sentence) if w not in connector_words]
        return at, [join(sentence[i:j + 1]) for i, j in itertools.pairwise(at)]
    return None, list(map(join, itertools.pairwise(sentence)))  # the common case: C loops only


def count_phrases(sentences: Iterable, *, delimiter: str = "_", connector_words: frozenset = frozenset(),
                  max_vocab_size: int = 40_000_000, progress_per: int = 10_000) -> tuple[Counter, int, int]:
    """``(vocab, min_reduce, corpus_word_count)``: counts of the non-connector words and of the
    :func:`candidates` bigrams of ``sentences``.

    Whenever a sentence leaves more than ``max_vocab_size`` keys, keys counted fewer than
    ``min_reduce`` times are dropped and ``min_reduce`` grows by one (gensim's pruning, whose first
    round drops nothing). ``corpus_word_count`` counts every token, connectors too.
    """
    _check_corpus(sentences)
    vocab: Counter = Counter()
    count, join, total, min_reduce = vocab.update, delimiter.join, 0, 1
    for n, sentence in enumerate(sentences):
        if progress_per and n % progress_per == 0:
            log.info("at sentence #%d, %d words, %d keys", n, total, len(vocab))
        sentence = _sentence(sentence, f"sentence {n}")
        total += len(sentence)
        try:
            at, keys = candidates(sentence, join, connector_words)
            count(sentence if at is None else [sentence[i] for i in at])
            count(keys)
        except TypeError as e:  # join met a token that is not a str, or one that cannot be hashed
            check_tokens(sentence)  # names the token
            raise e from None
        if len(vocab) > max_vocab_size:
            check_tokens(vocab)  # before pruning can drop the offending key
            _prune(vocab, min_reduce)
            min_reduce += 1
    check_tokens(vocab)
    return vocab, min_reduce, total


# ---------------------------------------------------------------- applying a model
class PhrasedCorpus:
    """``model[corpus]``: each sentence of ``corpus`` transformed as it is read, on every pass."""

    def __init__(self, model, corpus):
        self.model, self.corpus = model, corpus

    def __iter__(self) -> Iterator[list[str]]:
        transform = self.model._transform
        for n, sentence in enumerate(self.corpus):
            yield transform(_sentence(sentence, f"sentence {n}"))

    def __len__(self) -> int:
        return len(self.corpus)

    def __repr__(self) -> str:
        return f"PhrasedCorpus({self.model!r})"


class _PhraseModel:
    """What both models share: greedy left-to-right joining, ``[]``, ``find_phrases``, save/load."""

    connector_words: frozenset
    delimiter: str
    threshold: float
    min_count: float
    scoring: Callable

    def score_candidate(self, word_a: str, word_b: str, in_between: list[str]):
        """``(joined phrase, score)`` when ``word_a <in_between> word_b`` is a phrase, else ``(None, None)``."""
        raise NotImplementedError

    def _passing(self, sentence: list, at: list | None, keys: list[str]) -> list[tuple[int, float]]:
        """``(k, score)`` of every candidate ``keys[k]`` that is a phrase, ``k`` ascending."""
        raise NotImplementedError

    def _join(self, sentence: list) -> tuple[list[str], list[tuple[int, float]]]:
        """``(tokens, joined)``: ``sentence`` with its phrases joined, read left to right and joined
        greedily (once ``a b`` is joined, ``b`` cannot start another phrase), and ``(position in
        tokens, score)`` of each joined phrase. Every other token is kept, in order."""
        at, keys = candidates(sentence, self.delimiter.join, self.connector_words)
        hits = self._passing(sentence, at, keys) if keys else []
        if not hits:
            return list(sentence), []
        out, joined, done, free = [], [], 0, 0
        for k, score in hits:
            if k < free:  # its first word already ends the phrase before
                continue
            first, last = (k, k + 1) if at is None else (at[k], at[k + 1])
            out += sentence[done:first]
            joined.append((len(out), score))
            out.append(keys[k])
            done, free = last + 1, k + 2
        out += sentence[done:]
        return out, joined

    def analyze_sentence(self, sentence) -> Iterator[tuple[str, float | None]]:
        """Yields ``(phrase, score)`` for each joined phrase and ``(word, None)`` for every other token."""
        tokens, joined = self._join(_sentence(sentence, "the sentence"))
        scores = dict(joined)
        for i, token in enumerate(tokens):
            yield token, scores.get(i)

    def _transform(self, sentence: list) -> list[str]:
        return self._join(sentence)[0]

    def __getitem__(self, sentence_or_corpus):
        """One sentence (token list) -> its tokens with phrases joined; a corpus -> ``PhrasedCorpus``
        (a generator when the corpus is a one-shot iterator)."""
        obj = sentence_or_corpus
        _check_corpus(obj)
        it = iter(obj)
        first = next(it, _END)
        if first is _END:  # nothing: an empty sentence, as in gensim
            return []
        if isinstance(first, str):
            return self._transform([first, *it])
        if not isinstance(first, Iterable):
            raise TypeError(f"expected a sentence (a list of str tokens) or a corpus of them, but its first "
                            f"item is {first!r}")
        if it is obj:  # a one-shot iterator stays one-shot: a second pass would silently see nothing
            stream = enumerate(itertools.chain([first], it))
            return (self._transform(_sentence(s, f"sentence {n}")) for n, s in stream)
        return PhrasedCorpus(self, obj)

    def find_phrases(self, sentences: Iterable) -> dict[str, float]:
        """Every phrase joined in ``sentences``, with its score."""
        _check_corpus(sentences)
        found = {}
        for n, sentence in enumerate(sentences):
            tokens, joined = self._join(_sentence(sentence, f"sentence {n}"))
            for i, score in joined:
                found[tokens[i]] = score
        return found

    # ------------------------------------------------------------ save / load
    def _settings(self) -> dict:
        return {"min_count": self.min_count, "threshold": self.threshold, "delimiter": self.delimiter,
                "scoring": _scoring_name(self.scoring), "connector_words": sorted(self.connector_words)}

    def save(self, path) -> None:
        """Writes the model as JSON (atomically). A custom scorer is stored by its ``module:name`` path,
        which ``load`` imports again: load only files you trust."""
        record = {"format": FORMAT, "version": FORMAT_VERSION, "class": type(self).__name__,
                  "settings": self._settings(), **self._state()}
        with atomic_write(path) as f:
            json.dump(record, f, ensure_ascii=False)

    @classmethod
    def load(cls, path) -> Phrases | FrozenPhrases:
        """The model saved at ``path``, of the class it was saved as (``Phrases`` or ``FrozenPhrases``)."""
        path = pathlib.Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no saved phrases model at {path}")
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"{path} is not a phrases model saved by embeddings_jax (not JSON: {e}); "
                             "a gensim pickle loads with gensim, then Phrases.from_gensim(model)") from e
        if not isinstance(record, dict) or record.get("format") != FORMAT:
            raise ValueError(f"{path} is not a phrases model saved by embeddings_jax")
        if record.get("version") != FORMAT_VERSION:
            raise ValueError(f"{path} has format version {record.get('version')}; this library reads "
                             f"version {FORMAT_VERSION}")
        kinds = {"Phrases": Phrases, "FrozenPhrases": FrozenPhrases}
        if record.get("class") not in kinds:
            raise ValueError(f"{path} holds an unknown model class {record.get('class')!r}")
        try:
            return kinds[record["class"]]._from_record(record)
        except (KeyError, AttributeError, TypeError) as e:
            raise ValueError(f"{path} is a damaged phrases model ({type(e).__name__}: {e})") from e


class Phrases(_PhraseModel):
    """Counts unigrams and bigrams of ``sentences`` and joins the bigrams that score above ``threshold``.

    Args (gensim's, same defaults):
      sentences: re-iterable or one-shot token lists; read once. ``None`` to count later with ``add_vocab``.
      min_count: at least 1; subtracted from a bigram's count by ``"default"`` scoring, the minimum
        bigram count for ``"npmi"``.
      threshold: a phrase scores strictly above it; positive for ``"default"``, in ``[-1, 1]`` for ``"npmi"``.
      max_vocab_size: the most keys (unigrams + bigrams) kept while counting; beyond it the rarest are pruned.
      delimiter: joins a phrase's words (``new_york``).
      progress_per: logs progress every this many sentences (``logging`` INFO).
      scoring: ``"default"``, ``"npmi"`` or a function of :data:`SCORER_ARGS` (keywords).
      connector_words: words phrases may span but not start or end with, e.g. ``ENGLISH_CONNECTOR_WORDS``.

    Attributes: ``vocab`` (key -> count), ``corpus_word_count``, ``min_reduce`` and the settings.
    """

    def __init__(self, sentences: Iterable | None = None, min_count: float = 5, threshold: float = 10.0,
                 max_vocab_size: int = 40_000_000, delimiter: str = "_", progress_per: int = 10_000,
                 scoring: str | Callable = "default", connector_words: Iterable[str] = frozenset()):
        self.scoring = _resolve_scoring(scoring)
        _check_settings(min_count, threshold, self.scoring, max_vocab_size)
        self.min_count, self.threshold, self.max_vocab_size = min_count, threshold, max_vocab_size
        self.delimiter = _check_delimiter(delimiter)
        self.progress_per = progress_per
        self.connector_words = _check_connectors(connector_words)
        self.vocab: Counter = Counter()
        self.min_reduce = 1
        self.corpus_word_count = 0
        if sentences is not None:
            self.add_vocab(sentences)

    def __repr__(self) -> str:
        return (f"Phrases<{len(self.vocab)} vocab, min_count={self.min_count}, threshold={self.threshold}, "
                f"max_vocab_size={self.max_vocab_size}>")

    def add_vocab(self, sentences: Iterable) -> None:
        """Counts ``sentences`` and adds them to the model (pruned as gensim does when too many keys)."""
        vocab, min_reduce, total = count_phrases(
            sentences, delimiter=self.delimiter, connector_words=self.connector_words,
            max_vocab_size=self.max_vocab_size, progress_per=self.progress_per)
        self.corpus_word_count += total
        if not self.vocab:  # as gensim: the new counts are taken whole, min_reduce is not carried over
            self.vocab = vocab
            return
        # New counts were gathered apart so that they are not pruned against the old, larger ones.
        self.min_reduce = max(self.min_reduce, min_reduce)
        self.vocab.update(vocab)
        if len(self.vocab) > self.max_vocab_size:
            _prune(self.vocab, self.min_reduce)
            self.min_reduce += 1

    def score_candidate(self, word_a, word_b, in_between):
        vocab = self.vocab
        count_a = vocab.get(word_a, 0)
        if count_a <= 0:
            return None, None
        count_b = vocab.get(word_b, 0)
        if count_b <= 0:
            return None, None
        phrase = self.delimiter.join([word_a, *in_between, word_b])
        count_ab = vocab.get(phrase, 0)
        if count_ab <= 0:
            return None, None
        score = self.scoring(worda_count=count_a, wordb_count=count_b, bigram_count=count_ab,
                             len_vocab=len(vocab), min_count=self.min_count,
                             corpus_word_count=self.corpus_word_count)
        if score <= self.threshold:
            return None, None
        return phrase, score

    def _passing(self, sentence, at, keys):
        # score_candidate for every candidate at once: the counts are looked up in C.
        get, zeros = self.vocab.get, itertools.repeat(0)
        counts = list(map(get, sentence if at is None else [sentence[i] for i in at], zeros))
        scoring, threshold, min_count = self.scoring, self.threshold, self.min_count
        len_vocab, corpus_word_count = len(self.vocab), self.corpus_word_count
        if scoring not in SCORERS.values():  # ours take their arguments in order; others by name
            def scoring(a, b, ab, n, m, total, custom=scoring):
                return custom(worda_count=a, wordb_count=b, bigram_count=ab, len_vocab=n, min_count=m,
                              corpus_word_count=total)
        hits = []
        triples = zip(counts, itertools.islice(counts, 1, None), map(get, keys, zeros))
        for k, (count_a, count_b, count_ab) in enumerate(triples):
            if count_ab > 0 and count_a > 0 and count_b > 0:
                score = scoring(count_a, count_b, count_ab, len_vocab, min_count, corpus_word_count)
                if score <= threshold:  # as gensim: a NaN score passes here, and fails in FrozenPhrases
                    continue
                hits.append((k, score))
        return hits

    def export_phrases(self) -> dict[str, float]:
        """Every counted bigram that scores above ``threshold``, with its score."""
        found = {}
        for key in self.vocab:
            words = key.split(self.delimiter)
            if len(words) > 1:
                phrase, score = self.score_candidate(words[0], words[-1], words[1:-1])
                if score is not None:
                    found[phrase] = score
        return found

    def freeze(self) -> FrozenPhrases:
        """A ``FrozenPhrases`` holding only the phrases that pass: smaller and faster, same output."""
        return FrozenPhrases(self)

    def _state(self) -> dict:
        return {"max_vocab_size": self.max_vocab_size, "progress_per": self.progress_per,
                "min_reduce": self.min_reduce, "corpus_word_count": self.corpus_word_count,
                "vocab": dict(self.vocab)}

    @classmethod
    def _from_record(cls, record: dict) -> Phrases:
        s = record["settings"]
        model = cls(min_count=s["min_count"], threshold=s["threshold"], max_vocab_size=record["max_vocab_size"],
                    delimiter=s["delimiter"], progress_per=record["progress_per"],
                    scoring=_load_scoring(s["scoring"]), connector_words=s["connector_words"])
        model.vocab = Counter(record["vocab"])
        model.min_reduce, model.corpus_word_count = record["min_reduce"], record["corpus_word_count"]
        return model

    @classmethod
    def from_gensim(cls, model) -> Phrases:
        """A copy of a gensim ``Phrases`` (e.g. one loaded from its pickle with gensim)."""
        ours = cls(min_count=model.min_count, threshold=model.threshold, max_vocab_size=model.max_vocab_size,
                   delimiter=model.delimiter, progress_per=model.progress_per,
                   scoring=_from_gensim_scoring(model.scoring), connector_words=model.connector_words)
        ours.vocab = Counter(model.vocab)
        ours.min_reduce, ours.corpus_word_count = model.min_reduce, model.corpus_word_count
        return ours


class FrozenPhrases(_PhraseModel):
    """The phrases of a trained ``Phrases`` and their scores, nothing more: no counts, no updates."""

    def __init__(self, phrases_model: Phrases):
        if not hasattr(phrases_model, "export_phrases"):
            raise TypeError("FrozenPhrases freezes a trained Phrases model, got "
                            f"{type(phrases_model).__name__}; FrozenPhrases.load(path) reads a saved one")
        self.threshold, self.min_count = phrases_model.threshold, phrases_model.min_count
        self.delimiter, self.scoring = phrases_model.delimiter, phrases_model.scoring
        self.connector_words = phrases_model.connector_words
        self.phrasegrams: dict[str, float] = phrases_model.export_phrases()

    def __repr__(self) -> str:
        return (f"FrozenPhrases<{len(self.phrasegrams)} phrases, min_count={self.min_count}, "
                f"threshold={self.threshold}>")

    def score_candidate(self, word_a, word_b, in_between):
        phrase = self.delimiter.join([word_a, *in_between, word_b])
        score = self.phrasegrams.get(phrase, NEGATIVE_INFINITY)
        if score > self.threshold:
            return phrase, score
        return None, None

    def _passing(self, sentence, at, keys):
        grams, threshold = self.phrasegrams, self.threshold
        if grams.keys().isdisjoint(keys):  # most sentences: checked in C
            return []
        scores = enumerate(map(grams.get, keys))
        return [(k, score) for k, score in scores if score is not None and score > threshold]

    def _state(self) -> dict:
        return {"phrasegrams": self.phrasegrams}

    @classmethod
    def _from_record(cls, record: dict) -> FrozenPhrases:
        s = record["settings"]
        return cls._build(s["threshold"], s["min_count"], s["delimiter"], _load_scoring(s["scoring"]),
                          s["connector_words"], record["phrasegrams"])

    @classmethod
    def _build(cls, threshold, min_count, delimiter, scoring, connector_words, phrasegrams) -> FrozenPhrases:
        model = cls.__new__(cls)
        model.threshold, model.min_count = _check_number("threshold", threshold), min_count
        model.delimiter, model.scoring = _check_delimiter(delimiter), _resolve_scoring(scoring)
        model.connector_words = _check_connectors(connector_words)
        model.phrasegrams = {str(k): float(v) for k, v in phrasegrams.items()}
        return model

    @classmethod
    def from_gensim(cls, model) -> FrozenPhrases:
        """A copy of a gensim ``FrozenPhrases`` (or a gensim ``Phrases``, frozen)."""
        if not hasattr(model, "phrasegrams"):
            return Phrases.from_gensim(model).freeze()
        return cls._build(model.threshold, model.min_count, model.delimiter,
                          _from_gensim_scoring(model.scoring), model.connector_words, model.phrasegrams)


def _from_gensim_scoring(scoring):
    """gensim's two built-in scorers map to ours (same formulas); any other function is kept."""
    if getattr(scoring, "__module__", None) == "gensim.models.phrases":
        name = {"original_scorer": "default", "npmi_scorer": "npmi"}.get(getattr(scoring, "__name__", None))
        if name:
            return name
    return scoring
