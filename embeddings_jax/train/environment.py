"""Where a run happened: git commit and hardware, recorded beside every result and benchmark."""

from __future__ import annotations

import os
import pathlib
import platform
import subprocess

import jax


def git_sha(path: str | os.PathLike | None = None) -> str:
    """Short commit of the checkout holding ``path`` (default: this package), or ``"unknown"``."""
    cwd = pathlib.Path(path) if path is not None else pathlib.Path(__file__).resolve().parent
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True, cwd=cwd).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _cpuinfo() -> dict[str, str]:
    try:
        text = pathlib.Path("/proc/cpuinfo").read_text()
    except OSError:
        return {}
    first = text.split("\n\n", 1)[0]
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in first.splitlines())}


def cpu_model() -> str:
    """The host CPU's model name (``/proc/cpuinfo``), else ``platform.processor()``."""
    return _cpuinfo().get("model name") or platform.processor() or platform.machine()


def isa() -> str:
    """The widest SIMD instruction set the host CPU offers (``avx512``, ``avx2``, ``sse4_2``, ``sve``,
    ``neon`` or the machine name), and the cap XLA was asked for (``XLA_FLAGS=--xla_cpu_max_isa=``)."""
    info = _cpuinfo()
    flags = set((info.get("flags") or info.get("Features") or "").split())
    widest = next((name for name, flag in (("avx512", "avx512f"), ("avx2", "avx2"), ("sse4_2", "sse4_2"),
                                           ("sve", "sve"), ("neon", "asimd")) if flag in flags),
                  platform.machine())
    cap = [f.split("=", 1)[1] for f in os.environ.get("XLA_FLAGS", "").split() if f.startswith("--xla_cpu_max_isa=")]
    return widest + (f" (XLA capped at {cap[-1]})" if cap else "")


def hardware() -> str:
    """``"<n> x <device kind> (<platform>), <cores> CPU cores, <machine>"``."""
    dev = jax.devices()[0]
    cores = len(os.sched_getaffinity(0))
    return (f"{jax.device_count()} x {dev.device_kind} ({dev.platform}), {cores} CPU cores, "
            f"{platform.machine()}")


def cpu_times() -> tuple[int, int] | None:
    """``(stolen, total)`` CPU time of the whole machine since boot, in clock ticks, from Linux's
    ``/proc/stat`` (``None`` elsewhere). Steal is time a hypervisor gave this VM's CPUs to others:
    a benchmark run with much of it measured a shared machine, not the code."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(t) for t in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return (ticks[7] if len(ticks) > 7 else 0), sum(ticks[:8])


def steal_fraction(since: tuple[int, int] | None) -> float | None:
    """Share of CPU time stolen by the hypervisor since ``since`` (a :func:`cpu_times` reading)."""
    now = cpu_times()
    if since is None or now is None or now[1] <= since[1]:
        return None
    return (now[0] - since[0]) / (now[1] - since[1])


def release_free_memory() -> bool:
    """Hands the memory Python and numpy freed back to the OS (glibc's ``malloc_trim``), so a large
    host copy just dropped does not stay in the process's resident set; a no-op (``False``)
    where the C library has no ``malloc_trim``."""
    import ctypes
    import ctypes.util
    import gc

    gc.collect()
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.malloc_trim(0))
    except (OSError, AttributeError):
        return False
