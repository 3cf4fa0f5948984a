"""Executes the notebooks in place, so the committed copies show their outputs and plots.

    EMBEDDINGS_JAX_DATA=... python colab/execute.py [colab/word2vec.ipynb ...]

Runs each notebook from this folder on one CPU device in runlocal mode, with plots inline as Colab
shows them, then keeps the stored outputs small and free of this machine's paths.
"""

import os
import pathlib
import sys

import nbclient
import nbformat

COLAB = pathlib.Path(__file__).resolve().parent
MAX_LINES = 40  # of one text output; longer ones keep their head and tail


def shorten(text: str) -> str:
    text = text.replace(sys.prefix, "<venv>").replace(str(COLAB.parent) + os.sep, "")
    lines = text.splitlines(keepends=True)
    if len(lines) <= MAX_LINES:
        return text
    half = MAX_LINES // 2
    return "".join([*lines[:half], f"... ({len(lines) - MAX_LINES} lines left out)\n", *lines[-half:]])


def execute(path: pathlib.Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", record_timing=False,
                            resources={"metadata": {"path": str(COLAB)}}).execute()
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if "text" in out:
                out.text = shorten(out.text)
            if "text/plain" in out.get("data", {}):
                out.data["text/plain"] = shorten(out.data["text/plain"])
    nbformat.write(nb, path)


def main(paths: list[str]) -> None:
    os.environ.update(EMBEDDINGS_JAX_QUIET="1", XLA_FLAGS="")
    os.environ.pop("MPLBACKEND", None)  # the kernel's inline backend stores each plt.show() figure
    for path in [pathlib.Path(p).resolve() for p in paths] or sorted(COLAB.glob("*.ipynb")):
        print("executing", path.name, flush=True)
        execute(path)


if __name__ == "__main__":
    main(sys.argv[1:])
