"""gensim's training calls on our Word2Vec: the documented tutorial snippets with only the import
changed, corpus_file, online vocabulary growth, callbacks, and the vocabulary options."""

import warnings

import jax
import numpy as np
import pytest

from embeddings_jax.data import synthetic
from embeddings_jax.data.text import LineSentence
from embeddings_jax.models.word2vec import Word2Vec

gensim_utils = pytest.importorskip("gensim.test.utils")
common_texts = gensim_utils.common_texts
ONE = {"devices": jax.devices()[:1]}  # one device: the fewest compilations


def test_gensim_tutorial_snippets_run_with_the_import_changed(tmp_path):
    # gensim's models.word2vec docstring, in order ("from gensim.models import Word2Vec" -> ours).
    model = Word2Vec(sentences=common_texts, vector_size=100, window=5, min_count=1, workers=4, **ONE)
    model.save(str(tmp_path / "word2vec.model"))
    model = Word2Vec.load(str(tmp_path / "word2vec.model"))
    with pytest.warns(UserWarning, match="no word of the vocabulary"):
        model.train([["hello", "world"]], total_examples=1, epochs=1)
    vector = model.wv["computer"]
    sims = model.wv.most_similar("computer", topn=10)
    assert vector.shape == (100,) and len(sims) == 10 and all(w != "computer" for w, _ in sims)
    # "Training": build the vocabulary, then train with gensim's required arguments.
    model = Word2Vec(vector_size=50, window=3, min_count=1, **ONE)
    model.build_vocab(common_texts)
    assert model.corpus_count == len(common_texts)
    assert model.corpus_total_words == sum(map(len, common_texts))
    trained, raw = model.train(common_texts, total_examples=model.corpus_count, epochs=model.epochs)
    assert raw == 5 * sum(map(len, common_texts)) and 0 < trained <= raw


def test_corpus_file_trains_as_the_same_sentences(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(" ".join(s) for s in common_texts) + "\n\n")
    kw = dict(vector_size=16, window=2, min_count=1, epochs=3, sg=1, **ONE)
    from_file = Word2Vec(corpus_file=str(path), **kw)
    from_list = Word2Vec(common_texts, **kw)
    assert from_file.wv.index_to_key == from_list.wv.index_to_key
    np.testing.assert_array_equal(from_file.wv.vectors, from_list.wv.vectors)
    assert list(LineSentence(path)) == common_texts  # re-iterable, empty lines skipped


def test_bad_corpus_and_worker_input_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Word2Vec(corpus_file=str(tmp_path / "missing.txt"), **ONE)
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\u00e9 au lait\n".encode() + "na\u00efve words\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"line 2 is not valid UTF-8"):
        Word2Vec(corpus_file=str(bad), min_count=1, **ONE)
    with pytest.raises(ValueError, match="exactly one of corpus_iterable"):
        Word2Vec(**ONE).build_vocab(common_texts, corpus_file=str(bad))
    with pytest.raises(TypeError, match="one-shot iterator"):
        Word2Vec((s for s in common_texts), min_count=1, **ONE)
    with pytest.raises(ValueError, match="workers"):
        Word2Vec(workers=0)
    with pytest.raises(ValueError, match="sync_every"):
        Word2Vec(sync_every=0)
    with pytest.warns(UserWarning, match="use_cpu_cores"):  # more workers than devices: said, not silent
        assert Word2Vec(workers=len(jax.devices()) + 1).mesh.size == len(jax.devices())


def test_training_loss_is_reported_like_gensim():
    """gensim's loss calls: ``compute_loss=True``, then ``get_latest_training_loss()`` (the sum
    over the latest ``train`` call so far, readable in ``on_epoch_end``); each ``train`` call
    says anew whether to compute it."""
    seen = []

    class LossLogger:
        def on_epoch_end(self, model):
            seen.append(model.get_latest_training_loss())

    sentences = synthetic.generate_corpus(synthetic.make_world(0), 2000, seed=0)
    kw = dict(vector_size=16, sg=1, epochs=4, **ONE)
    model = Word2Vec(sentences, compute_loss=True, callbacks=[LossLogger()], **kw)
    gains = np.diff([0.0, *seen])  # the loss of each epoch
    assert len(seen) == 4 and all(g > 0 for g in gains) and gains[-1] < gains[0]  # it learns
    assert model.get_latest_training_loss() == seen[-1]
    model.train(sentences[:50], total_examples=50, epochs=1)
    assert model.get_latest_training_loss() == 0.0  # compute_loss=False for this call


def test_online_vocabulary_growth_keeps_trained_rows():
    first, more = common_texts[:6], common_texts[6:] + [["brand", "new", "words", "graph"]] * 3
    model = Word2Vec(first, vector_size=12, window=2, min_count=1, epochs=2, **ONE)
    old_words = list(model.wv.index_to_key)
    old = {name: np.asarray(t).copy() for name, t in model.params.items()}
    model.build_vocab(more, update=True)
    assert model.wv.index_to_key[: len(old_words)] == old_words  # old ids unchanged
    assert {"brand", "new", "words"} <= set(model.wv.index_to_key[len(old_words):])
    for name, table in old.items():
        rows = table.shape[0]
        np.testing.assert_array_equal(np.asarray(model.params[name])[:rows], table)
    assert model.corpus_count == len(more)
    model.train(more, total_examples=model.corpus_count, epochs=model.epochs)
    assert np.isfinite(model.wv["brand"]).all()
    model.vector_size = 24
    with pytest.raises(ValueError, match="vector_size is 24 but the trained vectors have 12"):
        model.build_vocab(more, update=True)
    with pytest.raises(ValueError, match="grows an existing vocabulary"):
        Word2Vec(**ONE).build_vocab(more, update=True)


def test_callbacks_see_every_epoch_and_totals_are_checked():
    events = []

    class Recorder:  # gensim's CallbackAny2Vec protocol (any subset of the four hooks)
        def on_train_begin(self, model):
            events.append("begin")

        def on_epoch_end(self, model):
            events.append(model.epochs_trained)

        def on_train_end(self, model):
            events.append("end")

    Word2Vec(common_texts, vector_size=8, window=2, min_count=1, epochs=3, callbacks=[Recorder()], **ONE)
    assert events == ["begin", 1, 2, 3, "end"]
    model = Word2Vec(vector_size=8, window=2, min_count=1, **ONE)
    model.build_vocab(common_texts)
    with pytest.warns(UserWarning, match="total_examples=3 but the corpus has 9"):
        model.train(common_texts, total_examples=3, epochs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.train(common_texts, total_examples=model.corpus_count, total_words=model.corpus_total_words, epochs=1)


def test_vocabulary_options_and_fixed_windows():
    rule = lambda word, count, min_count: 2 if word == "trees" else 1 if word == "graph" else 0
    model = Word2Vec(vector_size=8, window=2, min_count=3, trim_rule=rule, null_word=1, **ONE)
    model.build_vocab(common_texts)
    words = model.wv.index_to_key
    assert "trees" in words and "graph" not in words and words[-1] == "\0"
    assert all(c >= 3 for w, c in zip(words, model.vocab.counts) if w not in ("trees", "\0"))
    unsorted = Word2Vec(vector_size=8, min_count=1, sorted_vocab=0, **ONE)
    unsorted.build_vocab(common_texts)
    assert unsorted.wv.index_to_key[:3] == ["human", "interface", "computer"]  # first-seen order
    kw = dict(vector_size=8, window=3, min_count=1, epochs=2, seed=3, sample=0, **ONE)  # all words train
    shrinking = Word2Vec(common_texts, **kw).wv.vectors
    fixed = Word2Vec(common_texts, shrink_windows=False, **kw).wv.vectors
    assert not np.array_equal(shrinking, fixed)
