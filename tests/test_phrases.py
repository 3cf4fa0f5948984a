"""Phrases / FrozenPhrases against gensim 4.x: the same counts, scores, joined sentences and pruning."""

import inspect
import json

import pytest

from embeddings_jax.data import phrases as P

gensim_phrases = pytest.importorskip("gensim.models.phrases")

SMALL = [line.split() for line in [
    "new york is big and new york is old",
    "the bank of america is in new york",
    "machine learning and deep learning in new york",
    "she works for the bank of america on machine learning",
    "the mayor of new york likes machine learning",
    "bank of america bank of america of the of",
    "of the and",
    "new",
    "",
    "york new york new york new",
]]
# (scoring, threshold, min_count): both built-in scorers, a strict and a loose setting each, all finding
# phrases in both corpora; Brown also gets gensim's defaults (10, 5), which find none in the small one.
SETTINGS = [("default", 1.0, 3), ("default", 0.5, 2), ("npmi", 0.5, 3), ("npmi", -0.2, 2)]
CASES = ([("small", s) for s in SETTINGS] + [("brown", ("default", 10.0, 5))]
         + [("brown", s) for s in SETTINGS if s != ("default", 0.5, 2)])
CONNECTORS = {"none": frozenset(), "english": P.ENGLISH_CONNECTOR_WORDS}


@pytest.fixture(scope="module")
def brown():
    from embeddings_jax.data import registry, text

    if not registry.is_available("brown"):
        pytest.skip(f"dataset 'brown' not in {registry.data_dir()} (set EMBEDDINGS_JAX_DATA)")
    return text.load_brown()[:5000]


def corpus(name, brown_fixture):
    return SMALL * 3 if name == "small" else brown_fixture


def kwargs(scoring, threshold, min_count, connectors):
    return {"scoring": scoring, "threshold": threshold, "min_count": min_count,
            "connector_words": CONNECTORS[connectors]}


def assert_same_scores(ours: dict, theirs: dict):
    assert ours.keys() == theirs.keys()
    assert all(abs(ours[k] - theirs[k]) <= 1e-9 for k in theirs), "scores differ"


def assert_same_counts(ours: P.Phrases, theirs):
    assert dict(ours.vocab) == theirs.vocab
    assert (ours.corpus_word_count, ours.min_reduce) == (theirs.corpus_word_count, theirs.min_reduce)


def longer_phrase_scorer(worda_count, wordb_count, bigram_count, len_vocab, min_count, corpus_word_count):
    """A custom scorer at module level, so that a model using it can be saved by import path."""
    return bigram_count / (worda_count + wordb_count) * 10


@pytest.mark.parametrize("connectors", list(CONNECTORS))
@pytest.mark.parametrize(("name", "setting"), CASES, ids=[f"{n}-{s[0]}-{s[1]}-{s[2]}" for n, s in CASES])
def test_same_phrases_and_sentences_as_gensim(name, setting, connectors, brown):
    sentences = corpus(name, brown)
    kw = kwargs(*setting, connectors)
    ours, theirs = P.Phrases(sentences, **kw), gensim_phrases.Phrases(sentences, **kw)
    assert_same_counts(ours, theirs)
    exported = theirs.export_phrases()
    assert exported, "a setting that finds no phrase tests nothing"
    assert_same_scores(ours.export_phrases(), exported)
    assert_same_scores(ours.find_phrases(sentences), theirs.find_phrases(sentences))
    frozen = ours.freeze()  # gensim's FrozenPhrases holds export_phrases()
    assert_same_scores(frozen.phrasegrams, exported)
    expected = list(theirs[sentences])
    assert list(ours[sentences]) == expected and list(frozen[sentences]) == expected
    assert [ours[s] for s in sentences[:1000]] == expected[:1000]  # one sentence at a time
    for s in sentences[:100]:
        assert list(ours.analyze_sentence(s)) == list(theirs.analyze_sentence(s))


def test_connectors_span_but_never_start_or_end_a_phrase():
    model = P.Phrases(SMALL * 3, min_count=1, threshold=1.0, connector_words=P.ENGLISH_CONNECTOR_WORDS)
    out = model[["the", "bank", "of", "america", "of", "the"]]
    assert out == ["the", "bank_of_america", "of", "the"]
    assert model[["of", "the"]] == ["of", "the"]
    # Greedy, left to right: once "york new" is joined, "new york" cannot be.
    model = P.Phrases([["york", "new", "york", "new"]] * 3, min_count=1, threshold=0.1)
    assert model.export_phrases().keys() == {"new_york", "york_new"}
    assert model[["york", "new", "york", "new"]] == ["york_new", "york_new"]
    assert model[["new", "york", "new", "york"]] == ["new_york", "new_york"]
    assert model[["new", "york", "york", "new"]] == ["new_york", "york_new"]


def test_the_default_scorer_uses_len_vocab_and_min_count():
    model = P.Phrases(SMALL, min_count=2, threshold=0.1)
    a, b, ab = model.vocab["new"], model.vocab["york"], model.vocab["new_york"]
    expected = (ab - 2) / (a * b) * len(model.vocab)
    assert model.export_phrases()["new_york"] == pytest.approx(expected, rel=1e-15)


def test_custom_scorer_matches_gensim_and_saves_by_import_path(tmp_path):
    kw = {"scoring": longer_phrase_scorer, "threshold": 2.0, "min_count": 1,
          "connector_words": P.ENGLISH_CONNECTOR_WORDS}
    ours, theirs = P.Phrases(SMALL * 3, **kw), gensim_phrases.Phrases(SMALL * 3, **kw)
    assert_same_scores(ours.export_phrases(), theirs.export_phrases())
    ours.save(tmp_path / "custom.json")
    saved = json.loads((tmp_path / "custom.json").read_text())
    assert saved["settings"]["scoring"].endswith(":longer_phrase_scorer")
    loaded = P.Phrases.load(tmp_path / "custom.json")
    assert loaded.scoring is longer_phrase_scorer
    assert loaded.export_phrases() == ours.export_phrases()


def test_a_scorer_that_cannot_be_imported_again_is_refused_at_save(tmp_path):
    def local(worda_count, wordb_count, bigram_count, len_vocab, min_count, corpus_word_count):
        return 1.0

    model = P.Phrases(SMALL, scoring=local, threshold=0.5, min_count=1)
    assert model[["new", "york"]] == ["new_york"]
    for m in (model, model.freeze()):
        with pytest.raises(ValueError, match="cannot save the scoring function"):
            m.save(tmp_path / "local.json")
    assert not list(tmp_path.iterdir())


def test_frozen_equals_unfrozen_after_threshold_is_raised(brown):
    model = P.Phrases(brown, min_count=3, threshold=5.0, connector_words=P.ENGLISH_CONNECTOR_WORDS)
    frozen = model.freeze()
    assert list(frozen[brown]) == list(model[brown])
    model.threshold = frozen.threshold = 50.0  # gensim users tune it after training
    assert list(frozen[brown]) == list(model[brown])
    assert frozen.find_phrases(brown) == model.find_phrases(brown)


@pytest.mark.parametrize("connectors", list(CONNECTORS))
def test_add_vocab_equals_training_on_the_concatenation(connectors, brown):
    kw = kwargs("default", 5.0, 2, connectors)
    first, second = brown[:2000], brown[2000:]
    model = P.Phrases(first, **kw)
    model.add_vocab(iter(second))  # a one-shot stream is fine: counting reads it once
    whole = P.Phrases(first + second, **kw)
    assert model.vocab == whole.vocab and model.corpus_word_count == whole.corpus_word_count
    assert model.export_phrases() == whole.export_phrases()
    later = P.Phrases(**kw)
    later.add_vocab(first + second)
    assert later.vocab == whole.vocab


@pytest.mark.parametrize("connectors", list(CONNECTORS))
def test_max_vocab_size_prunes_as_gensim(connectors, brown):
    kw = {**kwargs("default", 2.0, 2, connectors), "max_vocab_size": 15_000}
    ours, theirs = P.Phrases(brown[:3000], **kw), gensim_phrases.Phrases(brown[:3000], **kw)
    assert len(ours.vocab) < 15_000 < len(P.Phrases(brown[:3000], **kwargs("default", 2.0, 2, connectors)).vocab)
    assert_same_counts(ours, theirs)
    assert ours.min_reduce == 1  # as gensim: the first add_vocab does not keep its pruning level
    ours.add_vocab(brown[3000:])
    theirs.add_vocab(brown[3000:])
    assert_same_counts(ours, theirs)
    assert ours.min_reduce > 2
    assert_same_scores(ours.export_phrases(), theirs.export_phrases())
    assert list(ours[brown[:500]]) == list(theirs[brown[:500]])


def test_a_pruned_count_reached_the_threshold_of_its_round():
    vocab = P.Counter({"a": 1, "b": 2, "c": 3})
    P._prune(vocab, 2)
    assert vocab == {"b": 2, "c": 3}  # gensim keeps count >= min_reduce


def test_save_load_round_trip(tmp_path):
    model = P.Phrases(SMALL * 3, min_count=2, threshold=2.0, delimiter="+",
                      connector_words=P.ENGLISH_CONNECTOR_WORDS, scoring="default")
    model.save(tmp_path / "phrases.json")
    model.save(tmp_path / "phrases.json")  # over an existing save
    loaded = P.Phrases.load(tmp_path / "phrases.json")
    assert type(loaded) is P.Phrases and loaded.vocab == model.vocab
    assert (loaded.min_count, loaded.threshold, loaded.delimiter, loaded.scoring, loaded.connector_words,
            loaded.corpus_word_count, loaded.min_reduce, loaded.max_vocab_size) == \
        (model.min_count, model.threshold, model.delimiter, model.scoring, model.connector_words,
         model.corpus_word_count, model.min_reduce, model.max_vocab_size)
    assert list(loaded[SMALL]) == list(model[SMALL])
    loaded.add_vocab(SMALL)  # still trainable
    frozen = model.freeze()
    frozen.save(tmp_path / "frozen.json")
    for cls in (P.Phrases, P.FrozenPhrases):
        again = cls.load(tmp_path / "frozen.json")
        assert type(again) is P.FrozenPhrases and again.phrasegrams == frozen.phrasegrams
        assert list(again[SMALL]) == list(frozen[SMALL]) == list(model[SMALL])
    npmi = P.Phrases(SMALL, scoring="npmi", threshold=0.1, min_count=1)
    npmi.save(tmp_path / "npmi.json")
    assert P.Phrases.load(tmp_path / "npmi.json").scoring is P.npmi_scorer
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frozen.json", "npmi.json", "phrases.json"]


def test_load_names_what_is_wrong(tmp_path):
    with pytest.raises(FileNotFoundError):
        P.Phrases.load(tmp_path / "missing.json")
    (tmp_path / "pickle").write_bytes(b"\x80\x04\x95 not json")
    with pytest.raises(ValueError, match="not JSON"):
        P.Phrases.load(tmp_path / "pickle")
    (tmp_path / "other.json").write_text('{"format": "something else"}')
    with pytest.raises(ValueError, match="not a phrases model"):
        P.Phrases.load(tmp_path / "other.json")
    (tmp_path / "cut.json").write_text('{"format": "embeddings_jax.phrases", "version": 1, "class": "Phrases"}')
    with pytest.raises(ValueError, match="damaged"):
        P.Phrases.load(tmp_path / "cut.json")


def test_from_gensim():
    kw = kwargs("npmi", 0.2, 1, "english")
    theirs = gensim_phrases.Phrases(SMALL, **kw)
    ours = P.Phrases.from_gensim(theirs)
    assert ours.scoring is P.npmi_scorer and dict(ours.vocab) == theirs.vocab
    assert ours.export_phrases() == theirs.export_phrases()
    assert P.FrozenPhrases.from_gensim(theirs.freeze()).phrasegrams == theirs.freeze().phrasegrams
    assert P.FrozenPhrases.from_gensim(theirs).phrasegrams == theirs.export_phrases()


def test_getitem_sentence_corpus_and_stream():
    model = P.Phrases(SMALL * 3, min_count=1, threshold=1.0)
    assert model[[]] == [] and model[()] == []
    assert model[("new", "york")] == model[["new", "york"]] == ["new_york"]
    assert model[iter(["new", "york"])] == ["new_york"]
    assert model[[""]] == [""]  # kept (gensim drops an empty-string token)
    phrased = model[SMALL]
    assert isinstance(phrased, P.PhrasedCorpus) and len(phrased) == len(SMALL)
    assert list(phrased) == list(phrased) == [model[s] for s in SMALL]  # re-iterable, lazily
    stream = model[(s for s in SMALL)]
    assert iter(stream) is stream and list(stream) == [model[s] for s in SMALL]


def test_transformed_corpus_feeds_word2vec():
    import jax

    from embeddings_jax.models.word2vec import (
        ENGLISH_CONNECTOR_WORDS,
        FrozenPhrases,
        Phrases,
        Word2Vec,
    )

    assert FrozenPhrases is P.FrozenPhrases and ENGLISH_CONNECTOR_WORDS is P.ENGLISH_CONNECTOR_WORDS
    bigram = Phrases(SMALL * 3, min_count=1, threshold=1.0, connector_words=ENGLISH_CONNECTOR_WORDS).freeze()
    model = Word2Vec(bigram[SMALL * 3], min_count=1, vector_size=8, epochs=1, devices=jax.devices()[:1])
    assert "new_york" in model.wv.key_to_index and "bank_of_america" in model.wv.key_to_index
    with pytest.raises(TypeError, match="one-shot"):
        Word2Vec(bigram[iter(SMALL)], min_count=1, vector_size=8, epochs=1, devices=jax.devices()[:1])


def test_bad_input_is_named():
    with pytest.raises(TypeError, match="string"):
        P.Phrases("new york is big")
    with pytest.raises(TypeError, match="sentence 0 is a string"):
        P.Phrases(["new york is big", "so is london"])
    model = P.Phrases(SMALL, min_count=1, threshold=1.0)
    with pytest.raises(TypeError, match="string"):
        model["new york"]
    with pytest.raises(TypeError, match="tokens must be strings"):
        P.Phrases([["new", 3, "york"]])
    with pytest.raises(TypeError, match="tokens must be strings"):
        P.Phrases([[None]])
    for bad, match in [({"min_count": 0}, "min_count must be at least 1"),
                       ({"min_count": 0.5}, "min_count must be at least 1"),
                       ({"scoring": "pmi"}, "unknown scoring 'pmi'"),
                       ({"scoring": "npmi", "threshold": 1.5}, r"within \[-1, 1\]"),
                       ({"scoring": "npmi", "threshold": -1.01}, r"within \[-1, 1\]"),
                       ({"threshold": 0}, "positive for 'default'"),
                       ({"delimiter": ""}, "delimiter must not be empty"),
                       ({"max_vocab_size": 0}, "max_vocab_size"),
                       ({"scoring": lambda worda_count, wordb_count: 1.0}, "lacks bigram_count")]:
        with pytest.raises(ValueError, match=match):
            P.Phrases(SMALL, **bad)
    with pytest.raises(TypeError, match="connector_words must be a set"):
        P.Phrases(SMALL, connector_words="the")
    with pytest.raises(TypeError, match="threshold must be a number"):
        P.Phrases(SMALL, threshold=float("nan"))
    with pytest.raises(TypeError, match="scoring must be"):
        P.Phrases(SMALL, scoring=3)
    assert P.Phrases(SMALL, scoring="npmi", threshold=-1, min_count=1).threshold == -1


def test_english_connector_words_are_gensims():
    assert P.ENGLISH_CONNECTOR_WORDS == gensim_phrases.ENGLISH_CONNECTOR_WORDS
    assert P.SCORER_ARGS == tuple(inspect.signature(gensim_phrases.original_scorer).parameters)
