"""Helpers shared by experiments: where results go and how they are written."""

from __future__ import annotations

import json
import pathlib
import platform
import subprocess
import sys

import jax

RESULTS_DIR = pathlib.Path(__file__).resolve().parent / "results"


def git_sha() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True,
            cwd=RESULTS_DIR.parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def hardware() -> str:
    dev = jax.devices()[0]
    cores = len(__import__("os").sched_getaffinity(0))
    return f"{jax.device_count()} x {dev.device_kind} ({dev.platform}), {cores} CPU cores, {platform.machine()}"


def command_line() -> str:
    return "embeddings-jax " + " ".join(sys.argv[1:]) if sys.argv and "embeddings-jax" in sys.argv[0] else " ".join(sys.argv)


def write_results(name: str, markdown: str, metrics: dict, directories: list[pathlib.Path]) -> None:
    """Writes ``<name>.md`` (with command, hardware and git sha appended) and ``<name>.json``."""
    footer = (
        f"\n\nCommand: `{command_line()}`  \nHardware: {hardware()}  \n"
        f"JAX {jax.__version__}, git {git_sha()}\n"
    )
    record = {"command": command_line(), "hardware": hardware(), "git_sha": git_sha(), **metrics}
    for d in directories:
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{name}.md").write_text(markdown.rstrip() + footer)
        (d / f"{name}.json").write_text(json.dumps(record, indent=2, default=float) + "\n")
