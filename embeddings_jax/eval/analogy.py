"""Word-analogy evaluation ("a is to b as c is to ?") in gensim's questions-words format.

File format: section headers ``: name`` followed by lines ``a b c d``. Sections whose name starts
with ``gram`` are syntactic, the others semantic (Mikolov et al.'s split). As in gensim's
``evaluate_word_analogies``: only the ``restrict_vocab`` most frequent words are candidates,
matching is case-insensitive by default, a question with a word outside that vocabulary is skipped
(reported as out-of-vocabulary) unless ``dummy4unknown`` counts it as wrong, and the answer is the
best 3CosAdd word ``argmax cos(x, b - a + c)`` that is not one of ``a, b, c``.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from embeddings_jax.ops.similarity import l2_normalize
from embeddings_jax.train.logging import progress


@dataclasses.dataclass
class AnalogyResult:
    accuracy: float  # over answered (in-vocabulary) questions
    semantic: float
    syntactic: float
    sections: list[dict]  # gensim layout: {"section", "correct": [(a,b,c,d)], "incorrect": [...]}
    n_questions: int
    n_answered: int

    @property
    def oov_ratio(self) -> float:
        return 1.0 - self.n_answered / max(self.n_questions, 1)

    def summary(self) -> dict:
        per = {
            s["section"]: _acc(len(s["correct"]), len(s["incorrect"]))
            for s in self.sections
            if s["section"] != "Total accuracy"
        }
        return {
            "accuracy": self.accuracy, "semantic": self.semantic, "syntactic": self.syntactic,
            "n_questions": self.n_questions, "n_answered": self.n_answered,
            "oov_ratio": self.oov_ratio, "sections": per,
        }  # fmt: skip


def _acc(c: int, i: int) -> float:
    return c / (c + i) if c + i else 0.0


def read_analogies(path: str | os.PathLike) -> list[tuple[str, list[tuple[str, str, str, str]]]]:
    """Sections of a questions-words file: ``[(name, [(a, b, c, d), ...]), ...]``.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` naming the line for a
    question before any section header or a line that is not four words.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"analogy file {path} does not exist")
    sections: list = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            if line.startswith(":"):
                sections.append((line.lstrip(": ").strip(), []))
                continue
            words = line.split()
            if not sections:
                raise ValueError(f"{path}:{n}: question before the first ': section' header")
            if len(words) != 4:
                raise ValueError(f"{path}:{n}: expected 4 words 'a b c d', got {line!r}")
            sections[-1][1].append(tuple(words))
    if not any(qs for _, qs in sections):
        raise ValueError(
            f"{path}: no analogy questions found (expected ': section' + 'a b c d' lines)"
        )
    return sections


def evaluate_word_analogies(
    kv, path, restrict_vocab: int = 300_000, case_insensitive: bool = True,
    dummy4unknown: bool = False, batch_size: int = 1024,
) -> AnalogyResult:  # fmt: skip
    """3CosAdd analogy accuracy of :class:`~embeddings_jax.vectors.KeyedVectors` ``kv``."""
    sections_in = read_analogies(path)
    limit = min(restrict_vocab, len(kv))
    keys = kv.index_to_key[:limit]
    norm = (lambda w: w.upper()) if case_insensitive else (lambda w: w)
    # Case-folded word -> index of its most frequent spelling (gensim keeps the first seen).
    ok: dict[str, int] = {}
    for i, k in enumerate(keys):
        ok.setdefault(norm(k), i)
    folded_id = np.array([ok[norm(k)] for k in keys])  # spelling -> canonical index
    normed = jnp.asarray(kv.get_normed_vectors()[:limit])

    sections_out, answered, total = [], 0, 0
    totals = {"semantic": [0, 0], "syntactic": [0, 0]}
    all_c, all_i = [], []
    for name, questions in progress(sections_in, desc="analogies"):
        correct, incorrect, rows, qs = [], [], [], []
        for q in questions:
            total += 1
            fq = tuple(norm(w) for w in q)
            if all(w in ok for w in fq):
                rows.append([ok[w] for w in fq])
                qs.append(q)
            elif dummy4unknown:
                incorrect.append(q)
        rows = np.asarray(rows, np.int64).reshape(-1, 4)
        for s in range(0, len(rows), batch_size):
            r = rows[s : s + batch_size]
            pred = _predict(normed, jnp.asarray(r[:, :3]), jnp.asarray(folded_id))
            for q, p, d in zip(qs[s : s + batch_size], np.asarray(pred), r[:, 3]):
                (correct if p == d else incorrect).append(tuple(norm(w) for w in q))
        answered += len(rows)
        kind = "syntactic" if name.startswith("gram") else "semantic"
        totals[kind][0] += len(correct)
        totals[kind][1] += len(incorrect)
        all_c += correct
        all_i += incorrect
        sections_out.append({"section": name, "correct": correct, "incorrect": incorrect})
    sections_out.append({"section": "Total accuracy", "correct": all_c, "incorrect": all_i})
    return AnalogyResult(
        _acc(len(all_c), len(all_i)), _acc(*totals["semantic"]), _acc(*totals["syntactic"]),
        sections_out, total, answered,
    )  # fmt: skip


@jax.jit
def _predict(normed, abc, folded_id):
    """Canonical index of ``argmax_x cos(x, b - a + c)`` over ``x`` not folding to a, b or c."""
    a, b, c = normed[abc[:, 0]], normed[abc[:, 1]], normed[abc[:, 2]]
    q = b - a + c
    q = l2_normalize(q)
    scores = q @ normed.T  # [Q, V]
    fid = folded_id[None, :]
    banned = (fid == abc[:, 0:1]) | (fid == abc[:, 1:2]) | (fid == abc[:, 2:3])
    best = jnp.argmax(jnp.where(banned, -jnp.inf, scores), axis=1)
    return folded_id[best]
