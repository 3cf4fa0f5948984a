"""Orbax checkpointing with resume, fallback past corrupt checkpoints and any-topology restore.

Saves are atomic (Orbax writes to a temporary folder and renames it when complete), so a run
killed mid-save leaves the previous checkpoints intact. A checkpoint that exists but cannot be
read (a truncated or edited file) is moved aside to ``<dir>/corrupt/`` — never deleted — and
the next older one is used. A readable checkpoint whose arrays do not fit the target (another
config's shapes or tree) is not corrupt: ``CheckpointMismatchError`` says so and nothing is moved.
"""

from __future__ import annotations

import logging
import pathlib
import shutil
import time
from typing import Any

import jax
import orbax.checkpoint as ocp
from jax.sharding import Mesh

from embeddings_jax.train import sharding as shd

log = logging.getLogger(__name__)

# Orbax's messages for a readable checkpoint that holds other shapes or another tree.
_MISMATCH_MARKERS = ("is not compatible with the stored shape", "Structure mismatch", "not found in metadata")


class CheckpointMismatchError(ValueError):
    """A readable checkpoint that does not match the state being restored (changed config)."""


def abstract_like(tree: Any, mesh: Mesh | None = None) -> Any:
    """Shape/dtype/sharding skeleton of ``tree``; with ``mesh``, every leaf is replicated on it.

    Restoring into this target places the arrays on the current devices, whatever device count
    wrote the checkpoint.
    """

    def leaf(x):
        sharding = shd.replicated(mesh) if mesh is not None else getattr(x, "sharding", None)
        return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding)

    return jax.tree.map(leaf, tree)


class Checkpointer:
    """A thin, safe wrapper over ``ocp.CheckpointManager`` for one run directory.

    Args:
      directory: where step folders go (created if missing).
      max_to_keep: newest checkpoints kept; older ones are deleted by Orbax after a new save.
      async_save: write in a background thread (``wait()`` blocks until done).
    """

    def __init__(self, directory: str | pathlib.Path, max_to_keep: int = 3, async_save: bool = True):
        self.directory = pathlib.Path(directory).absolute()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._options = ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, enable_async_checkpointing=async_save, create=True
        )
        self._manager = ocp.CheckpointManager(self.directory, options=self._options)

    def all_steps(self) -> list[int]:
        return sorted(self._manager.all_steps())

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def save(self, step: int, state: Any, *, force: bool = False) -> bool:
        """Starts saving ``state`` as ``step``; returns whether a save was started."""
        return self._manager.save(int(step), args=ocp.args.StandardSave(state), force=force)

    def wait(self) -> None:
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()

    def restore(self, target: Any, step: int | None = None) -> tuple[Any, int] | None:
        """Restores into ``target`` (arrays or ``jax.ShapeDtypeStruct`` with shardings).

        Without ``step``: the newest readable checkpoint, moving unreadable ones aside.
        Returns ``(state, step)``, or ``None`` when the directory holds no checkpoint.
        """
        abstract = abstract_like(target)
        if step is not None:
            if step not in self.all_steps():
                raise FileNotFoundError(f"no checkpoint for step {step} in {self.directory}")
            return self._manager.restore(step, args=ocp.args.StandardRestore(abstract)), step
        for candidate in reversed(self.all_steps()):
            try:
                self._manager.item_metadata(candidate)
                restored = self._manager.restore(candidate, args=ocp.args.StandardRestore(abstract))
                return restored, candidate
            except Exception as e:  # any read failure makes this step unusable
                if any(marker in str(e) for marker in _MISMATCH_MARKERS):
                    raise CheckpointMismatchError(
                        f"checkpoint {self.directory / str(candidate)} was written by a run with another "
                        f"configuration ({e}). Nothing was moved or overwritten. Use another --workdir for "
                        "the new configuration, or move this run's checkpoints away to start it afresh."
                    ) from e
                self._quarantine(candidate, e)
        return None

    def _quarantine(self, step: int, error: Exception) -> None:
        src = self.directory / str(step)
        dst = self.directory / "corrupt" / f"{step}-{time.strftime('%Y%m%d-%H%M%S')}"
        dst.parent.mkdir(parents=True, exist_ok=True)
        log.warning(
            "checkpoint %s is unreadable (%s: %s); moved it to %s and trying the previous one",
            src, type(error).__name__, error, dst,
        )
        if src.exists():
            shutil.move(str(src), str(dst))
        self._manager.close()
        self._manager = ocp.CheckpointManager(self.directory, options=self._options)
