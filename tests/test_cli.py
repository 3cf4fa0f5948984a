"""CLI and config overrides."""

import importlib
import io
import json
import sys

import ml_collections
import pytest

from embeddings_jax import cli
from embeddings_jax.config import parse_arg

CONFIG_FILE = """
import ml_collections

def get_config(arg=None):
    c = ml_collections.ConfigDict()
    c.lr, c.epochs, c.name, c.flag, c.sizes, c.names = 0.1, 2, "x", True, (1, 2), ["a"]
    c.model = ml_collections.ConfigDict({"hidden": 8})
    c.arg = str(arg)
    return c
"""


def test_parse_arg():
    assert parse_arg("runlocal, bpe", {"runlocal", "bpe", "cpu"}, "demo") == {"runlocal", "bpe"}
    assert parse_arg(None, {"runlocal"}, "demo") == frozenset()
    with pytest.raises(ValueError, match=r"unknown demo config args \['nope'\]; choose from \['runlocal'\]"):
        parse_arg("runlocal,nope", {"runlocal"}, "demo")


def test_overrides_are_typed_and_checked(tmp_path, monkeypatch):
    path = tmp_path / "demo_config.py"
    path.write_text(CONFIG_FILE)
    monkeypatch.setattr(cli.importlib.util, "find_spec", lambda name: type("S", (), {"origin": str(path)}))
    load = lambda *args: cli.load_config("demo", cli._config_argv("demo", list(args))[0])
    c = load("--config", "fast", "--config.lr=1", "--config.epochs=5", "--config.name=fashion_mnist",
             "--config.model.hidden=32", "--noconfig.flag", "--config.sizes=(3, 4)")
    assert c.lr == 1.0 and isinstance(c.lr, float) and c.epochs == 5 and c.model.hidden == 32
    assert c.name == "fashion_mnist" and c.flag is False and c.sizes == (3, 4) and c.arg == "fast"
    assert load("--config.name=1,2").name == "1,2"  # text keys keep the raw text, even if it parses
    assert load("--config.names=[softmax, bpr]").names == ["softmax", "bpr"]
    assert load("--config.names=['x', 'y']").names == ["x", "y"]
    assert load(f"--config={path}:other").arg == "other"  # any config file, with its argument
    with pytest.raises(ValueError, match="unknown config key 'model.depth'"):
        load("--config.model.depth=3")
    with pytest.raises(ValueError, match="unknown config key 'nope.x'"):
        load("--config.nope.x=3")
    with pytest.raises(ValueError, match="config.epochs=many"):
        load("--config.epochs=many")
    with pytest.raises(ValueError, match="config.epochs=True"):
        load("--config.epochs=True")


def test_cli_help_lists_every_key(capsys):
    assert cli.main(["vae", "--config", "runlocal", "--help"]) == 0
    out = capsys.readouterr().out
    assert "train_subset" in out and "4096" in out and "learning_rate" in out
    assert "importance samples of the IWAE log-likelihood bound" in out  # the key's own comment


@pytest.mark.parametrize("name", sorted(cli.available_experiments()))
def test_every_experiment_help_gives_each_key_a_default_and_a_meaning(name, capsys):
    assert cli.main([name, "--help"]) == 0
    lines = capsys.readouterr().out.splitlines()
    keys = cli._flatten(importlib.import_module(f"experiments.{name}").get_config())
    for key in keys:
        (line,) = [x for x in lines if x.split()[:1] == [key]]
        assert len(line.split()) >= 3, f"{name}: config key {key!r} has no meaning in --help: {line!r}"


def test_run_summary_is_a_short_table_with_the_paths(tmp_path):
    result = {"corpus_words": 45772, "sgns": {"analogy_acc": 0.98316, "std": {"analogy_acc": 0.0},
                                              "sections": {"family": 1.0}, "per_seed": [{"x": 1}]},
              **{f"flickr8k_test_metric_{i}": i / 7 for i in range(40)}}
    (tmp_path / "checkpoints" / "3").mkdir(parents=True)
    written = [tmp_path / "vectors.txt", tmp_path / "plot.png",
               *[tmp_path / "checkpoints" / "3" / f"part{i}" for i in range(20)]]
    text = cli.run_summary("demo", result, 2.5, written, [tmp_path], tmp_path / "result.json")
    lines = text.splitlines()
    assert len(lines) <= 30 and not text.lstrip().startswith("{")
    assert "| sgns.analogy_acc" in text and "0.9832" in text and "45,772" in text
    assert "std" not in text and "family" not in text and "per_seed" not in text  # one seed: no spread
    assert f"24 more in {tmp_path / 'result.json'}" in text
    assert "wrote 22 files:" in text and f"{tmp_path / 'vectors.txt'}" in text
    assert f"{tmp_path / 'checkpoints'}/ (20 files)" in text
    with pytest.raises(SystemExit, match="--workdir is empty"):
        cli.main(["vae", "--workdir="])


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
    assert "vae finished in" in printed and "| neg_elbo_nats" in printed  # a table, not JSON
    assert str(workdir / "vae_mnist_images.png") in printed and str(workdir / "checkpoints") in printed
    assert json.loads((workdir / "result.json").read_text())["mnist_test_neg_elbo_nats"] > 100
    saved = json.loads((workdir / "vae_mnist.json").read_text())
    assert saved["config"]["train_subset"] == 1024
    assert 100 < saved["mnist_test_neg_elbo_nats"] < 400
    assert saved["mnist_test_nll_iwae10_nats"] <= saved["mnist_test_neg_elbo_nats"] + 5
    assert (workdir / "config.json").exists() and (workdir / "metrics.jsonl").exists()
    assert (workdir / "vae_mnist_images.png").stat().st_size > 1000
    assert max(p.name for p in (workdir / "checkpoints").iterdir() if p.name.isdigit()) == "8"


def test_a_workdir_keeps_one_config(tmp_path, capsys):
    first = ml_collections.ConfigDict({"lr": 0.1, "model": {"hidden": 8}})
    workdir = tmp_path / "run"
    cli.claim_workdir(workdir, first, overwrite=False)
    (workdir / "checkpoints").mkdir()
    cli.claim_workdir(workdir, first, overwrite=False)  # same config: resumes
    second = ml_collections.ConfigDict({"lr": 0.1, "model": {"hidden": 64}})
    with pytest.raises(SystemExit, match=r"another config \(differing keys: model.hidden\).*--overwrite"):
        cli.claim_workdir(workdir, second, overwrite=False)
    assert json.loads((workdir / "config.json").read_text())["model"]["hidden"] == 8  # untouched
    cli.claim_workdir(workdir, second, overwrite=True)
    (aside,) = workdir.glob("previous-*")
    assert (aside / "checkpoints").is_dir() and json.loads((aside / "config.json").read_text())["model"]["hidden"] == 8
    assert json.loads((workdir / "config.json").read_text())["model"]["hidden"] == 64
    (tmp_path / "file").write_text("x")
    with pytest.raises(SystemExit, match="is a file"):
        cli.claim_workdir(tmp_path / "file", first, overwrite=False)


class _Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("terminal, quiet, shown", [(True, None, True), (True, "1", False), (False, None, False)])
def test_progress_bars_show_on_a_terminal_unless_quiet(monkeypatch, terminal, quiet, shown):
    from embeddings_jax.models.word2vec import Word2Vec

    if quiet is None:
        monkeypatch.delenv("EMBEDDINGS_JAX_QUIET", raising=False)
    else:
        monkeypatch.setenv("EMBEDDINGS_JAX_QUIET", quiet)
    stream = _Terminal() if terminal else io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    Word2Vec(min_count=1, progress=True).build_vocab([["a", "b"], ["b", "c"]])
    assert ("vocabulary: 100%" in stream.getvalue()) is shown


def test_without_a_checkout_the_cli_says_how_to_get_the_experiments(tmp_path, monkeypatch):
    monkeypatch.setattr(cli, "CHECKOUT", tmp_path)
    with pytest.raises(SystemExit, match=r"git clone https://github.com/embeddings-jax/embeddings_jax "
                                         r"&& cd embeddings_jax && pip install -e"):
        cli._experiments()
