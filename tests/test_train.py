"""Training infrastructure: data parallelism, checkpoints, resume after SIGKILL, NaN handling."""

import json
import os
import pathlib
import signal
import subprocess
import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from embeddings_jax.data.batching import epoch_batches
from embeddings_jax.models.autoencoder import elbo_loss_fn, model_from_config
from embeddings_jax.train import (
    Checkpointer,
    LoopConfig,
    MetricsWriter,
    NonFiniteLossError,
    abstract_like,
    create_train_state,
    make_mesh,
    read_metrics,
    shard_batch,
    train,
)

REPO = pathlib.Path(__file__).resolve().parents[1]


def _vae_setup(num_devices, hidden=64, latents=8):
    config = ml_collections.ConfigDict(
        {"model": "vae", "arch": "mlp", "hidden": hidden, "latents": latents, "pixels": "binarized"}
    )
    model = model_from_config(config)
    images = np.random.default_rng(0).random((256, 784), dtype=np.float32)
    mesh = make_mesh(num_devices)
    init = lambda key: model.init(key, images[:1], key)["params"]
    state = create_train_state(init, optax.adam(1e-3), 0, mesh)
    batch_fn, _ = epoch_batches({"image": images}, 32, seed=0)
    return state, elbo_loss_fn(model, config), batch_fn, mesh


def _run(tmp_path, num_devices, num_steps=12):
    state, loss_fn, batch_fn, mesh = _vae_setup(num_devices)
    workdir = tmp_path / f"dev{num_devices}"
    loop = LoopConfig(num_steps=num_steps, log_every=1, checkpoint_every=num_steps)
    state = train(state, loss_fn, batch_fn, mesh=mesh, workdir=workdir, config=loop)
    return [m["loss"] for m in read_metrics(workdir)], state


def test_vae_data_parallel_8_devices_matches_1_device(tmp_path):
    losses1, state1 = _run(tmp_path, 1)
    losses8, state8 = _run(tmp_path, 8)
    assert len(losses1) == len(losses8) == 12
    np.testing.assert_allclose(losses8, losses1, rtol=1e-5)
    assert losses1[-1] < losses1[0]
    for a, b in zip(jax.tree.leaves(state1.params), jax.tree.leaves(state8.params)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)


def test_batch_not_divisible_by_devices_is_a_clear_error():
    mesh = make_mesh(8)
    with pytest.raises(ValueError, match="not divisible by the 8 devices"):
        shard_batch({"x": np.zeros((12, 3))}, mesh)
    with pytest.raises(ValueError, match="disagree on the batch size"):
        shard_batch({"x": np.zeros((8, 3)), "y": np.zeros((16,))}, mesh)


def _job(workdir, steps, kill_at=None):
    cmd = [sys.executable, str(REPO / "tests" / "resume_job.py"), str(workdir), str(steps)]
    if kill_at is not None:
        cmd.append(str(kill_at))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("XLA_FLAGS", None)
    return subprocess.run(cmd, check=False, env=env, capture_output=True, text=True, timeout=300)


def test_sigkill_then_resume_reaches_bitwise_identical_parameters(tmp_path):
    reference = _job(tmp_path / "uninterrupted", 14)
    assert reference.returncode == 0, reference.stderr[-2000:]

    killed = _job(tmp_path / "resumed", 14, kill_at=10)
    assert killed.returncode == -signal.SIGKILL
    assert not (tmp_path / "resumed" / "final_params.npz").exists()
    saved = sorted(int(p.name) for p in (tmp_path / "resumed" / "checkpoints").iterdir() if p.name.isdigit())
    assert saved and max(saved) <= 10

    resumed = _job(tmp_path / "resumed", 14)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    ref = np.load(tmp_path / "uninterrupted" / "final_params.npz")
    got = np.load(tmp_path / "resumed" / "final_params.npz")
    assert sorted(ref.files) == sorted(got.files)
    for k in ref.files:
        np.testing.assert_array_equal(got[k], ref[k], err_msg=k)
    # The resumed run's metrics read as one run: every step once, in order.
    steps = [m["step"] for m in read_metrics(tmp_path / "resumed")]
    assert steps == list(range(1, 15))


def _small_state(mesh, seed=0):
    init = lambda key: {"w": jax.random.normal(key, (16, 4)), "b": jnp.zeros(4)}
    return create_train_state(init, optax.adam(1e-2), seed, mesh)


def test_corrupt_checkpoint_is_moved_aside_and_previous_used(tmp_path, caplog):
    mesh = make_mesh(1)
    ckpt = Checkpointer(tmp_path / "ckpt", async_save=False)
    s1 = _small_state(mesh, seed=1)
    s2 = _small_state(mesh, seed=2)
    ckpt.save(1, s1)
    ckpt.save(2, s2)
    ckpt.wait()
    # Damage every data file of step 2 (as a disk error or a half-copied folder would).
    damaged = 0
    for f in (tmp_path / "ckpt" / "2").rglob("*"):
        if f.is_file() and f.stat().st_size > 0 and "metadata" not in f.name:
            f.write_bytes(b"\x00garbage" * 3)
            damaged += 1
    assert damaged
    restored = ckpt.restore(abstract_like(s1, mesh))
    assert restored is not None
    state, step = restored
    assert step == 1
    np.testing.assert_array_equal(np.asarray(state.params["w"]), np.asarray(s1.params["w"]))
    quarantined = list((tmp_path / "ckpt" / "corrupt").iterdir())
    assert len(quarantined) == 1 and quarantined[0].name.startswith("2-")
    assert ckpt.all_steps() == [1]
    ckpt.close()


def test_restore_on_a_different_device_count(tmp_path):
    mesh8, mesh1 = make_mesh(8), make_mesh(1)
    state8 = _small_state(mesh8)
    ckpt = Checkpointer(tmp_path / "ckpt", async_save=False)
    ckpt.save(3, state8)
    ckpt.close()
    target = abstract_like(_small_state(mesh1, seed=5), mesh1)
    state1, step = Checkpointer(tmp_path / "ckpt").restore(target)
    assert step == 3
    assert state1.params["w"].sharding.mesh.devices.size == 1
    for a, b in zip(jax.tree.leaves(state8), jax.tree.leaves(state1)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    mesh = make_mesh(2)
    state = _small_state(mesh)

    def loss_fn(params, batch, rng):
        return jnp.mean((batch["x"] @ params["w"] + params["b"]) ** 2), {}

    def batch_fn(step):
        x = np.ones((8, 16), np.float32)
        if step >= 6:
            x[0, 0] = np.nan
        return {"x": x}

    loop = LoopConfig(num_steps=20, log_every=1, checkpoint_every=2)
    with pytest.raises(NonFiniteLossError, match="loss became nan at step 7.*step 6"):
        train(state, loss_fn, batch_fn, mesh=mesh, workdir=tmp_path, config=loop)
    ckpt = Checkpointer(tmp_path / "checkpoints")
    assert ckpt.latest_step() == 6
    good, _ = ckpt.restore(abstract_like(_small_state(mesh), mesh))
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(good.params))
    ckpt.close()


def test_init_checkpoint_starts_a_fresh_run_from_its_parameters(tmp_path):
    mesh = make_mesh(1)
    pretrained = _small_state(mesh, seed=7)
    src = Checkpointer(tmp_path / "pretrained", async_save=False)
    src.save(100, pretrained)
    src.close()

    def loss_fn(params, batch, rng):
        return jnp.sum(params["b"] ** 2) * 0.0, {}

    loop = LoopConfig(num_steps=1, init_checkpoint=str(tmp_path / "pretrained"))
    state = train(_small_state(mesh, seed=0), loss_fn, lambda s: {"x": np.zeros((1,))}, mesh=mesh,
                  workdir=tmp_path / "run", config=loop)
    assert int(state.step) == 1
    np.testing.assert_allclose(np.asarray(state.params["w"]), np.asarray(pretrained.params["w"]), atol=1e-6)


def test_metrics_writer_jsonl_and_resume_truncation(tmp_path):
    with MetricsWriter(tmp_path, tensorboard=False) as w:
        for s in range(1, 6):
            w.write(s, {"loss": jnp.float32(s), "acc": 0.5})
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"step": 6, "loss"')  # a line cut short by a killed process
    with MetricsWriter(tmp_path, resume_step=3, tensorboard=False) as w:
        w.write(4, {"loss": float("nan")})
    recs = read_metrics(tmp_path)
    assert [r["step"] for r in recs] == [1, 2, 3, 4]
    assert recs[0] == {"step": 1, "loss": 1.0, "acc": 0.5}
    assert recs[-1]["loss"] == "nan"
    with pytest.raises(ValueError, match="scalars"):
        MetricsWriter(tmp_path / "x", tensorboard=False).write(1, {"v": np.zeros(3)})
    json.dumps(recs)


def test_changed_config_resume_is_a_clear_error_and_moves_nothing(tmp_path):
    from embeddings_jax.train import CheckpointMismatchError

    state, loss_fn, batch_fn, mesh = _vae_setup(1)
    workdir = tmp_path / "run"
    train(state, loss_fn, batch_fn, mesh=mesh, workdir=workdir, config=LoopConfig(num_steps=4, log_every=1,
                                                                                   checkpoint_every=2))
    before = sorted(str(p.relative_to(workdir)) for p in workdir.rglob("*"))
    metrics = (workdir / "metrics.jsonl").read_bytes()
    wider, loss_fn2, batch_fn2, _ = _vae_setup(1, hidden=96)  # another config: other shapes
    with pytest.raises(CheckpointMismatchError, match=r"another configuration.*Nothing was moved"):
        train(wider, loss_fn2, batch_fn2, mesh=mesh, workdir=workdir, config=LoopConfig(num_steps=8))
    assert sorted(str(p.relative_to(workdir)) for p in workdir.rglob("*")) == before  # no corrupt/ folder
    assert (workdir / "metrics.jsonl").read_bytes() == metrics
    resumed = train(state, loss_fn, batch_fn, mesh=mesh, workdir=workdir, config=LoopConfig(num_steps=4))
    assert int(resumed.step) == 4  # the original config still resumes
