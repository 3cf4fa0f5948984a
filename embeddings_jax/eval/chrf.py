"""chrF: character n-gram F-score (Popović 2015), and chrF++ with word n-grams (Popović 2017).

``corpus_chrf(hyps, refs)`` equals ``sacrebleu.corpus_chrf(hyps, [refs]).score`` (sacrebleu's
``CHRF()`` defaults: character orders 1..6, no word n-grams, beta 2, whitespace removed, cased)
without sacrebleu installed. Statistics are summed over the corpus per order; precision and
recall are averaged over the orders that both sides have (sacrebleu's "effective order"), then
combined into one F-beta score, in percent.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence

_PUNCTUATION = set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")


def _char_ngrams(text: str, n: int) -> collections.Counter:
    return collections.Counter(text[i : i + n] for i in range(len(text) - n + 1))


def _words(text: str) -> list[str]:
    """chrF++ words: whitespace split, then one leading or trailing punctuation mark split off."""
    out = []
    for w in text.split():
        if len(w) > 1 and w[-1] in _PUNCTUATION:
            out += [w[:-1], w[-1]]
        elif len(w) > 1 and w[0] in _PUNCTUATION:
            out += [w[0], w[1:]]
        else:
            out.append(w)
    return out


def _ngram_counters(text: str, char_order: int, word_order: int, whitespace: bool):
    chars = text if whitespace else "".join(text.split())
    counters = [_char_ngrams(chars, n) for n in range(1, char_order + 1)]
    words = _words(text) if word_order else []
    counters += [
        collections.Counter(" ".join(words[i : i + n]) for i in range(len(words) - n + 1))
        for n in range(1, word_order + 1)
    ]
    return counters


def corpus_chrf(
    hypotheses: Sequence[str],
    references: Sequence[str],
    *,
    char_order: int = 6,
    word_order: int = 0,
    beta: float = 2.0,
    lowercase: bool = False,
    whitespace: bool = False,
) -> float:
    """Corpus chrF (``word_order=2``: chrF++) in percent of hypotheses against one reference each.

    Args:
      hypotheses, references: equal-length lists of detokenised sentences.
      char_order, word_order: highest character / word n-gram order (6 and 0 in sacrebleu).
      beta: weight of recall relative to precision.
      lowercase: case-insensitive chrF.
      whitespace: keep spaces inside character n-grams (sacrebleu removes them by default).
    """
    if len(hypotheses) != len(references):
        raise ValueError(
            f"{len(hypotheses)} hypotheses but {len(references)} references; they must pair up"
        )
    if not hypotheses:
        raise ValueError("corpus_chrf needs at least one sentence pair")
    if char_order < 1 or word_order < 0:
        raise ValueError(
            f"need char_order >= 1 and word_order >= 0, got {char_order}, {word_order}"
        )
    orders = char_order + word_order
    n_hyp, n_ref, n_match = [0] * orders, [0] * orders, [0] * orders
    for hyp, ref in zip(hypotheses, references):
        if lowercase:
            hyp, ref = hyp.lower(), ref.lower()
        hc = _ngram_counters(hyp, char_order, word_order, whitespace)
        rc = _ngram_counters(ref, char_order, word_order, whitespace)
        for i, (h, r) in enumerate(zip(hc, rc)):
            if r:  # sacrebleu counts no hypothesis n-grams of an order the reference lacks
                n_hyp[i] += sum(h.values())
            n_ref[i] += sum(r.values())
            n_match[i] += sum(min(c, r[g]) for g, c in h.items())
    precision = recall = 0.0
    effective = 0
    for h, r, m in zip(n_hyp, n_ref, n_match):
        if h > 0 and r > 0:
            precision, recall, effective = precision + m / h, recall + m / r, effective + 1
    if effective == 0:
        return 0.0
    precision, recall = precision / effective, recall / effective
    if precision + recall == 0:
        return 0.0
    b2 = beta**2
    return 100.0 * (1 + b2) * precision * recall / (b2 * precision + recall)
