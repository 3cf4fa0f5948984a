"""Metrics to JSONL (always) and TensorBoard (when tensorboardX is installed), and progress bars.

Under ``jax.distributed`` only process 0 writes metrics and shows progress; on the other processes
both are silent no-ops, so a multi-process run leaves one log, as a single process would.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
from collections.abc import Iterable
from typing import Any

import jax
import numpy as np
import tqdm

from embeddings_jax.train.atomic import atomic_write


def progress(iterable: Iterable | None = None, *, total: int | None = None, desc: str = "", initial: int = 0):
    """A tqdm progress bar; silent when ``EMBEDDINGS_JAX_QUIET`` is set, stderr is not a terminal, or
    this is not process 0."""
    disable = True if os.environ.get("EMBEDDINGS_JAX_QUIET") or jax.process_index() != 0 else None
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
    log reads as one uninterrupted run. On processes other than 0 it writes nothing.
    """

    def __init__(self, workdir: str | pathlib.Path, resume_step: int | None = None, tensorboard: bool = True):
        self.workdir = pathlib.Path(workdir)
        self.path = self.workdir / "metrics.jsonl"
        self._file = self._tb = None
        if jax.process_index() != 0:
            return
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            keep = []
            for line in self.path.read_text().splitlines():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut short by a killed process
                if resume_step is not None and rec.get("step", 0) <= resume_step:
                    keep.append(line)
            with atomic_write(self.path) as f:  # killed mid-rewrite, the old log stays whole
                f.write("".join(k + "\n" for k in keep))
        self._file = self.path.open("a")
        if tensorboard:
            try:
                from tensorboardX import SummaryWriter
            except ImportError:
                pass
            else:
                self._tb = SummaryWriter(str(self.workdir / "tensorboard"), purge_step=resume_step)

    def write(self, step: int, metrics: dict[str, Any]) -> None:
        rec = {"step": int(step), **{k: _scalar(v) for k, v in metrics.items()}}
        if self._file is None:
            return
        self._file.write(json.dumps(rec) + "\n")
        self._file.flush()
        if self._tb is not None:
            for k, v in rec.items():
                if k != "step" and isinstance(v, (int, float)):
                    self._tb.add_scalar(k, v, int(step))

    def close(self) -> None:
        if self._file is not None:
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
