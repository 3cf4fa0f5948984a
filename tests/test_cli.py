"""CLI and config overrides."""

import json

import ml_collections
import pytest

from embeddings_jax import cli
from embeddings_jax.config import apply_overrides, parse_value


def test_parse_value():
    assert parse_value("3") == 3 and parse_value("1e-3") == 0.001
    assert parse_value("true") is True and parse_value("None") is None
    assert parse_value("[1, 2]") == [1, 2] and parse_value("mnist") == "mnist"


def test_overrides_are_typed_and_checked():
    c = ml_collections.ConfigDict({"lr": 0.1, "epochs": 2, "name": "x", "model": {"hidden": 8}, "opt": None})
    apply_overrides(c, ["lr=1", "epochs=5", "name=fashion_mnist", "model.hidden=32", "opt=adam"])
    assert c.lr == 1.0 and isinstance(c.lr, float) and c.epochs == 5 and c.model.hidden == 32
    assert c.opt == "adam"
    apply_overrides(c, ["name=1,2", "name=3"])  # text keys keep the raw text, even if it parses
    assert c.name == "3"
    apply_overrides(c, ["name=1,2"])
    assert c.name == "1,2"
    with pytest.raises(ValueError, match="unknown config key 'model.depth'"):
        apply_overrides(c, ["model.depth=3"])
    with pytest.raises(ValueError, match="unknown config key 'nope.x'"):
        apply_overrides(c, ["nope.x=3"])
    with pytest.raises(ValueError, match="'epochs' expects int, got 'many'"):
        apply_overrides(c, ["epochs=many"])
    with pytest.raises(ValueError, match="not of the form key=value"):
        apply_overrides(c, ["epochs"])


def test_cli_lists_experiments(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert "vae" in out and "runlocal" in out
    with pytest.raises(SystemExit, match="unknown experiment 'nope'"):
        cli.main(["nope"])
    with pytest.raises(SystemExit, match="unknown argument '--lr=3'"):
        cli.main(["vae", "--lr=3"])
    with pytest.raises(SystemExit, match="config error: unknown config key 'nonsense'"):
        cli.main(["vae", "--config", "runlocal", "--config.nonsense=1"])


def test_cli_runs_vae_runlocal_end_to_end(tmp_path, shared_data, capsys):
    shared_data("mnist")
    workdir = tmp_path / "run"
    argv = ["vae", "--config=runlocal", "--config.train_subset=1024", "--config.test_subset=100",
            "--config.iwae_samples=10", f"--workdir={workdir}"]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert '"mnist_test_elbo_nats"' in printed
    saved = json.loads((workdir / "vae_mnist.json").read_text())
    assert saved["config"]["train_subset"] == 1024
    assert 100 < saved["mnist_test_neg_elbo_nats"] < 400
    assert saved["mnist_test_nll_iwae10_nats"] <= saved["mnist_test_neg_elbo_nats"] + 5
    assert (workdir / "config.json").exists() and (workdir / "metrics.jsonl").exists()
    assert (workdir / "vae_mnist_images.png").stat().st_size > 1000
    assert max(p.name for p in (workdir / "checkpoints").iterdir() if p.name.isdigit()) == "8"
