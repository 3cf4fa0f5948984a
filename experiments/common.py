"""Helpers shared by experiments: where results go and how they are written."""

from __future__ import annotations

import json
import pathlib
import sys

import jax

from embeddings_jax.train import environment
from embeddings_jax.train.atomic import atomic_write
from embeddings_jax.train.environment import hardware

RESULTS_DIR = pathlib.Path(__file__).resolve().parent / "results"


def git_sha() -> str:
    return environment.git_sha(RESULTS_DIR.parent)


def command_line() -> str:
    return "embeddings-jax " + " ".join(sys.argv[1:]) if sys.argv and "embeddings-jax" in sys.argv[0] else " ".join(sys.argv)


def publish(*files: pathlib.Path, directory: pathlib.Path = RESULTS_DIR) -> None:
    """Copies ``files`` (figures of a run) into the results folder, each atomically."""
    if jax.process_index() != 0:
        return
    directory.mkdir(parents=True, exist_ok=True)
    for src in files:
        with atomic_write(directory / pathlib.Path(src).name, "wb") as f:
            f.write(pathlib.Path(src).read_bytes())


def write_results(name: str, markdown: str, metrics: dict, directories: list[pathlib.Path]) -> None:
    """Writes ``<name>.md`` (with command, hardware and git sha appended) and ``<name>.json``,
    each atomically, from process 0 only."""
    if jax.process_index() != 0:
        return
    footer = (
        f"\n\nCommand: `{command_line()}`  \nHardware: {hardware()}  \n"
        f"JAX {jax.__version__}, git {git_sha()}\n"
    )
    record = {"command": command_line(), "hardware": hardware(), "git_sha": git_sha(), **metrics}
    for d in directories:
        d.mkdir(parents=True, exist_ok=True)
        with atomic_write(d / f"{name}.md") as f:
            f.write(markdown.rstrip() + footer)
        with atomic_write(d / f"{name}.json") as f:
            f.write(json.dumps(record, indent=2, default=float) + "\n")
