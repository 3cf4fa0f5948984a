"""Metrics to JSONL (always) and TensorBoard (when tensorboardX is installed), and progress bars."""

from __future__ import annotations

import json
import math
import os
import pathlib
from collections.abc import Iterable
from typing import Any

import numpy as np
import tqdm


def progress(iterable: Iterable | None = None, *, total: int | None = None, desc: str = "", initial: int = 0):
    """A tqdm progress bar; silent when ``EMBEDDINGS_JAX_QUIET`` is set or stderr is not a terminal."""
    disable = True if os.environ.get("EMBEDDINGS_JAX_QUIET") else None
    return tqdm.tqdm(iterable, total=total, desc=desc, initial=initial, disable=disable, dynamic_ncols=True)


def _scalar(v: Any) -> float | int | str:
    if isinstance(v, str):
        return v
    a = np.asarray(v)
    if a.size != 1:
        raise ValueError(f"metrics must be scalars, got shape {a.shape}")
    x = a.item()
    return x if isinstance(x, int) or math.isfinite(x) else str(x)


class MetricsWriter:
    """Appends ``{"step": s, **metrics}`` lines to ``<workdir>/metrics.jsonl``.

    ``resume_step``: drop lines written after this step by an interrupted run, so a resumed run's
    log reads as one uninterrupted run.
    """

    def __init__(self, workdir: str | pathlib.Path, resume_step: int | None = None, tensorboard: bool = True):
        self.workdir = pathlib.Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.path = self.workdir / "metrics.jsonl"
        if self.path.exists():
            keep = []
            for line in self.path.read_text().splitlines():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut short by a killed process
                if resume_step is not None and rec.get("step", 0) <= resume_step:
                    keep.append(line)
            self.path.write_text("".join(k + "\n" for k in keep))
        self._file = self.path.open("a")
        self._tb = None
        if tensorboard:
            try:
                from tensorboardX import SummaryWriter
            except ImportError:
                pass
            else:
                self._tb = SummaryWriter(str(self.workdir / "tensorboard"), purge_step=resume_step)

    def write(self, step: int, metrics: dict[str, Any]) -> None:
        rec = {"step": int(step), **{k: _scalar(v) for k, v in metrics.items()}}
        self._file.write(json.dumps(rec) + "\n")
        self._file.flush()
        if self._tb is not None:
            for k, v in rec.items():
                if k != "step" and isinstance(v, (int, float)):
                    self._tb.add_scalar(k, v, int(step))

    def close(self) -> None:
        self._file.close()
        if self._tb is not None:
            self._tb.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def read_metrics(workdir: str | pathlib.Path) -> list[dict]:
    path = pathlib.Path(workdir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
