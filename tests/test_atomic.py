"""Atomic saves (``train/atomic.py``): unit tests, and a save SIGKILLed at every step of its protocol
leaves the old or the new content, whole (child processes load ``atomic.py`` alone: no JAX import)."""

import os
import pathlib
import signal
import stat
import subprocess
import sys

import pytest

from embeddings_jax.train import atomic

ATOMIC_PY = pathlib.Path(atomic.__file__)

OLD = {"model.json": b'{"version": "old"}', "params/a.bin": b"o" * 3000, "params/b.bin": b"O" * 10}
NEW = {"model.json": b'{"version": "new", "extra": 1}', "params/a.bin": b"n" * 3000,
       "params/c.bin": b"N" * 2000}

# A child that saves NEW over ``target`` and SIGKILLs itself at its ``kill_at``-th file-system step
# (every chunk written, mkdir, fsync, rename, unlink, rmdir), then prints how many steps it took.
CHILD = r"""
import importlib.util, os, pathlib, signal, sys
spec = importlib.util.spec_from_file_location("atomic", sys.argv[1])
atomic = importlib.util.module_from_spec(spec)
spec.loader.exec_module(atomic)
kill_at, target, kind = int(sys.argv[2]), pathlib.Path(sys.argv[3]), sys.argv[4]
NEW = {NEW!r}
steps = 0

def tick():
    global steps
    steps += 1
    if steps == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)

def counted(real):
    def call(*args, **kwargs):
        tick()
        return real(*args, **kwargs)
    return call

for name in ("replace", "rename", "fsync", "unlink", "rmdir", "mkdir"):
    setattr(os, name, counted(getattr(os, name)))

def chunks(data):
    for i in range(0, len(data), 1000):
        tick()
        yield data[i:i + 1000]

if kind == "dir":
    with atomic.atomic_directory(target) as tmp:
        for rel, data in NEW.items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            with open(tmp / rel, "wb") as f:
                for c in chunks(data):
                    f.write(c)
                    f.flush()
else:
    with atomic.atomic_write(target, "wb") as f:
        for c in chunks(NEW["params/a.bin"]):
            f.write(c)
            f.flush()
print(steps)
""".replace("{NEW!r}", repr(NEW))


def _save_dir(path, content):
    with atomic.atomic_directory(path) as tmp:
        for rel, data in content.items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_bytes(data)


def _read_dir(path):
    root = atomic.resolve_directory(path)
    if not root.exists():
        return None
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _child(kill_at, target, kind):
    return subprocess.run([sys.executable, "-c", CHILD, str(ATOMIC_PY), str(kill_at), str(target), kind],
                          check=False, capture_output=True, text=True, timeout=60)


# ---------------------------------------------------------------------------------------------- files
def test_atomic_write_replaces_whole_file(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old")
    with atomic.atomic_write(path) as f:
        f.write("new ü")
        assert path.read_text() == "old"  # not visible before the end
    assert path.read_text(encoding="utf-8") == "new ü"
    with atomic.atomic_write(path, "wb") as f:
        f.write(b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"
    assert os.listdir(tmp_path) == ["out.txt"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # not mkstemp's 0600


def test_atomic_write_failure_keeps_old_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError, match="boom"), atomic.atomic_write(path) as f:
        f.write("half")
        raise RuntimeError("boom")
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["out.txt"]
    with pytest.raises(TypeError), atomic.atomic_write(tmp_path / "new.txt") as f:
        f.write(b"bytes into a text file")
    assert os.listdir(tmp_path) == ["out.txt"]


def test_atomic_write_bad_arguments_are_clear(tmp_path):
    with pytest.raises(ValueError, match="mode must be 'w' or 'wb'"), atomic.atomic_write(tmp_path / "x", "a"):
        pass
    with pytest.raises(FileNotFoundError, match="does not exist; create it first"), atomic.atomic_write(tmp_path / "no" / "x"):
        pass
    with pytest.raises(IsADirectoryError, match="a directory of that name exists"), atomic.atomic_write(tmp_path):
        pass


# ---------------------------------------------------------------------------------------- directories
def test_atomic_directory_swaps_whole_directories(tmp_path):
    path = tmp_path / "model"
    _save_dir(path, OLD)
    assert _read_dir(path) == OLD
    _save_dir(path, NEW)
    assert _read_dir(path) == NEW  # old-only files (params/b.bin) are gone: no mixing
    assert sorted(os.listdir(tmp_path)) == ["model"]


def test_atomic_directory_failure_keeps_old_directory(tmp_path):
    path = tmp_path / "model"
    _save_dir(path, OLD)
    with pytest.raises(RuntimeError, match="boom"), atomic.atomic_directory(path) as tmp:
        (tmp / "model.json").write_bytes(b"half")
        raise RuntimeError("boom")
    assert _read_dir(path) == OLD and sorted(os.listdir(tmp_path)) == ["model"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="a file of that name exists"), atomic.atomic_directory(tmp_path / "file"):
        pass


def test_resolve_directory_recovers_a_save_cut_between_its_renames(tmp_path):
    path = tmp_path / "model"
    _save_dir(path, OLD)
    backup = tmp_path / ".model.previous"
    os.rename(path, backup)  # the state after step 2
    assert atomic.resolve_directory(path) == path and _read_dir(path) == OLD and not backup.exists()
    _save_dir(path, OLD)
    os.rename(path, backup)
    _save_dir(path, NEW)  # a save over a lone backup
    assert _read_dir(path) == NEW and sorted(os.listdir(tmp_path)) == ["model"]
    (tmp_path / ".model.tmp-deadbeef").mkdir()  # left by a killed save: removed by the next one
    _save_dir(path, OLD)
    assert sorted(os.listdir(tmp_path)) == ["model"]
    assert atomic.resolve_directory(tmp_path / "never_saved") == tmp_path / "never_saved"


# ------------------------------------------------------------------------------------ fault injection
def test_directory_save_killed_at_every_step_leaves_old_or_new(tmp_path):
    probe = tmp_path / "probe"
    _save_dir(probe / "model", OLD)
    done = _child(0, probe / "model", "dir")
    assert done.returncode == 0, done.stderr
    total = int(done.stdout)
    assert total >= 20 and _read_dir(probe / "model") == NEW
    seen = set()
    for kill_at in range(1, total + 1):  # every step of the protocol: more than 20 moments
        case = tmp_path / f"kill{kill_at}"
        case.mkdir()
        _save_dir(case / "model", OLD)
        run = _child(kill_at, case / "model", "dir")
        assert run.returncode == -signal.SIGKILL, (kill_at, run.stderr)
        got = _read_dir(case / "model")
        assert got in (OLD, NEW), f"killed at step {kill_at}/{total}: neither the old nor the new content"
        seen.add("old" if got == OLD else "new")
        _save_dir(case / "model", NEW)  # the next save recovers and leaves nothing behind
        assert _read_dir(case / "model") == NEW and os.listdir(case) == ["model"]
    assert seen == {"old", "new"}


def test_first_directory_save_killed_leaves_nothing_or_new(tmp_path):
    for kill_at in (1, 3, 8, 15):
        case = tmp_path / f"kill{kill_at}"
        case.mkdir()
        run = _child(kill_at, case / "model", "dir")
        assert run.returncode == -signal.SIGKILL
        assert _read_dir(case / "model") in (None, NEW)


def test_file_save_killed_at_every_step_leaves_old_or_new(tmp_path):
    probe = tmp_path / "probe.bin"
    probe.write_bytes(OLD["params/a.bin"])
    done = _child(0, probe, "file")
    assert done.returncode == 0, done.stderr
    total = int(done.stdout)
    for kill_at in range(1, total + 1):
        path = tmp_path / f"kill{kill_at}.bin"
        path.write_bytes(OLD["params/a.bin"])
        run = _child(kill_at, path, "file")
        assert run.returncode == -signal.SIGKILL, (kill_at, run.stderr)
        assert path.read_bytes() in (OLD["params/a.bin"], NEW["params/a.bin"]), kill_at


def test_atomic_directory_replaces_a_symlink_and_leaves_its_target(tmp_path):
    target = tmp_path / "elsewhere"
    _save_dir(target, OLD)
    (tmp_path / "model").symlink_to(target)
    _save_dir(tmp_path / "model", NEW)
    assert not (tmp_path / "model").is_symlink() and _read_dir(tmp_path / "model") == NEW
    assert _read_dir(target) == OLD and sorted(os.listdir(tmp_path)) == ["elsewhere", "model"]
