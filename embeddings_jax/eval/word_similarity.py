"""Word-pair similarity evaluation (WordSim-353, SimLex-999, MEN, ... in gensim's format).

File format: ``word1<delim>word2<delim>score`` per line; lines starting with ``#`` are comments.
Returns Pearson and Spearman correlation between cosine similarities and human scores over the
pairs whose words are both among the ``restrict_vocab`` most frequent words, and the percentage of
out-of-vocabulary pairs, as gensim's ``evaluate_word_pairs`` does.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib

import numpy as np


@dataclasses.dataclass
class PairResult:
    pearson: float
    spearman: float
    oov_ratio: float  # percent of pairs skipped (gensim's unit)
    n_pairs: int


def read_word_pairs(path: str | os.PathLike, delimiter: str = "\t") -> list[tuple[str, str, float]]:
    """``[(w1, w2, score)]``; raises ``ValueError`` naming a malformed line."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"word-pair file {path} does not exist")
    pairs = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            if not line.strip() or line.startswith("#"):
                continue
            parts = line.rstrip("\n").split(delimiter)
            try:
                pairs.append((parts[0].strip(), parts[1].strip(), float(parts[2])))
            except (IndexError, ValueError):
                raise ValueError(
                    f"{path}:{n}: expected 'word1{delimiter!r}word2{delimiter!r}score', got {line.strip()!r}"
                ) from None
    if not pairs:
        raise ValueError(f"{path}: no word pairs found")
    return pairs


def rankdata(x: np.ndarray) -> np.ndarray:
    """Ranks starting at 1 with ties given their average rank (scipy's default)."""
    x = np.asarray(x, np.float64)
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), np.float64)
    ranks[order] = np.arange(1, len(x) + 1)
    _, inv, counts = np.unique(x, return_inverse=True, return_counts=True)
    sums = np.bincount(inv, weights=ranks)
    return sums[inv] / counts[inv]


def pearson(x, y) -> float:
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    x, y = x - x.mean(), y - y.mean()
    den = np.sqrt((x * x).sum() * (y * y).sum())
    return float((x * y).sum() / den) if den > 0 else float("nan")


def spearman(x, y) -> float:
    return pearson(rankdata(x), rankdata(y))


def pair_similarities(
    kv, pairs, restrict_vocab: int | None = 300_000, case_insensitive: bool = True,
    dummy4unknown: bool = False, source="the word pairs", infer_oov: bool = False,
) -> tuple[list[float], list[float], int]:  # fmt: skip
    """``(model cosines, human scores, oov pairs)`` of ``(a, b, score)`` pairs, as gensim scores them:
    words matched among the first ``restrict_vocab`` keys (each case-folded spelling to its first,
    most frequent key), a pair with an unknown word dropped, or scored 0 with ``dummy4unknown``.
    ``infer_oov`` scores every pair instead, asking ``kv.get_vector`` for unknown words (lower-cased
    when ``case_insensitive``): fastText's vectors from character n-grams. ``oov`` still counts the
    pairs with a word outside the vocabulary.

    Raises ``ValueError`` naming ``source`` when fewer than 2 pairs are scored.
    """
    limit = len(kv) if restrict_vocab is None else min(int(restrict_vocab), len(kv))
    fold = str.upper if case_insensitive else str
    known: dict[str, str] = {}
    for k in kv.index_to_key[:limit]:
        known.setdefault(fold(k), k)
    model, human, oov = [], [], 0
    for a, b, score in pairs:
        ka, kb = known.get(fold(a)), known.get(fold(b))
        if ka is None or kb is None:
            oov += 1
            if infer_oov:
                ka = ka or (a.lower() if case_insensitive else a)
                kb = kb or (b.lower() if case_insensitive else b)
            elif not dummy4unknown:
                continue
        if ka is None or kb is None:
            sim = 0.0
        else:
            sim = float(kv.get_vector(ka, norm=True) @ kv.get_vector(kb, norm=True))
        model.append(sim)
        human.append(score)
    if len(model) < 2:
        raise ValueError(f"{source}: fewer than 2 pairs have both words in the vocabulary")
    return model, human, oov


def evaluate_word_pairs(
    kv, path, delimiter: str = "\t", restrict_vocab: int = 300_000,
    case_insensitive: bool = True, dummy4unknown: bool = False, infer_oov: bool = False,
) -> PairResult:  # fmt: skip
    """Correlation of ``kv``'s cosine similarities with the human scores in ``path`` (every pair
    with ``infer_oov``, see :func:`pair_similarities`)."""
    pairs = read_word_pairs(path, delimiter)
    sims, gold, oov = pair_similarities(kv, pairs, restrict_vocab, case_insensitive, dummy4unknown, path,
                                        infer_oov)  # fmt: skip
    return PairResult(
        pearson(sims, gold), spearman(sims, gold), 100.0 * oov / len(pairs), len(sims)
    )


def default_pair_files() -> dict[str, pathlib.Path]:
    """WordSim-353 and SimLex-999 as shipped inside gensim's wheel (empty if gensim is absent)."""
    try:
        from gensim.test.utils import datapath
    except ImportError:
        return {}
    files = {"wordsim353": pathlib.Path(datapath("wordsim353.tsv")),
             "simlex999": pathlib.Path(datapath("simlex999.txt"))}  # fmt: skip
    return {k: v for k, v in files.items() if v.is_file()}
