"""CLIP experiment: tokenizer, caption batches, metrics, sharded train step, report, runlocal end to end."""

import json

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from embeddings_jax.data import class_captions
from embeddings_jax.data.wordpiece import WordPieceTokenizer
from embeddings_jax.eval.linear_probe import linear_probe
from embeddings_jax.models import dual_encoder
from experiments import clip
from experiments.common import RESULTS_DIR
from experiments.reports import clip as report


def _token_tables(config):
    return class_captions.token_tables("fashion_mnist", config.max_len, seed=config.seed,
                                       piece_dropout=config.piece_dropout, piece_variants=config.piece_variants)


def test_word_pieces_fall_back_for_unseen_words():
    tok = WordPieceTokenizer(["a photo of a sneaker."])
    assert tok.tokenize("A photo of a sneaker.") == ["a", "photo", "of", "a", "sneaker", "."]
    assert tok.tokenize("a photograph") == ["a", "photo", "##g", "##r", "##a", "##p", "##h"]
    ids = tok.encode(["a photo", "sneaker"], max_len=4)
    assert ids.shape == (2, 4) and ids.dtype == np.int32 and ids[1, 1:].tolist() == [0, 0, 0]
    spelled = tok.tokenize("photo", np.random.default_rng(0), dropout=1.0)
    assert spelled == ["p", "##h", "##o", "##t", "##o"]
    with pytest.raises(ValueError, match="raise max_len"):
        tok.encode(["a photo of a sneaker."], max_len=3)


def test_held_out_templates_are_unseen_and_tables_align():
    assert not set(class_captions.TRAIN_TEMPLATES) & set(class_captions.TEST_TEMPLATES)
    config = clip.get_config("runlocal")
    tok, tables = _token_tables(config)
    assert tables["train"].shape == (len(class_captions.TRAIN_TEMPLATES), 10, config.max_len)
    assert tables["heldout"].shape[:2] == (len(class_captions.TEST_TEMPLATES), 10)
    assert tables["train_dropout"].shape[0] == config.piece_variants * len(class_captions.TRAIN_TEMPLATES)
    inv = {i: p for p, i in tok.vocab.items()}
    words = [inv[i] for i in tables["train"][2, 7] if i]  # "an image of a {}." for class 7
    assert words == ["an", "image", "of", "a", "sneaker", "."]
    assert class_captions.class_phrases("mnist")[3] == "digit three"


def test_caption_batches_are_deterministic_and_paired():
    images = np.arange(40, dtype=np.uint8).reshape(40, 1, 1)
    labels = (np.arange(40) % 4).astype(np.int32)
    table = np.arange(3 * 4 * 2, dtype=np.int32).reshape(3, 4, 2)  # [template, class, L]
    batch_fn, steps = class_captions.caption_batches(images, labels, table, batch_size=8, seed=1)
    assert steps == 5
    a, b = batch_fn(7), batch_fn(7)
    np.testing.assert_array_equal(a["tokens"], b["tokens"])
    cls = labels[a["image"][:, 0, 0]]
    assert np.all((a["tokens"][:, 0] // 2) % 4 == cls)  # each caption describes its own image's class


def test_retrieval_and_linear_probe():
    labels = np.array([0, 1, 2, 0, 1, 2])
    emb = np.eye(3)[labels]
    r = dual_encoder.class_recall(emb, labels, np.eye(3), np.arange(3))
    assert r == {f"{d}_recall_at_{k}": 1.0 for d in ("image_to_text", "text_to_image") for k in (1, 5)}
    r = dual_encoder.class_recall(emb, labels, np.roll(np.eye(3), 1, axis=1), np.arange(3))
    assert r["image_to_text_recall_at_1"] == 0.0 and r["text_to_image_recall_at_1"] == 0.0
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    x = np.eye(3)[y] * 3 + rng.normal(size=(300, 3))
    assert linear_probe(x[:200], y[:200], x[200:], y[200:], steps=100) > 0.85


def test_sharded_train_step_loss_equals_single_device():
    """The train-step loss and gradient on 8 devices (blockwise shard_map CLIP loss) equal one device's."""
    from embeddings_jax.train import make_mesh, shard_batch

    config = clip.get_config("runlocal")
    config.width = config.embed_dim = 8
    tok, tables = _token_tables(config)
    rng = np.random.default_rng(0)
    batch = {
        "image": rng.integers(0, 256, (16, 28, 28)).astype(np.uint8),
        "tokens": tables["train"][rng.integers(0, 8, 16), rng.integers(0, 10, 16)],
    }
    model = dual_encoder.model_from_config(config, len(tok), "clip")
    params = jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, 28, 28)), batch["tokens"][:1])["params"]
    out = []
    for devices, block in ((8, 3), (1, 0)):
        config.loss_block_size = block
        mesh = make_mesh(devices)
        fn = jax.jit(jax.value_and_grad(dual_encoder.make_loss_fn(model, "clip", mesh, config), has_aux=True))
        out.append(fn(params, shard_batch(batch, mesh), None))
    ((v, _), g), ((v1, _), g1) = out
    np.testing.assert_allclose(v, v1, rtol=1e-5)
    for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(g1)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_runlocal_end_to_end(shared_data, tmp_path):
    shared_data("fashion_mnist")
    config = clip.get_config("runlocal")
    config.train_subset, config.test_subset, config.probe_train_subset = 256, 128, 256
    config.num_devices = 1  # the 8-device step is tested above; this checks the whole pipeline
    result = clip.run(config, str(tmp_path))
    for loss in dual_encoder.LOSSES:
        for key in ("zeroshot_acc_heldout_templates", "image_to_text_recall_at_5", "text_to_image_recall_at_1",
                    "linear_probe_acc"):
            assert 0.0 <= result[f"fashion_mnist_test_{key}_{loss}"] <= 1.0
    assert (tmp_path / "clip.md").exists() and (tmp_path / "clip_similarity.png").exists()
    assert (tmp_path / "fashion_mnist_clip" / "metrics.jsonl").exists()


def test_bad_config():
    with pytest.raises(ValueError, match="unknown clip config args"):
        clip.get_config("runlocal,imagenet")
    config = clip.get_config("runlocal")
    config.losses = "clip,triplet"
    with pytest.raises(ValueError, match="config.losses"):
        clip.run(config, "/nonexistent")


def _saved(name: str) -> tuple[ml_collections.ConfigDict, dict, str]:
    """The committed results/<name>.json as (config, metrics) and its markdown without the run footer."""
    saved = json.loads((RESULTS_DIR / f"{name}.json").read_text())
    metrics = {k: v for k, v in saved.items() if k not in ("command", "hardware", "git_sha", "config")}
    markdown = (RESULTS_DIR / f"{name}.md").read_text().split("\n\nCommand: `")[0]
    return ml_collections.ConfigDict(saved["config"]), metrics, markdown


def test_report_renders_the_committed_results():
    config, metrics, markdown = _saved("clip")
    datasets, losses = config.datasets.split(","), config.losses.split(",")
    assert report.markdown(config, metrics, datasets, losses, "clip_similarity.png").rstrip() == markdown


def test_report_writes_the_same_files_twice(tmp_path):
    config, metrics, _ = _saved("clip")
    config.write_results = False
    rng = np.random.default_rng(0)
    example = {"classes": [0, 1, 2], "images": rng.integers(0, 256, (3, 28, 28)).astype(np.uint8),
               "sims": rng.uniform(-1, 1, (3, 3)), "dataset": "fashion_mnist", "loss": "clip"}
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        report.write(config, metrics, ["fashion_mnist", "mnist"], ["clip", "siglip"], example, tmp_path / d)
    for f in ("clip.md", "clip.json", "clip_similarity.png"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    assert json.loads((tmp_path / "a" / "clip.json").read_text())["config"] == config.to_dict()
