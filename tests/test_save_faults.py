"""A Word2Vec save killed (SIGKILL) at any of its file-system steps leaves a model that loads whole:
the old one or the new one, never a mix (the bug of the old save: new vocabulary, old vectors)."""

import concurrent.futures
import os
import subprocess
import sys

import numpy as np
import pytest

from embeddings_jax.models.word2vec import Word2Vec

SENTENCES = [["a", "b", "c", "d", "e", "f", "g"][: 3 + (i % 5)] for i in range(40)]

# Builds the model of ``version`` (its vocabulary and tables differ from the other version's) and
# saves it over ``path``, SIGKILLing itself at its ``kill_at``-th file-system call; prints the count.
CHILD = r"""
import os, signal, sys
kill_at, path, version = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
sys.path.insert(0, os.path.dirname(os.path.abspath(sys.argv[4])))
from test_save_faults import model_of
model = model_of(version)
steps = 0
def counted(real):
    def call(*args, **kwargs):
        global steps
        steps += 1
        if steps == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)
    return call
for name in ("replace", "rename", "fsync", "unlink", "rmdir", "mkdir", "open", "scandir"):
    setattr(os, name, counted(getattr(os, name)))
model.save(path)
print(steps)
"""


def model_of(version: int) -> Word2Vec:
    """Version 0 knows 5 words, version 1 all 7, with tables from different seeds (untrained)."""
    sentences = [[w for w in s if version or w not in "fg"] for s in SENTENCES]
    model = Word2Vec(vector_size=8, window=2, min_count=1, seed=version)
    model.build_vocab(sentences)
    model.reset_params()
    return model


def _run(kill_at: int, path, version: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": ""}
    return subprocess.run([sys.executable, "-c", CHILD, str(kill_at), str(path), str(version), __file__],
                          capture_output=True, text=True, timeout=120, env=env, check=False)


def _same(model: Word2Vec, reference: Word2Vec) -> bool:
    return model.wv.index_to_key == reference.wv.index_to_key and all(
        np.array_equal(np.asarray(model.params[k]), np.asarray(reference.params[k])) for k in reference.params)


@pytest.mark.slow
def test_word2vec_save_killed_at_every_step_leaves_old_or_new(tmp_path):
    old, new = model_of(0), model_of(1)
    full = _run(0, tmp_path / "count", 1)  # 0: never killed; counts the steps of a whole save
    assert full.returncode == 0, full.stderr
    steps = int(full.stdout.split()[-1])
    moments = sorted({1 + round(i * (steps - 1) / 19) for i in range(20)})
    assert len(moments) >= min(20, steps)

    for kill_at in moments:  # saved here first, one at a time (Orbax saves are not thread-safe)
        old.save(tmp_path / f"model-{kill_at}")

    def trial(kill_at):
        path = tmp_path / f"model-{kill_at}"
        return kill_at, path, _run(kill_at, path, 1)

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = list(pool.map(trial, moments))
    outcomes = []
    for kill_at, path, proc in results:
        assert proc.returncode == -9, (kill_at, proc.returncode, proc.stderr[-2000:])
        loaded = Word2Vec.load(path)
        outcomes.append("new" if _same(loaded, new) else "old" if _same(loaded, old) else "mixed")
    assert "mixed" not in outcomes, list(zip(moments, outcomes))
    assert outcomes[0] == "old" and "new" in outcomes  # early kills keep the old model, late ones the new
