"""Every Colab notebook runs end-to-end (runlocal mode), so none can rot."""

import os
import pathlib

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

COLAB = pathlib.Path(__file__).resolve().parents[1] / "colab"
NOTEBOOKS = sorted(COLAB.glob("*.ipynb"))
# Registry datasets each notebook reads (word2vec runs on its built-in synthetic corpus).
DATASETS = {
    "autoencoders": ["mnist"],
    "bert_embeddings": ["flickr8k_text"],
    "dual_encoder": ["fashion_mnist"],
    "recommender": ["ml-100k"],
    "seq2seq": ["multi30k"],
    "word2vec": [],
}


def test_every_notebook_declares_its_datasets():
    assert sorted(DATASETS) == [p.stem for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, monkeypatch, shared_data):
    for dataset in DATASETS.get(path.stem, []):
        shared_data(dataset)
    # The kernel is a fresh process: one CPU device, no progress bars, offline data cache.
    monkeypatch.setenv("XLA_FLAGS", "")
    monkeypatch.setenv("EMBEDDINGS_JAX_QUIET", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(COLAB.parent), os.environ.get("PYTHONPATH", "")]))
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(COLAB)}})
    client.execute()
