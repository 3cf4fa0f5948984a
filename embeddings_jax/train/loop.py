"""The shared training loop: jitted donated steps over a mesh, checkpoints, metrics, resume.

A model supplies ``loss_fn(params, batch, rng) -> (loss, aux_metrics)`` and a deterministic
``batch_fn(step) -> host batch``; the loop does the rest. Because the batch and the step's PRNG
key depend only on the step number, a run killed at any point and resumed from its last
checkpoint reaches the same parameters as an uninterrupted run.

Multi-host input (``jax.distributed``): ``batch_fn(step)`` returns the *global* batch of ``step``,
the same on every process, and the loop keeps this process's rows (``sharding.local_rows``) before
``jax.make_array_from_process_local_data`` assembles the global array; so any ``batch_fn`` is right.
A ``batch_fn`` that builds only this process's rows, reading only its own examples, says so with
``batch_fn.process_shard = (jax.process_index(), jax.process_count())`` and returns block ``p`` of
``P`` equal blocks of the global batch (``data.batching.epoch_batches(..., process_index=,
process_count=)`` does). Only process 0 writes ``metrics.jsonl`` and shows a progress bar; every
process takes part in Orbax's multi-process checkpoint save.
"""

from __future__ import annotations

import dataclasses
import logging
import pathlib
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh

from embeddings_jax.train import sharding as shd
from embeddings_jax.train.checkpoint import Checkpointer, abstract_like
from embeddings_jax.train.logging import MetricsWriter, progress
from embeddings_jax.train.state import TrainState, state_shardings

log = logging.getLogger(__name__)

LossFn = Callable[[Any, Any, jax.Array], tuple[jax.Array, dict[str, jax.Array]]]


class NonFiniteLossError(FloatingPointError):
    """Raised when the loss is NaN or infinite; the last good checkpoint is kept on disk."""


def make_train_step(loss_fn: LossFn, mesh: Mesh, state: TrainState) -> Callable:
    """``step(state, batch) -> (state, metrics)``, jitted over ``mesh`` with the state donated.

    The batch is split over the ``"data"`` axis; the loss is the global-batch mean, so the
    gradient is the same whatever the number of devices.
    """

    def step(state: TrainState, batch: Any):
        grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
        (loss, aux), grads = grad_fn(state.params, batch, state.step_rng())
        new_state = state.apply_gradients(grads)
        metrics = {"loss": loss, "grad_norm": optax.tree.norm(grads), **aux}
        return new_state, metrics

    state_sh = state_shardings(state, mesh)
    batch_sh = shd.batch_sharding(mesh)
    return jax.jit(
        step,
        in_shardings=(state_sh, batch_sh),
        out_shardings=(state_sh, shd.replicated(mesh)),
        donate_argnums=0,
    )


@dataclasses.dataclass
class LoopConfig:
    num_steps: int
    log_every: int = 50
    checkpoint_every: int = 500
    eval_every: int = 0  # 0: only at the end
    max_to_keep: int = 3
    init_checkpoint: str | None = None  # checkpoint dir whose params start a fresh run
    desc: str = "train"


def process_batches(batch_fn: Callable[[int], Any], mesh: Mesh) -> Callable[[int], Any]:
    """``batch_fn`` as this process's rows of every global batch (see the module docstring)."""
    shard = getattr(batch_fn, "process_shard", (0, 1))
    here = (jax.process_index(), jax.process_count())
    if shard == here:
        if here[1] == 1:
            return batch_fn

        def checked(step: int):
            batch = batch_fn(step)
            local = shd.batch_size_of(batch)
            want = slice(here[0] * local, (here[0] + 1) * local)
            rows = shd.process_rows(mesh, local * here[1])
            if not (isinstance(rows, slice) and rows == want):
                raise ValueError(
                    f"batch_fn builds rows {want.start}:{want.stop} of each global batch for process "
                    f"{here[0]}, but the mesh puts other rows on its devices; build the mesh with "
                    "make_mesh() (devices in process order) or let batch_fn return the global batch"
                )
            return batch

        return checked
    if shard == (0, 1):  # the global batch: keep this process's rows
        return lambda step: shd.local_rows(batch_fn(step), mesh)
    raise ValueError(
        f"batch_fn builds the rows of process {shard[0]} of {shard[1]}, but this is process {here[0]} of "
        f"{here[1]}; build it with process_index=jax.process_index(), process_count=jax.process_count()"
    )


def restore_or_init(
    state: TrainState, workdir: str | pathlib.Path, mesh: Mesh, init_checkpoint: str | None = None
) -> tuple[TrainState, Checkpointer, int | None]:
    """Resume priority: the workdir's newest readable checkpoint, then ``init_checkpoint``'s
    parameters (fresh optimizer, step 0), then ``state`` as given (from scratch)."""
    ckpt = Checkpointer(pathlib.Path(workdir) / "checkpoints")
    target = abstract_like(state, mesh)
    restored = ckpt.restore(target)
    if restored is not None:
        state, step = restored
        log.info("resumed from %s at step %d", ckpt.directory, step)
        return state, ckpt, step
    if init_checkpoint:
        source = Checkpointer(init_checkpoint, async_save=False)
        found = source.restore(target)
        source.close()
        if found is None:
            raise FileNotFoundError(f"init_checkpoint {init_checkpoint} holds no readable checkpoint")
        log.info("initialised parameters from %s (step %d)", init_checkpoint, found[1])
        return state.replace(params=found[0].params), ckpt, None
    return state, ckpt, None


def train(
    state: TrainState,
    loss_fn: LossFn,
    batch_fn: Callable[[int], Any],
    *,
    mesh: Mesh,
    workdir: str | pathlib.Path,
    config: LoopConfig,
    eval_fn: Callable[[TrainState, int], dict[str, Any]] | None = None,
) -> TrainState:
    """Trains to ``config.num_steps``, resuming from ``workdir`` if it holds a checkpoint.

    Writes ``<workdir>/checkpoints/<step>`` and ``<workdir>/metrics.jsonl``. Raises
    ``NonFiniteLossError`` at the first non-finite loss without saving that state.
    """
    batch_fn = process_batches(batch_fn, mesh)
    state, ckpt, resumed = restore_or_init(state, workdir, mesh, config.init_checkpoint)
    start = int(jax.device_get(state.step))
    writer = MetricsWriter(workdir, resume_step=resumed)
    step_fn = make_train_step(loss_fn, mesh, state)

    def check(step: int, metrics: dict) -> dict:
        host = jax.device_get(metrics)
        if not jnp.isfinite(host["loss"]):
            ckpt.wait()
            good = ckpt.latest_step()
            raise NonFiniteLossError(
                f"loss became {host['loss']} at step {step}; stopping. The last good checkpoint "
                f"({'step ' + str(good) if good is not None else 'none yet'}) is kept in "
                f"{ckpt.directory}. Lower the learning rate or check the input data."
            )
        return host

    try:
        bar = progress(total=config.num_steps, initial=start, desc=config.desc)
        for step in range(start, config.num_steps):
            batch = shd.shard_batch(batch_fn(step), mesh)
            state, metrics = step_fn(state, batch)
            done = step + 1
            if done % config.log_every == 0 or done == config.num_steps:
                host = check(done, metrics)
                writer.write(done, host)
                bar.set_postfix(loss=f"{float(host['loss']):.4f}")
            if done % config.checkpoint_every == 0 or done == config.num_steps:
                check(done, metrics)
                ckpt.save(done, state, force=True)
            if eval_fn is not None and config.eval_every and done % config.eval_every == 0:
                writer.write(done, eval_fn(state, done))
            bar.update(1)
        bar.close()
        if eval_fn is not None and not config.eval_every:
            writer.write(config.num_steps, eval_fn(state, config.num_steps))
    finally:
        ckpt.close()
        writer.close()
    return state
