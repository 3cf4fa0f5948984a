"""BLEU: the d2l sentence-level formula and standard corpus BLEU (Papineni et al. 2002).

``sentence_bleu`` is the formula of the d2l seq2seq chapter,
``exp(min(0, 1 - len_label / len_pred)) * prod_{n=1..k} p_n ** (1 / 2**n)``, on one tokenised pair.

``corpus_bleu`` is the standard score (clipped n-gram counts summed over the corpus, geometric
mean of p_1..p_4, brevity penalty on the summed lengths, sacrebleu's default "exp" smoothing of
empty orders), in percent, on raw (detokenised) text tokenised like sacrebleu's default "13a"
tokenizer, so ``corpus_bleu(hyps, refs)`` equals
``sacrebleu.corpus_bleu(hyps, [refs]).score`` without sacrebleu installed.
"""

from __future__ import annotations

import collections
import math
import re
from collections.abc import Sequence


def _ngrams(tokens: Sequence[str], n: int) -> collections.Counter:
    return collections.Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def sentence_bleu(pred: Sequence[str] | str, label: Sequence[str] | str, k: int = 4) -> float:
    """d2l BLEU of one prediction against one label (token lists, or strings split on spaces).

    Returns a value in [0, 1]; 0 for an empty prediction.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    pred = pred.split() if isinstance(pred, str) else list(pred)
    label = label.split() if isinstance(label, str) else list(label)
    if not label:
        raise ValueError("the label (reference) is empty; BLEU is undefined")
    if not pred:
        return 0.0
    score = math.exp(min(0.0, 1.0 - len(label) / len(pred)))
    for n in range(1, min(k, len(pred)) + 1):
        ref = _ngrams(label, n)
        hyp = _ngrams(pred, n)
        matches = sum(min(c, ref[g]) for g, c in hyp.items())
        score *= (matches / (len(pred) - n + 1)) ** (0.5**n)
    return score


# sacrebleu's "13a" tokenizer (mteval-v13a.pl): unescape a few entities, then split punctuation.
_13A_RULES = [
    (re.compile(r"([\{-\~\[-\` -\&\(-\+\:-\@\/])"), r" \1 "),  # punctuation
    (re.compile(r"([^0-9])([\.,])"), r"\1 \2 "),  # period/comma unless preceded by a digit
    (re.compile(r"([\.,])([^0-9])"), r" \1 \2"),  # period/comma unless followed by a digit
    (re.compile(r"([0-9])(-)"), r"\1 \2 "),  # dash when preceded by a digit
]


def tokenize_13a(line: str) -> list[str]:
    """Tokenises detokenised text the way sacrebleu's default (13a) tokenizer does."""
    line = line.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    if "&" in line:
        for ent, ch in (("&quot;", '"'), ("&amp;", "&"), ("&lt;", "<"), ("&gt;", ">")):
            line = line.replace(ent, ch)
    line = f" {line} "
    for pattern, repl in _13A_RULES:
        line = pattern.sub(repl, line)
    return line.split()


def corpus_bleu(
    hypotheses: Sequence[str],
    references: Sequence[str],
    *,
    lowercase: bool = False,
    tokenize: bool = True,
    max_order: int = 4,
) -> float:
    """Corpus BLEU in percent of detokenised hypotheses against one reference each.

    Args:
      hypotheses, references: equal-length lists of sentences.
      lowercase: case-insensitive BLEU.
      tokenize: apply the 13a tokenizer (sacrebleu's default); False splits on whitespace only.
    """
    if len(hypotheses) != len(references):
        raise ValueError(
            f"{len(hypotheses)} hypotheses but {len(references)} references; they must pair up"
        )
    if not hypotheses:
        raise ValueError("corpus_bleu needs at least one sentence pair")
    matches, totals = [0] * max_order, [0] * max_order
    hyp_len = ref_len = 0
    for hyp, ref in zip(hypotheses, references):
        if lowercase:
            hyp, ref = hyp.lower(), ref.lower()
        h = tokenize_13a(hyp) if tokenize else hyp.split()
        r = tokenize_13a(ref) if tokenize else ref.split()
        hyp_len, ref_len = hyp_len + len(h), ref_len + len(r)
        for n in range(1, max_order + 1):
            hc, rc = _ngrams(h, n), _ngrams(r, n)
            matches[n - 1] += sum(min(c, rc[g]) for g, c in hc.items())
            totals[n - 1] += max(0, len(h) - n + 1)
    if hyp_len == 0 or not any(matches):
        return 0.0
    # sacrebleu's default "exp" smoothing (NIST): the i-th order with no match counts
    # 1 / (2**i * total) instead of 0.
    log_precision, smooth = 0.0, 1.0
    for m, t in zip(matches, totals):
        if t == 0:  # hypotheses too short for this order: BLEU is 0, as in sacrebleu
            return 0.0
        if m == 0:
            smooth *= 2.0
            log_precision += math.log(1.0 / (smooth * t))
        else:
            log_precision += math.log(m / t)
    brevity = min(0.0, 1.0 - ref_len / hyp_len)
    return 100.0 * math.exp(brevity + log_precision / max_order)
