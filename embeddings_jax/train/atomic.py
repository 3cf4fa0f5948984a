"""Atomic saves: a save interrupted at any moment leaves the previous version or the new one, whole.

``atomic_write(path)`` is for one file: it writes a temporary sibling, fsyncs it, ``os.replace``s it
onto ``path`` and fsyncs the directory. ``atomic_directory(path)`` is for a save made of several files
(a model's JSON plus its Orbax parameters): everything is written into a temporary sibling directory,
which then takes the place of the old one by renames.

The directory rule (what ``resolve_directory`` relies on):

1. the new version is written into ``.<name>.tmp-<random>`` and fsynced;
2. the old ``<name>``, if any, is renamed to ``.<name>.previous``;
3. the temporary directory is renamed to ``<name>``;
4. ``.<name>.previous`` is deleted.

``<name>`` is only ever created by a rename of a complete directory, so whenever it exists it is whole;
when it is missing but ``.<name>.previous`` exists, a save was cut between steps 2 and 3 and the backup
is the complete old version. Readers call ``resolve_directory(path)``, which renames such a backup back.
One writer per path at a time (a save call); temporary directories left by killed saves are removed
by the next save of the same path.

Standard library only, so a child process can load this file alone (the fault-injection tests do).
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import uuid

BACKUP_SUFFIX = ".previous"


def _fsync_dir(path: pathlib.Path) -> None:
    """Makes a rename inside ``path`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _temp_sibling(path: pathlib.Path, kind: str) -> pathlib.Path:
    return path.with_name(f".{path.name}.{kind}-{uuid.uuid4().hex[:12]}")


def _backup(path: pathlib.Path) -> pathlib.Path:
    return path.with_name(f".{path.name}{BACKUP_SUFFIX}")


@contextlib.contextmanager
def atomic_write(path, mode: str = "w", *, encoding: str | None = None, newline: str | None = None):
    """Opens a temporary sibling of ``path`` for writing; on a clean exit it replaces ``path``.

    ``mode`` is ``"w"`` (text, ``encoding`` default utf-8) or ``"wb"``. On any exception the temporary
    file is removed and ``path`` is untouched. The new file gets the usual permissions (umask applied).
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write mode must be 'w' or 'wb', got {mode!r}")
    path = pathlib.Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"cannot write the file {path}: a directory of that name exists")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write {path}: its folder {path.parent} does not exist; create it first")
    tmp = _temp_sibling(path, "tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        try:
            f = os.fdopen(fd, mode, **({} if mode == "wb" else {"encoding": encoding or "utf-8", "newline": newline}))
        except BaseException:
            os.close(fd)
            raise
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _fsync_tree(root: pathlib.Path) -> None:
    """fsyncs every file and folder under ``root`` (the new version, before it is renamed into place)."""
    for folder, _, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(folder, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(pathlib.Path(folder))


def _remove(path: pathlib.Path) -> None:
    """Deletes a directory tree, or just the link or file at ``path``."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def _remove_stale_temps(path: pathlib.Path) -> None:
    for stale in path.parent.glob(f".{path.name}.tmp-*"):
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)


@contextlib.contextmanager
def atomic_directory(path):
    """Yields an empty temporary directory; on a clean exit it takes the place of ``path`` (see the
    module docstring for the rule). On any exception it is deleted and ``path`` is untouched.
    Missing parent folders are created."""
    path = pathlib.Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"cannot save the directory {path}: a file of that name exists")
    path.parent.mkdir(parents=True, exist_ok=True)  # as Orbax does for its checkpoint folders
    _remove_stale_temps(path)
    tmp = _temp_sibling(path, "tmp")
    tmp.mkdir()
    try:
        yield tmp
        _fsync_tree(tmp)
        _swap_into_place(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    with contextlib.suppress(OSError):  # a backup left behind is removed by the next save
        _remove(_backup(path))
    _fsync_dir(path.parent)


def _swap_into_place(tmp: pathlib.Path, path: pathlib.Path) -> None:
    backup = _backup(path)
    if path.exists():
        _remove(backup)  # a stale backup, if any: path is whole whenever it exists
        os.rename(path, backup)
    # else: nothing, or only a backup (a save cut before step 3) that stays readable until the rename
    os.rename(tmp, path)


def resolve_directory(path) -> pathlib.Path:
    """The directory to read for ``path`` saved by ``atomic_directory``: ``path`` itself, after renaming
    the backup back to it when a save was cut between its two renames. Does not check existence."""
    path = pathlib.Path(path)
    backup = _backup(path)
    if not path.exists() and backup.is_dir():
        with contextlib.suppress(OSError):  # another reader renamed it first
            os.rename(backup, path)
    return path
