"""BLEU: the d2l worked example and parity of corpus BLEU with sacrebleu."""

import math
import random

import pytest

from embeddings_jax.eval import bleu


def test_d2l_worked_example_precisions():
    # d2l: label A B C D E F, prediction A B B C D -> p1=4/5, p2=3/4, p3=1/3, p4=0.
    label, pred = "A B C D E F", "A B B C D"
    bp = math.exp(1 - 6 / 5)
    assert bleu.sentence_bleu(pred, label, k=1) == pytest.approx(bp * (4 / 5) ** 0.5)
    assert bleu.sentence_bleu(pred, label, k=2) == pytest.approx(
        bp * (4 / 5) ** 0.5 * (3 / 4) ** 0.25
    )
    assert bleu.sentence_bleu(pred, label, k=3) == pytest.approx(
        bp * (4 / 5) ** 0.5 * (3 / 4) ** 0.25 * (1 / 3) ** 0.125
    )
    assert bleu.sentence_bleu(pred, label, k=4) == 0.0


def test_sentence_bleu_perfect_short_and_edge_cases():
    assert bleu.sentence_bleu("va !", "va !", k=2) == 1.0
    # Shorter than k: only orders up to len(pred) count (as in d2l).
    assert bleu.sentence_bleu(["va"], ["va", "!"], k=4) == pytest.approx(math.exp(1 - 2))
    assert bleu.sentence_bleu("a a a a", "a b", k=1) == pytest.approx(0.25**0.5)  # clipped counts
    assert bleu.sentence_bleu("", "a b") == 0.0
    with pytest.raises(ValueError, match="label"):
        bleu.sentence_bleu("a", "")
    with pytest.raises(ValueError, match="k must"):
        bleu.sentence_bleu("a", "a", k=0)


def test_corpus_bleu_hand_computed():
    hyps = ["the cat sat on the mat", "a dog ."]
    refs = ["the cat sat on a mat", "a dog runs ."]
    # whitespace tokens; counts by order: matches/totals
    m = [5 + 3, 3 + 1, 2 + 0, 1 + 0]
    t = [6 + 3, 5 + 2, 4 + 1, 3 + 0]
    expected = 100 * math.exp(min(0, 1 - 10 / 9) + sum(math.log(a / b) for a, b in zip(m, t)) / 4)
    assert bleu.corpus_bleu(hyps, refs, tokenize=False) == pytest.approx(expected)
    assert bleu.corpus_bleu(refs, refs) == pytest.approx(100.0)


def test_corpus_bleu_bad_input():
    with pytest.raises(ValueError, match="pair up"):
        bleu.corpus_bleu(["a"], ["a", "b"])
    with pytest.raises(ValueError, match="at least one"):
        bleu.corpus_bleu([], [])
    assert bleu.corpus_bleu([""], ["a b c d"]) == 0.0


def _noisy_corpus(seed, n=200):
    rng = random.Random(seed)
    words = [
        "Ein",
        "Mann",
        ",",
        "der",
        "auf",
        "einer",
        "Straße",
        "geht",
        ".",
        "Zwei",
        "Hunde",
        "spielen",
        "im",
        "Schnee",
        "!",
        "3.5",
        "x-ray",
        "A&B",
        '"quoted"',
        "(maybe)",
        "it's",
    ]
    refs, hyps = [], []
    for _ in range(n):
        ref = [rng.choice(words) for _ in range(rng.randint(1, 15))]
        hyp = [w for w in ref if rng.random() > 0.25] + [
            rng.choice(words) for _ in range(rng.randint(0, 3))
        ]
        rng.shuffle(hyp) if rng.random() < 0.2 else None
        refs.append(" ".join(ref))
        hyps.append(" ".join(hyp))
    return hyps, refs


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("lowercase", [False, True])
def test_corpus_bleu_equals_sacrebleu(seed, lowercase):
    sacrebleu = pytest.importorskip("sacrebleu")
    hyps, refs = _noisy_corpus(seed)
    ours = bleu.corpus_bleu(hyps, refs, lowercase=lowercase)
    theirs = sacrebleu.corpus_bleu(hyps, [refs], lowercase=lowercase).score
    assert ours == pytest.approx(theirs, abs=1e-9)


def test_corpus_bleu_smoothing_equals_sacrebleu():
    sacrebleu = pytest.importorskip("sacrebleu")
    hyps, refs = ["a b c d e", "x y"], ["a b z d e", "x q"]  # no 4-gram match: exp smoothing
    assert bleu.corpus_bleu(hyps, refs) == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score)


def test_tokenize_13a_equals_sacrebleu():
    pytest.importorskip("sacrebleu")
    from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

    tok = Tokenizer13a()
    for line in [
        "Hello, world! It's 3.5 km-long.",
        "A&amp;B &quot;x&quot; (y) [z] 1-2",
        "Çà et là…",
    ]:
        assert " ".join(bleu.tokenize_13a(line)) == tok(line)
