"""Cross-lingual mapping: each map and CSLS against a numpy reference, recovery of a known
rotation with and without a dictionary, dictionary files and splits, and bad input."""

import numpy as np
import pytest

from embeddings_jax.data.dictionaries import load_dictionary, split_dictionary, word_tokens
from embeddings_jax.models.crosslingual import CrossLingualMapping, SelfLearning
from embeddings_jax.ops import alignment
from embeddings_jax.vectors import KeyedVectors

N, D = 400, 16


def _norm(x):
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    x = x - x.mean(0)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def worlds():
    """A source space, and a target space that is a rotated, noisy, reordered copy of it."""
    rng = np.random.default_rng(0)
    # Anisotropic (as word vectors are), so similarity distributions tell words apart.
    x = rng.normal(size=(N, D)) * np.linspace(2.0, 0.5, D)
    q, _ = np.linalg.qr(rng.normal(size=(D, D)))
    perm = rng.permutation(N)  # target word perm[i] translates source word i
    z = np.empty_like(x)
    z[perm] = x @ q + 0.01 * rng.normal(size=x.shape)
    src = KeyedVectors([f"s{i}" for i in range(N)], x.astype(np.float32))
    trg = KeyedVectors([f"t{j}" for j in range(N)], z.astype(np.float32))
    pairs = [(f"s{i}", f"t{perm[i]}") for i in range(N)]
    return src, trg, pairs, q, perm


def test_maps_equal_numpy_reference():
    rng = np.random.default_rng(1)
    x, z = rng.normal(size=(50, 8)).astype(np.float32), rng.normal(size=(50, 8)).astype(np.float32)
    u, _, vt = np.linalg.svd(x.T @ z)
    np.testing.assert_allclose(alignment.procrustes(x, z), u @ vt, atol=1e-4)
    np.testing.assert_allclose(alignment.least_squares_map(x, z), np.linalg.lstsq(x, z, rcond=None)[0], atol=1e-4)
    np.testing.assert_allclose(alignment.normalize_embeddings(x), _norm(x), atol=1e-5)


def test_csls_equals_numpy_reference():
    rng = np.random.default_rng(2)
    q, z = _norm(rng.normal(size=(30, 8))).astype(np.float32), _norm(rng.normal(size=(70, 8))).astype(np.float32)
    s = q @ z.T
    k = 5
    r_q = np.sort(s, 1)[:, -k:].mean(1)
    r_z = np.sort(s.T, 1)[:, -k:].mean(1)
    ref = 2 * s - r_q[:, None] - r_z[None, :]
    np.testing.assert_allclose(alignment.csls_scores(q, z, k), ref, atol=1e-5)
    scores, ids = alignment.csls_topn(q, z, r_q.astype(np.float32), r_z.astype(np.float32), 3)
    np.testing.assert_array_equal(ids, np.argsort(-ref, 1)[:, :3])
    np.testing.assert_allclose(scores, -np.sort(-ref, 1)[:, :3], atol=1e-5)


def test_vecmap_maps_align_an_exact_rotation(worlds):
    src, trg, _, _, perm = worlds
    x, z = src.vectors[:100], trg.vectors[perm[:100]]
    wx, wz = alignment.vecmap_maps(x, z)
    np.testing.assert_allclose(x @ np.asarray(wx), z @ np.asarray(wz), atol=0.05)


@pytest.mark.parametrize("method", ["least_squares", "procrustes", "vecmap"])
def test_a_dictionary_recovers_the_rotation(worlds, method):
    src, trg, pairs, _, _ = worlds
    train, test = pairs[:200], pairs[200:]
    m = CrossLingualMapping(src, trg, method=method).fit(train)
    assert m.evaluate(test)["precision@1"] > 0.97
    assert m.translate(["s300"], topn=1)[0][0][0] == dict(pairs)["s300"]


def test_refinement_and_unsupervised_recover_the_rotation(worlds):
    src, trg, pairs, _, _ = worlds
    sl = SelfLearning(vocab=N, max_iterations=20, patience=2)
    refined = CrossLingualMapping(src, trg).fit(pairs[:10], refine=5, self_learning=sl)
    assert refined.evaluate(pairs[10:])["precision@1"] > 0.97
    unsup = CrossLingualMapping(src, trg, method="vecmap").fit_unsupervised(
        init_vocab=N, self_learning=SelfLearning(vocab=N, max_iterations=40, keep_prob=0.1, patience=2)
    )
    assert unsup.evaluate(pairs)["precision@1"] > 0.97
    assert unsup.history and all(np.isfinite(unsup.history))


def test_stochastic_induction_is_deterministic_for_a_key(worlds):
    src = worlds[0]
    x = alignment.normalize_embeddings(src.vectors)
    key = __import__("jax").random.key(3)
    a = alignment.induce_dictionary(x, x, key, 0.5, 10)
    b = alignment.induce_dictionary(x, x, key, 0.5, 10)
    np.testing.assert_array_equal(a[0], b[0])
    exact = alignment.induce_dictionary(x, x, key, 1.0, 10)
    np.testing.assert_array_equal(exact[0], np.arange(N))  # a space induces itself


def test_dictionary_files_and_splits(tmp_path):
    path = tmp_path / "d.tsv"
    path.write_text("# comment\none\tun\none\tune\n\nHouse\tMaison\ncat\tchat\n", encoding="utf-8")
    pairs = load_dictionary(path)
    assert pairs == [("one", "un"), ("one", "une"), ("house", "maison"), ("cat", "chat")]
    train, test = split_dictionary(pairs * 50 + [(f"w{i}", "x") for i in range(1000)], 0.2, seed=1)
    heads_train, heads_test = {a for a, _ in train}, {a for a, _ in test}
    assert not heads_train & heads_test and 0.1 < len(heads_test) / 1003 < 0.3
    assert word_tokens("L'homme d'aujourd'hui a 3 chats, quelqu'un?") == [
        "l'", "homme", "d'", "aujourd'hui", "a", "chats", "quelqu'un"]


def test_registered_dictionary_loads(shared_data):
    shared_data("freedict")
    pairs = load_dictionary("en-fr")
    assert len(pairs) == 10090 and ("house", "maison") in pairs


def test_bad_input_is_refused(worlds, tmp_path):
    src, trg, pairs, _, _ = worlds
    with pytest.raises(ValueError, match="no pair of the dictionary"):
        CrossLingualMapping(src, trg).fit([("nope", "rien")])
    with pytest.raises(ValueError, match="not fitted"):
        CrossLingualMapping(src, trg).translate(["s1"])
    with pytest.raises(ValueError, match="method must be"):
        CrossLingualMapping(src, trg, method="cca")
    small = KeyedVectors(["a", "b"], np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match="equal dimensions"):
        CrossLingualMapping(small, trg)
    with pytest.raises(KeyError, match="not in the source vocabulary"):
        CrossLingualMapping(src, trg).fit(pairs[:50]).translate(["zzz"])
    bad = tmp_path / "bad.tsv"
    bad.write_text("one un\n", encoding="utf-8")
    with pytest.raises(ValueError, match="expected 'source<TAB>target'"):
        load_dictionary(bad)
    with pytest.raises(FileNotFoundError, match="no dictionary file"):
        load_dictionary(tmp_path / "missing.tsv")
    with pytest.raises(ValueError, match="test_fraction"):
        split_dictionary(pairs, 1.5)


def test_experiment_runs_every_row(tmp_path, shared_data):
    from experiments import crosslingual

    shared_data("fra-eng")
    shared_data("freedict")
    config = crosslingual.get_config("runlocal")
    config.max_sentences = 3000
    config.word2vec.vector_size = 16
    result = crosslingual.run(config, str(tmp_path))
    assert len(result) == 3 * len(crosslingual.ROWS)
    assert all(0.0 <= v <= 1.0 for v in result.values())
    md = (tmp_path / "crosslingual_en_fr.md").read_text()
    assert "VecMap unsupervised + CSLS" in md and (tmp_path / "crosslingual_en_fr.png").is_file()
