"""Every Colab notebook runs end-to-end (runlocal mode), so none can rot; all share one setup cell,
which works in a checkout and, by cloning, outside one (Colab)."""

import importlib.metadata
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tomllib

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = pathlib.Path(__file__).resolve().parents[1]
COLAB = ROOT / "colab"
NOTEBOOKS = sorted(COLAB.glob("*.ipynb"))
REPOSITORY = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]
# Registry datasets each notebook reads (word2vec runs on its built-in synthetic corpus).
DATASETS = {
    "autoencoders": ["mnist"],
    "bert_embeddings": ["flickr8k_text"],
    "dual_encoder": ["fashion_mnist"],
    "recommender": ["ml-100k"],
    "seq2seq": ["multi30k"],
    "word2vec": [],
}


def read(path):
    return nbformat.read(path, as_version=4)


def setup_cell(nb):
    return next(c.source for c in nb.cells if c.cell_type == "code")


def execute(nb, cwd):
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(cwd)}})
    return client.execute()


def test_every_notebook_declares_its_datasets():
    assert sorted(DATASETS) == [p.stem for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_opens_with_badge_and_the_shared_setup_cell(path):
    nb = read(path)
    badge = f"https://colab.research.google.com/github/{REPOSITORY.removeprefix('https://github.com/')}/blob/main/colab/{path.stem}.ipynb"
    assert nb.cells[0].cell_type == "markdown" and badge in nb.cells[0].source
    assert "jax.devices()" in nb.cells[1].source  # the runtime note
    assert setup_cell(nb) == setup_cell(read(NOTEBOOKS[0])), "the setup cell differs between notebooks"
    default = re.search(r'os\.environ\.get\("EMBEDDINGS_JAX_REPO", "([^"]+)"\)', setup_cell(nb))
    assert default and default[1] == REPOSITORY, "the setup cell clones pyproject's [project.urls] Repository"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_notebook_holds_a_plot(path):
    outputs = [o for c in read(path).cells if c.cell_type == "code" for o in c.outputs]
    assert any("image/png" in o.get("data", {}) for o in outputs), "execute it: python colab/execute.py"


def installed_project():
    """Where the test venv's embeddings-jax install points (its direct_url.json), or None."""
    try:
        return importlib.metadata.distribution("embeddings-jax").read_text("direct_url.json")
    except importlib.metadata.PackageNotFoundError:
        return None


@pytest.fixture(scope="module")
def colab_run(tmp_path_factory):
    """Runs the setup cell as in Colab: from a directory outside any checkout, cloning (here, this
    repository's HEAD). This kernel already imports embeddings_jax (the test venv; PYTHONPATH makes
    it certain), so the cell skips its pip step and the venv's install is left as it is."""
    if shutil.which("git") is None:
        pytest.skip("needs git")
    cwd = tmp_path_factory.mktemp("content")
    probe = """
import json
import experiments.word2vec
print(json.dumps({"root": str(root), "pip": pip, "embeddings_jax": embeddings_jax.__file__,
                  "experiments": experiments.word2vec.__file__,
                  "subprocess": subprocess.run([sys.executable, "-c", "import experiments; print(experiments.__file__)"],
                                               capture_output=True, text=True, check=True, cwd="/").stdout.strip()}))
"""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(setup_cell(read(NOTEBOOKS[0]))),
                                         nbformat.v4.new_code_cell(probe)])
    before = installed_project()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("EMBEDDINGS_JAX_REPO", ROOT.as_uri())
        env.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
        env.setenv("XLA_FLAGS", "")
        execute(nb, cwd)
    assert installed_project() == before
    return cwd / "embeddings_jax_repo", json.loads(nb.cells[1].outputs[0].text)


def test_setup_cell_clones_outside_a_checkout(colab_run):
    clone, seen = colab_run
    assert pathlib.Path(seen["root"]) == clone and (clone / ".git").is_dir()
    # The clone comes first on sys.path, in the kernel and in its subprocesses (PYTHONPATH).
    for key in ("embeddings_jax", "experiments", "subprocess"):
        assert pathlib.Path(seen[key]).is_relative_to(clone), (key, seen[key])


def test_setup_cell_pip_step_keeps_the_installed_jax(colab_run):
    """The pip command the cell runs in Colab, checked by pip --dry-run: it installs embeddings-jax
    alone, the jax, jaxlib, flax and numpy already there satisfying it."""
    pytest.importorskip("setuptools", reason="the offline dry run builds metadata without isolation")
    clone, seen = colab_run
    pip = seen["pip"]
    assert pip[:7] == [sys.executable, "-m", "pip", "install", "-q", "-e", f"{clone}[experiments]"]
    assert {p.split("==")[0] for p in pip[7:]} == {"jax", "jaxlib", "flax", "numpy"}
    dry_run = subprocess.run([*pip, "--dry-run", "--no-build-isolation", "--no-index", "--report", "-"],
                             capture_output=True, text=True, check=True)
    assert [i["metadata"]["name"] for i in json.loads(dry_run.stdout)["install"]] == ["embeddings-jax"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, monkeypatch, shared_data):
    for dataset in DATASETS.get(path.stem, []):
        shared_data(dataset)
    # The kernel is a fresh process: one CPU device, no progress bars, offline data cache. Its
    # setup cell finds this checkout and puts it on the path.
    monkeypatch.setenv("XLA_FLAGS", "")
    monkeypatch.setenv("EMBEDDINGS_JAX_QUIET", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    execute(read(path), COLAB)
