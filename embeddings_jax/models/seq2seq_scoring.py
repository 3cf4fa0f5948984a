"""Translating and scoring a file with a trained seq2seq run (``<workdir>/model/``).

``translate_file`` does what the seq2seq experiment does to its validation set, on any file of
sentences, one per line: raw lines go to ``seq2seq.translate`` (the run's tokeniser applies the
run's own preprocessing, lower-casing included), hypotheses come back detokenised, and with
references the scores are the experiment's: corpus BLEU (``eval.bleu``, sacrebleu-equal 13a
tokenisation) and chrF (``eval.chrf``, sacrebleu's ``CHRF()`` defaults), case-insensitive only for
runs whose config lower-cases (as the experiment scores them).
"""

from __future__ import annotations

import gzip
import pathlib
import time

from embeddings_jax.eval.bleu import corpus_bleu
from embeddings_jax.eval.chrf import corpus_chrf
from embeddings_jax.models import seq2seq
from embeddings_jax.train.atomic import atomic_write


def read_sentences(path, what: str = "source") -> list[str]:
    """One sentence per line of a UTF-8 text file (``.gz`` read compressed); ``\\r\\n`` endings
    and a leading byte-order mark are accepted. Raises with the line number on bytes that are not
    UTF-8 and on an empty (or whitespace-only) line."""
    path = pathlib.Path(path)
    if not path.is_file():
        reason = "is a directory, not a file" if path.is_dir() else "does not exist"
        raise FileNotFoundError(f"{what} file {path} {reason}")
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise ValueError(
            f"{what} file {path} line {line} is not valid UTF-8 (byte {data[e.start]:#04x} at "
            f"offset {e.start}); re-encode the file as UTF-8, e.g. iconv -f latin1 -t utf-8"
        ) from None
    lines = text.split("\n")
    if lines[-1] == "":  # the final newline ends the last line, it does not start another
        lines.pop()
    lines = [s.removesuffix("\r") for s in lines]
    if not lines:
        raise ValueError(f"{what} file {path} is empty; it needs one sentence per line")
    empty = [i + 1 for i, s in enumerate(lines) if not s.strip()]
    if empty:
        raise ValueError(
            f"{what} file {path} line {empty[0]} is empty ({len(empty)} empty line(s) of "
            f"{len(lines)}); give one sentence per line, without blank lines"
        )
    return lines


def translate_file(
    workdir,
    src_path,
    ref_path=None,
    *,
    beam_size: int = 4,
    alpha: float | None = None,
    out_path=None,
    batch_size: int = 128,
    max_len: int | None = None,
) -> dict:
    """Translates ``src_path`` with the run saved in ``workdir`` and scores it against ``ref_path``.

    Args:
      workdir: the run's folder (``seq2seq.save_model`` wrote ``<workdir>/model/``).
      src_path: UTF-8 source sentences, one per line.
      ref_path: optional references, line-aligned with the sources.
      beam_size: 0 greedy search, else the beam width.
      alpha: beam-search length penalty exponent; None: the run's ``config.alpha``.
      out_path: where to write the hypotheses (one per line, atomically); None: return them.
      batch_size: sentences decoded per batch.
      max_len: source and output length limit in tokens (incl. ``<eos>``); None: the run's
        ``config.max_len``. Longer sources are truncated with a warning, as in the experiment.

    Returns ``{"bleu", "chrf"`` (None without references) ``, "sentences", "hypotheses"`` (the list,
    or ``out_path`` as a string when given) ``, "beam_size", "alpha", "max_len", "lowercase",
    "seconds"}``, ``seconds`` being the decoding time.
    """
    if isinstance(beam_size, bool) or not isinstance(beam_size, int) or beam_size < 0:
        raise ValueError(f"beam_size must be an int >= 0 (0: greedy search), got {beam_size!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    sources = read_sentences(src_path, "source")
    references = None if ref_path is None else read_sentences(ref_path, "reference")
    if references is not None and len(references) != len(sources):
        raise ValueError(
            f"source file {src_path} has {len(sources)} lines but reference file {ref_path} has "
            f"{len(references)}; they must pair up line by line"
        )
    if out_path is not None:  # fail before decoding, not after
        out_path = pathlib.Path(out_path)
        if out_path.is_dir():
            raise IsADirectoryError(f"out_path {out_path} is a directory; give a file name")
        if not out_path.parent.is_dir():
            raise FileNotFoundError(
                f"cannot write {out_path}: its folder {out_path.parent} does not exist"
            )
    model, params, src_tok, tgt_tok, config = seq2seq.load_model(workdir)
    for name, value in (("alpha", alpha), ("max_len", max_len)):
        if value is None and config.get(name) is None:
            raise ValueError(
                f"the run's config in {workdir} has no {name}; pass {name}= explicitly"
            )
    alpha = float(config.alpha if alpha is None else alpha)
    max_len = int(config.max_len if max_len is None else max_len)
    lowercase = bool(config.get("lowercase", False))
    t0 = time.perf_counter()
    hyps = seq2seq.translate(
        model,
        params,
        sources,
        src_tok,
        tgt_tok,
        beam_size=beam_size,
        alpha=alpha,
        max_src_len=max_len,
        max_len=max_len,
        batch_size=batch_size,
    )
    seconds = time.perf_counter() - t0
    if out_path is not None:
        with atomic_write(out_path) as f:
            f.writelines(h.replace("\n", " ") + "\n" for h in hyps)
    scores = {"bleu": None, "chrf": None}
    if references is not None:
        scores = {
            "bleu": corpus_bleu(hyps, references, lowercase=lowercase),
            "chrf": corpus_chrf(hyps, references, lowercase=lowercase),
        }
    return {
        **scores,
        "sentences": len(sources),
        "hypotheses": hyps if out_path is None else str(out_path),
        "beam_size": beam_size,
        "alpha": alpha,
        "max_len": max_len,
        "lowercase": lowercase,
        "seconds": seconds,
    }
