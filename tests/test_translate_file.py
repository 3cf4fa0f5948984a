"""translate_file: a saved run scores a file as the experiment does; chrF equals sacrebleu's."""

import random

import jax
import ml_collections
import pytest

from embeddings_jax.data import translation as P
from embeddings_jax.eval.chrf import corpus_chrf
from embeddings_jax.models import seq2seq as S
from embeddings_jax.models.seq2seq_scoring import translate_file

sacrebleu = pytest.importorskip("sacrebleu")

SOURCES = [
    "A dog runs.",
    "Two men, one woman!",
    "A café in Zürich?",
    "The cat sleeps on the mat.",
    "Children play football outside, near the river.",
    "a dog and a cat.",
]
TARGETS = [
    "Ein Hund läuft.",
    "Zwei Männer, eine Frau!",
    "Ein Café in Zürich?",
    "Die Katze schläft auf der Matte.",
    "Kinder spielen draußen Fußball, nahe dem Fluss.",
    "ein Hund und eine Katze.",
]


def _config(lowercase=False):
    c = ml_collections.ConfigDict()
    c.update(embed_dim=8, hidden_dim=16, attention_dim=8, num_layers=1, bidirectional=True)
    c.update(attention=True, dropout=0.0, readout_dim=0, tie_embeddings=False)
    c.update(max_len=12, alpha=0.6, lowercase=lowercase)
    return c


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A randomly initialised tiny run saved with ``save_model`` (plumbing, not quality)."""
    workdir = tmp_path_factory.mktemp("run")
    src_tok = P.make_tokenizer("word", SOURCES, min_freq=1)
    tgt_tok = P.make_tokenizer("word", TARGETS, min_freq=1)
    config = _config()
    model = S.from_config(config, src_tok.vocab_size, tgt_tok.vocab_size)
    params = S.init_params(model, jax.random.PRNGKey(3))
    # Untrained, beam search stops at once (<eos> costs no more than any word); with <eos> out of
    # reach the best hypotheses are max_len words long, so there is something to score.
    params["out"]["bias"] = params["out"]["bias"].at[P.EOS].add(-30.0)
    S.save_model(workdir, config, params, src_tok, tgt_tok)
    src = workdir / "src.txt"
    src.write_text("\n".join(SOURCES) + "\n", encoding="utf-8")
    return workdir, src, (model, params, src_tok, tgt_tok)


def _write(path, lines):
    path.write_text("".join(s + "\n" for s in lines), encoding="utf-8")
    return path


@pytest.mark.parametrize("beam", [0, 4])
def test_output_equals_translate_and_scores_equal_sacrebleu(run, tmp_path, beam):
    workdir, src, (model, params, src_tok, tgt_tok) = run
    direct = S.translate(
        model,
        params,
        SOURCES,
        src_tok,
        tgt_tok,
        beam_size=beam,
        alpha=0.6,
        max_src_len=12,
        max_len=12,
        batch_size=8,
    )
    got = translate_file(workdir, src, beam_size=beam, batch_size=8)
    assert got["hypotheses"] == direct and got["sentences"] == len(SOURCES)
    assert got["bleu"] is None and got["chrf"] is None
    assert (got["beam_size"], got["alpha"], got["max_len"]) == (beam, 0.6, 12)
    # References sharing part of the hypotheses, so the scores are neither 0 nor 100.
    refs = [h if i % 2 else f"{h} Ein Hund, läuft." for i, h in enumerate(direct)]
    assert all(h.strip() for h in direct)
    ref, out = _write(tmp_path / "ref.txt", refs), tmp_path / "hyp.txt"
    scored = translate_file(workdir, src, ref, beam_size=beam, out_path=out, batch_size=8)
    assert scored["hypotheses"] == str(out)
    written = out.read_text(encoding="utf-8").split("\n")
    assert written[-1] == "" and written[:-1] == direct
    assert scored["bleu"] == pytest.approx(sacrebleu.corpus_bleu(direct, [refs]).score, abs=1e-9)
    assert scored["chrf"] == pytest.approx(sacrebleu.corpus_chrf(direct, [refs]).score, abs=1e-9)
    assert 0 < scored["bleu"] < 100 and 0 < scored["chrf"] < 100 and scored["seconds"] > 0


def test_lowercasing_run_scores_case_insensitively(run, tmp_path):
    _, src, (_, params, src_tok, tgt_tok) = run
    lower = tmp_path / "lower"
    S.save_model(lower, _config(lowercase=True), params, src_tok, tgt_tok)
    hyps = translate_file(lower, src, beam_size=0, batch_size=8)["hypotheses"]
    refs = [h.upper() if h.strip() else "X" for h in hyps]
    got = translate_file(lower, src, _write(tmp_path / "ref.txt", refs), beam_size=0, batch_size=8)
    assert got["lowercase"] is True
    assert got["bleu"] == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs], lowercase=True).score)
    assert got["chrf"] == pytest.approx(
        sacrebleu.CHRF(lowercase=True).corpus_score(hyps, [refs]).score
    )


def test_bad_input_gets_clear_errors(run, tmp_path):
    workdir, src, _ = run
    with pytest.raises(FileNotFoundError, match="params.msgpack"):
        translate_file(tmp_path, src)
    with pytest.raises(FileNotFoundError, match="source file .*missing.txt does not exist"):
        translate_file(workdir, tmp_path / "missing.txt")
    with pytest.raises(FileNotFoundError, match="reference file .*nope.txt does not exist"):
        translate_file(workdir, src, tmp_path / "nope.txt")
    short = _write(tmp_path / "short.txt", TARGETS[:4])
    with pytest.raises(ValueError, match=r"has 6 lines but reference file .*short.txt has 4"):
        translate_file(workdir, src, short)
    blank = _write(tmp_path / "blank.txt", ["A dog.", "A cat.", "  ", "A man.", ""])
    with pytest.raises(ValueError, match=r"line 3 is empty \(2 empty line\(s\) of 5\)"):
        translate_file(workdir, blank)
    (tmp_path / "nothing.txt").write_text("")
    with pytest.raises(ValueError, match="is empty; it needs one sentence per line"):
        translate_file(workdir, tmp_path / "nothing.txt")
    (tmp_path / "latin1.txt").write_bytes("A dog.\nA cat.\nA café.\n".encode("latin-1"))
    with pytest.raises(ValueError, match="line 3 is not valid UTF-8"):
        translate_file(workdir, tmp_path / "latin1.txt")
    with pytest.raises(FileNotFoundError, match="folder .*no_such_dir does not exist"):
        translate_file(workdir, src, out_path=tmp_path / "no_such_dir" / "hyp.txt")
    with pytest.raises(ValueError, match="beam_size must be an int >= 0"):
        translate_file(workdir, src, beam_size=-1)


def test_crlf_and_bom_are_read_as_plain_lines(run, tmp_path):
    workdir, src, _ = run
    crlf = tmp_path / "crlf.txt"
    crlf.write_bytes(("\ufeff" + "\r\n".join(SOURCES)).encode("utf-8"))  # no final newline
    a = translate_file(workdir, crlf, beam_size=0, batch_size=8)["hypotheses"]
    assert a == translate_file(workdir, src, beam_size=0, batch_size=8)["hypotheses"]


# ---------------------------------------------------------------------------------------------
# chrF parity with sacrebleu.

EDGE_PAIRS = [
    ("", "A reference with words."),  # empty hypothesis line
    ("Ein Hund läuft.", "Ein Hund läuft."),
    ("!!!", "?"),  # punctuation only
    ("(hi) there, you!", "hi there you"),
    ("Straße über Ärger — naïve café", "Strasse ueber Aerger - naive cafe"),  # unicode
    ("日本語の文です。", "日本語の文章です。"),
    ("a", "ab"),  # shorter than most orders
    ("The  cat\tsat", "The cat sat"),  # whitespace variants
    ("emoji 🙂 ok", "emoji 🙂 okay"),
]


def _random_pairs(n, seed=0):
    rng = random.Random(seed)
    words = [
        "der",
        "Hund",
        "läuft",
        ",",
        ".",
        "!",
        "Café",
        "Zürich",
        "und",
        "eine",
        "Katze",
        "a",
        "(x)",
        "naïve",
        "x-y",
        "1.5",
        "Männer",
    ]
    pairs = []
    for _ in range(n):
        ref = rng.choices(words, k=rng.randint(1, 12))
        hyp = [w for w in ref if rng.random() < 0.7] + rng.choices(words, k=rng.randint(0, 3))
        if rng.random() < 0.3:  # word order scrambled
            rng.shuffle(hyp)
        pairs.append((" ".join(hyp), " ".join(ref)))
    return pairs


def test_chrf_equals_sacrebleu_on_sentences_and_corpora():
    pairs = EDGE_PAIRS + _random_pairs(30)
    for hyp, ref in pairs:  # each pair alone is a corpus of one sentence
        assert corpus_chrf([hyp], [ref]) == pytest.approx(
            sacrebleu.corpus_chrf([hyp], [[ref]]).score, abs=1e-9
        ), (hyp, ref)
    hyps, refs = zip(*pairs)
    for kw in ({}, {"lowercase": True}, {"word_order": 2}, {"whitespace": True}, {"beta": 1}):
        ours = corpus_chrf(list(hyps), list(refs), **kw)
        theirs = sacrebleu.CHRF(**kw).corpus_score(list(hyps), [list(refs)]).score
        assert ours == pytest.approx(theirs, abs=1e-9), kw
    assert corpus_chrf([""], [""]) == sacrebleu.corpus_chrf([""], [[""]]).score == 0.0
    with pytest.raises(ValueError, match="2 hypotheses but 1 references"):
        corpus_chrf(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="at least one"):
        corpus_chrf([], [])


def test_translate_command_scores_and_writes(run, tmp_path, capsys):
    from embeddings_jax import cli

    workdir, src, _ = run
    ref = _write(tmp_path / "ref.txt", TARGETS)
    out = tmp_path / "hyp.txt"
    assert cli.main(["translate", "--workdir", str(workdir), "--src", str(src), "--ref", str(ref),
                     "--beam", "0", "--out", str(out), "--batch-size", "8"]) == 0
    err = capsys.readouterr().err
    hyps = out.read_text(encoding="utf-8").splitlines()
    assert len(hyps) == len(SOURCES) and "translated 6 sentences (greedy)" in err
    assert f"BLEU {sacrebleu.corpus_bleu(hyps, [TARGETS]).score:.2f}" in err and f"wrote {out}" in err
    with pytest.raises(SystemExit, match="has 6 lines but reference file"):
        cli.main(["translate", "--workdir", str(workdir), "--src", str(src), "--ref",
                  str(_write(tmp_path / "short.txt", TARGETS[:4]))])
