"""Translation pairs: loaders, d2l tokenisation, vocabularies, bad-input policy, bucketing."""

import warnings

import numpy as np
import pytest

from embeddings_jax.data import translation as P


def test_load_multi30k(shared_data):
    shared_data("multi30k")
    en, de = P.load_multi30k("train", "en", "de")
    assert len(en) == len(de) == 29000
    assert en[0].startswith("Two young, White males") and de[0].startswith(
        "Zwei junge weiße Männer"
    )
    fr, cs = P.load_multi30k("val", "fr", "cs")
    assert len(fr) == len(cs) == 1014
    with pytest.raises(ValueError, match="held out"):
        P.load_multi30k("test")
    with pytest.raises(ValueError, match="languages"):
        P.load_multi30k("train", "en", "es")
    with pytest.raises(ValueError, match="both"):
        P.load_multi30k("train", "de", "de")


def test_load_fra_eng_deterministic_split(shared_data):
    shared_data("fra-eng")
    tr_en, tr_fr = P.load_fra_eng("train")
    va_en, va_fr = P.load_fra_eng("val")
    assert len(tr_en) == len(tr_fr) and len(va_en) == len(va_fr)
    assert len(tr_en) + len(va_en) == 158774
    assert 0.015 < len(va_en) / 158774 < 0.025
    assert not set(va_en) & set(tr_en)  # every translation of an English sentence on one side
    assert P.load_fra_eng("val")[0] == va_en  # deterministic
    assert tr_en[0] == "Go." and tr_fr[0] == "Va !"
    with pytest.raises(ValueError, match="split"):
        P.load_fra_eng("test")
    with pytest.raises(ValueError, match="val_fraction"):
        P.load_fra_eng("val", val_fraction=0.0)


def test_d2l_preprocess_and_detokenize():
    assert P.preprocess("Go.\u202fNow!") == "go . now !"
    assert P.preprocess("J'ai perdu.", lowercase=False) == "J'ai perdu ."
    assert P.preprocess("Va !") == "va !"  # already spaced: no double space
    assert P.detokenize(["a", "man", ",", "a", "plan", "."]) == "a man, a plan."


def test_vocab_specials_unknown_and_decode():
    v = P.Vocab.build([["a", "b", "a"], ["c", "a", "b"]], min_freq=2)
    assert v.itos[:4] == list(P.SPECIALS) and v.itos[4:] == ["a", "b"]
    assert v.encode(["a", "zzz", "b"]) == [4, P.UNK, 5]
    assert v.decode([P.BOS, 4, P.PAD, 5, P.EOS, 4]) == ["a", "b"]
    assert v.decode([999]) == ["<unk>"]
    with pytest.raises(ValueError, match="unique"):
        P.Vocab(list(P.SPECIALS) + ["x", "x"])


def test_word_tokenizer_round_trip_and_json():
    tok = P.WordTokenizer.train(["Hello world.", "hello there!"], min_freq=1)
    ids = tok.encode("Hello there, world!")
    assert P.UNK in ids  # "," unseen
    assert tok.decode(tok.encode("hello world.") + [P.EOS, 7]) == "hello world."
    back = P.tokenizer_from_json(tok.to_json())
    assert back.encode("hello world.") == tok.encode("hello world.")


def test_subword_tokenizer(shared_data):
    pytest.importorskip("tokenizers")
    shared_data("multi30k")
    _, de = P.load_multi30k("val", "en", "de")
    tok = P.make_tokenizer("bpe", de, vocab_size=500)
    assert tok.vocab_size == 500
    assert [tok.tok.token_to_id(s) for s in P.SPECIALS] == [0, 1, 2, 3]
    for s in de[:50]:
        ids = tok.encode(s)
        assert min(ids) > P.UNK or P.UNK not in ids
        assert tok.decode(ids + [P.EOS, 9, 9]) == s
    back = P.tokenizer_from_json(tok.to_json())
    assert back.encode(de[0]) == tok.encode(de[0])
    with pytest.raises(ValueError, match="kind"):
        P.make_tokenizer("chars", de)


def _tok():
    return P.WordTokenizer.train(["a b c d e f g h"], min_freq=1)


def test_encode_pairs_bad_input_policy():
    tok = _tok()
    src = ["a b", "", "a b c d e f g h", "a zz"]
    tgt = ["c d", "e", "c", ""]
    s, t, stats = P.encode_pairs(src, tgt, tok, tok, max_len=5, on_long="drop")
    assert stats == {"pairs": 4, "empty": 2, "long": 1, "kept": 1}
    assert s == [tok.encode("a b") + [P.EOS]] and t == [tok.encode("c d") + [P.EOS]]
    with pytest.warns(UserWarning, match="truncated"):
        s, _, _ = P.encode_pairs(src, tgt, tok, tok, max_len=5, on_long="truncate")
    assert s[1] == tok.encode("a b c d") + [P.EOS]
    with pytest.raises(ValueError, match="max_len is 5"):
        P.encode_pairs(src, tgt, tok, tok, max_len=5, on_long="error")
    with pytest.raises(ValueError, match="on_long"):
        P.encode_pairs(src, tgt, tok, tok, max_len=5, on_long="cut")
    with pytest.raises(ValueError, match="target"):
        P.encode_pairs(src, tgt[:2], tok, tok, max_len=5)


def test_encode_sources_bad_input_policy():
    tok = _tok()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ids = P.encode_sources(["", "a qq"], tok, max_len=4)
    assert ids == [[P.EOS], [tok.encode("a")[0], P.UNK, P.EOS]]
    with pytest.warns(UserWarning, match="1 source sentence"):
        ids = P.encode_sources(["a b c d e"], tok, max_len=4)
    assert len(ids[0]) == 4 and ids[0][-1] == P.EOS
    with pytest.raises(ValueError, match="max_len is 4"):
        P.encode_sources(["a b c d e"], tok, max_len=4, on_long="error")
    with pytest.raises(ValueError, match="drop"):
        P.encode_sources(["a"], tok, max_len=4, on_long="drop")
    with pytest.raises(TypeError, match="str"):
        P.encode_sources([None], tok, max_len=4)


def test_make_batch_shapes_masks_and_shift():
    b = P.make_batch(
        [[5, 6, P.EOS], [7, P.EOS]], [[8, P.EOS], [9, 10, 11, P.EOS]], 4, 5, batch_size=4
    )
    assert b["src"].shape == (4, 4) and b["tgt_in"].shape == (4, 5)
    np.testing.assert_array_equal(b["src"][0], [5, 6, P.EOS, P.PAD])
    np.testing.assert_array_equal(b["tgt_out"][1], [9, 10, 11, P.EOS, P.PAD])
    np.testing.assert_array_equal(b["tgt_in"][1], [P.BOS, 9, 10, 11, P.PAD])
    np.testing.assert_array_equal(b["tgt_mask"][1], [1, 1, 1, 1, 0])
    assert not b["src_mask"][2:].any() and not b["tgt_mask"][2:].any()  # filler rows
    with pytest.raises(ValueError, match="padded length"):
        P.pad([[1, 2, 3]], 2)


def test_bucket_plan_covers_each_pair_once_and_is_seeded():
    rng = np.random.default_rng(0)
    src = [list(range(4, 4 + n)) for n in rng.integers(1, 30, 200)]
    tgt = [list(range(4, 4 + n)) for n in rng.integers(1, 30, 200)]
    plan = P.bucket_plan(src, tgt, 16, (8, 16, 32), seed=3)
    seen = np.concatenate([idx for _, idx in plan])
    np.testing.assert_array_equal(np.sort(seen), np.arange(200))
    for length, idx in plan:
        assert len(idx) <= 16
        assert all(max(len(src[i]), len(tgt[i])) <= length for i in idx)
        assert all(max(len(src[i]), len(tgt[i])) > {8: 0, 16: 8, 32: 16}[length] for i in idx)
    again = P.bucket_plan(src, tgt, 16, (8, 16, 32), seed=3)
    assert all(a[0] == b[0] and np.array_equal(a[1], b[1]) for a, b in zip(plan, again))
    other = P.bucket_plan(src, tgt, 16, (8, 16, 32), seed=4)
    assert any(not np.array_equal(a[1], b[1]) for a, b in zip(plan, other))
    batch_fn, steps_per_epoch = P.bucket_batch_fn(src, tgt, 16, (8, 16, 32), seed=3)
    batches = [batch_fn(step) for step in range(steps_per_epoch)]  # epoch 0: the seed-3 plan
    assert {b["src"].shape for b in batches} <= {(16, 8), (16, 16), (16, 32)}
    assert sum(int(b["tgt_mask"].any(1).sum()) for b in batches) == 200
    with pytest.raises(ValueError, match="exceeds"):
        P.bucket_plan([[1] * 40], [[1]], 4, (8, 16))


def test_bucket_batch_fn_reshuffles_each_epoch_from_the_step_alone():
    rng = np.random.default_rng(1)
    src = [list(range(4, 4 + n)) for n in rng.integers(1, 16, 50)]
    tgt = [list(range(4, 4 + n)) for n in rng.integers(1, 16, 50)]
    batch_fn, steps_per_epoch = P.bucket_batch_fn(src, tgt, 8, (8, 16), seed=5)
    assert steps_per_epoch == len(P.bucket_plan(src, tgt, 8, (8, 16), seed=5))
    length, idx = P.bucket_plan(src, tgt, 8, (8, 16), seed=6)[2]  # epoch 1 is the seed + 1 plan
    expected = P.make_batch([src[i] for i in idx], [tgt[i] for i in idx], length, length, 8)
    later = batch_fn(steps_per_epoch + 2)
    earlier = batch_fn(0)  # going back to epoch 0 rebuilds its plan: same batch as a fresh fn
    for k in expected:
        np.testing.assert_array_equal(later[k], expected[k])
        np.testing.assert_array_equal(earlier[k], P.bucket_batch_fn(src, tgt, 8, (8, 16), 5)[0](0)[k])
