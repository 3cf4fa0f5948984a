"""Multi-host input of ``train.train``: two local CPU processes under ``jax.distributed`` (one device
each) train to the same parameters as one process with two devices, each process reading only its
own examples; only process 0 writes metrics. Launched with ``test_multihost.launch_two_processes``.

Run as a script (``python tests/test_multihost_train.py RANK PORT WORKDIR``) this file is the worker.
"""

import sys
from pathlib import Path

import numpy as np
import pytest

N, B, D, STEPS, SEED = 64, 16, 8, 6, 3  # global batches of 16: 8 rows per process


def _data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, D)).astype(np.float32)
    y = np.tanh(x @ rng.standard_normal(D)).astype(np.float32)
    return {"x": x, "y": y}


class Recorder:
    """An array that records the rows read from it."""

    def __init__(self, a):
        self.a, self.read = a, []

    def __len__(self):
        return len(self.a)

    def __getitem__(self, idx):
        self.read.extend(np.arange(len(self.a))[idx].reshape(-1).tolist())
        return self.a[idx]


def _loss_fn(params, batch, rng):
    """Squared error summed over the batch, over the fixed batch size: feeding a batch twice over
    (every process the global batch) would double the gradient."""
    import jax.numpy as jnp

    del rng
    pred = jnp.tanh(batch["x"] @ params["w1"]) @ params["w2"]
    return jnp.sum((pred - batch["y"]) ** 2) / B, {"rows": jnp.float32(len(pred))}


def _train(mesh, workdir, batch_fn):
    """Six SGD steps of a tiny MLP through ``train.train`` (checkpoints at 3 and 6); numpy params."""
    import jax
    import optax

    from embeddings_jax.train import LoopConfig, create_train_state, train

    def init(key):
        k1, k2 = jax.random.split(key)
        return {"w1": jax.random.normal(k1, (D, 4)), "w2": jax.random.normal(k2, (4,))}

    state = create_train_state(init, optax.sgd(0.2), 0, mesh)
    loop = LoopConfig(num_steps=STEPS, log_every=1, checkpoint_every=3)
    state = train(state, _loss_fn, batch_fn, mesh=mesh, workdir=workdir, config=loop)
    return {k: np.asarray(v.addressable_data(0)) for k, v in state.params.items()}


def _worker(rank: int, port: int, workdir: str) -> None:
    import jax

    jax.distributed.initialize(f"localhost:{port}", num_processes=2, process_id=rank)
    from embeddings_jax.data.batching import epoch_batches
    from embeddings_jax.train import MetricsWriter, make_mesh

    assert jax.process_count() == 2 and jax.device_count() == 2 and jax.local_device_count() == 1
    mesh = make_mesh()
    data = {k: Recorder(v) for k, v in _data().items()}
    own_rows, _ = epoch_batches(data, B, SEED, process_index=rank, process_count=2)
    per_process = _train(mesh, Path(workdir) / "per_process", own_rows)
    global_batches, _ = epoch_batches(_data(), B, SEED)  # the global batch: the loop keeps this process's rows
    sliced = _train(mesh, Path(workdir) / "global", global_batches)
    silent = MetricsWriter(Path(workdir) / f"writer{rank}", tensorboard=False)
    silent.write(1, {"v": 1.0})
    silent.close()
    np.savez(Path(workdir) / f"rank{rank}.npz", read=np.array(data["x"].read),
             **{f"per_process_{k}": v for k, v in per_process.items()}, **{f"global_{k}": v for k, v in sliced.items()})
    jax.distributed.shutdown()


def test_two_processes_train_like_one_process_with_two_devices(tmp_path):
    from test_multihost import launch_two_processes

    from embeddings_jax.data.batching import epoch_batches
    from embeddings_jax.train import make_mesh, read_metrics

    launch_two_processes(__file__, str(tmp_path), devices_per_process=1, timeout=150)
    got = [np.load(tmp_path / f"rank{r}.npz") for r in (0, 1)]

    # each process read only its own half of every global batch
    steps_per_epoch = N // B
    for rank, g in enumerate(got):
        perm = [np.random.default_rng([SEED, s // steps_per_epoch]).permutation(N) for s in range(STEPS)]
        start = [(s % steps_per_epoch) * B + rank * B // 2 for s in range(STEPS)]
        np.testing.assert_array_equal(g["read"], np.concatenate([p[a:a + B // 2] for p, a in zip(perm, start)]))

    # the same parameters and losses as one process with two devices
    want = _train(make_mesh(2), tmp_path / "single", epoch_batches(_data(), B, SEED)[0])
    single_log = read_metrics(tmp_path / "single")
    for run in ("per_process", "global"):
        for name, w in want.items():
            for g in got:  # replicated: both processes hold the same parameters
                np.testing.assert_allclose(g[f"{run}_{name}"], w, rtol=1e-6, atol=1e-7, err_msg=f"{run} {name}")
        log = read_metrics(tmp_path / run)  # one log, written by process 0 only
        assert [r["step"] for r in log] == list(range(1, STEPS + 1)) and {r["rows"] for r in log} == {B}
        np.testing.assert_allclose([r["loss"] for r in log], [r["loss"] for r in single_log], rtol=1e-6)
        assert sorted(p.name for p in (tmp_path / run / "checkpoints").iterdir() if p.name.isdigit()) == ["3", "6"]
    assert (tmp_path / "writer0" / "metrics.jsonl").exists() and not (tmp_path / "writer1").exists()


# ------------------------------------------------------------------ single-process checks
def test_other_processes_write_no_metrics_and_show_no_progress(tmp_path, monkeypatch):
    from embeddings_jax.train import logging

    monkeypatch.delenv("EMBEDDINGS_JAX_QUIET", raising=False)
    monkeypatch.setattr(logging.jax, "process_index", lambda: 1)
    assert logging.progress(total=3).disable
    with logging.MetricsWriter(tmp_path / "w", tensorboard=False) as w:
        w.write(1, {"loss": 0.5})
    assert not (tmp_path / "w").exists()


def test_epoch_batches_per_process_rows_tile_the_global_batch():
    from embeddings_jax.data.batching import epoch_batches

    data = _data()
    whole, steps = epoch_batches(data, B, SEED)
    parts = [epoch_batches(data, B, SEED, process_index=p, process_count=4)[0] for p in range(4)]
    assert whole.process_shard == (0, 1) and parts[2].process_shard == (2, 4)
    for step in (0, 5, steps + 1):
        for k in data:
            np.testing.assert_array_equal(np.concatenate([p(step)[k] for p in parts]), whole(step)[k])


@pytest.mark.parametrize("kwargs, match", [
    ({"process_index": 2, "process_count": 2}, r"process_index must lie in \[0, process_count=2\)"),
    ({"process_index": -1, "process_count": 2}, "process_index must lie"),
    ({"process_index": 0, "process_count": 3}, "does not split over 3 processes"),
])
def test_epoch_batches_bad_process_arguments(kwargs, match):
    from embeddings_jax.data.batching import epoch_batches

    with pytest.raises(ValueError, match=match):
        epoch_batches(_data(), B, SEED, **kwargs)


def test_loop_refuses_a_batch_fn_built_for_another_process_layout():
    from embeddings_jax.data.batching import epoch_batches
    from embeddings_jax.train import make_mesh
    from embeddings_jax.train.loop import process_batches

    mesh = make_mesh(2)
    fn, _ = epoch_batches(_data(), B, SEED, process_index=1, process_count=2)
    with pytest.raises(ValueError, match="rows of process 1 of 2, but this is process 0 of 1"):
        process_batches(fn, mesh)
    whole, _ = epoch_batches(_data(), B, SEED)
    assert process_batches(whole, mesh) is whole  # one process: the global batch as it is


def test_process_rows_and_local_rows_on_one_process():
    from embeddings_jax.train import make_mesh
    from embeddings_jax.train.sharding import local_rows, process_rows

    mesh = make_mesh(4)
    assert process_rows(mesh, 8) == slice(0, 8)
    batch = {"x": np.arange(8)}
    assert local_rows(batch, mesh) is batch
    with pytest.raises(ValueError, match="not divisible by the 4 devices"):
        process_rows(mesh, 6)


if __name__ == "__main__":
    _worker(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
