"""Shared helpers for benchmarks: device naming, timing medians and the result JSON."""

from __future__ import annotations

import json
import os
import pathlib
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import jax

from embeddings_jax.train.atomic import atomic_write
from embeddings_jax.train.environment import cpu_model, cpu_times, git_sha, isa, steal_fraction

RESULTS_DIR = pathlib.Path(__file__).resolve().parent / "results"
_START = cpu_times()  # steal is reported from here: the benchmark process's own run


def device_name() -> str:
    """'cpu', or 'gpu-<model>' such as 'gpu-h100' for the first accelerator."""
    dev = jax.devices()[0]
    if dev.platform == "cpu":
        return "cpu"
    kind = dev.device_kind.lower()
    for model in ("h200", "h100", "a100", "v100", "l4", "t4"):
        if model in kind:
            return f"{dev.platform}-{model}"
    return f"{dev.platform}-{kind.replace(' ', '_')}"


def median_time(fn: Callable[[], Any], repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time in seconds of ``fn()``; results are blocked on so async dispatch is timed."""
    for _ in range(warmup):
        jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def write_result(
    name: str,
    *,
    config: dict,
    metrics: dict,
    peers: dict | None = None,
    command: str | None = None,
) -> pathlib.Path:
    """Writes ``benchmarks/results/<name>-<device>.json`` with the standard keys; returns its path."""
    device = device_name()
    record = {
        "name": name,
        "device": device,
        "device_kind": jax.devices()[0].device_kind,
        "num_devices": jax.device_count(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_model": cpu_model(),
        "isa": isa(),
        "cpu_steal": steal_fraction(_START),  # hypervisor steal over the run (Linux VMs)
        "xla_flags": os.environ.get("XLA_FLAGS", ""),  # e.g. --xla_cpu_max_isa=AVX2 forces a code path
        "jax_version": jax.__version__,
        "git_sha": git_sha(RESULTS_DIR.parent),
        "command": command or "python -m " + " ".join([f"benchmarks.{name}", *sys.argv[1:]]),
        "config": config,
        "metrics": metrics,
        "peers": peers or {},
    }
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}-{device}.json"
    with atomic_write(path) as f:
        f.write(json.dumps(record, indent=2, sort_keys=False, default=float) + "\n")
    return path
