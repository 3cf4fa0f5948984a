"""Two local CPU processes under ``jax.distributed.initialize`` (4 devices each) compute the contrastive
losses and gradients, and train a dual encoder for two steps, from per-process input
(``jax.make_array_from_process_local_data``); the results must equal one process with all 8 devices.

Run as a script (``python tests/test_multihost.py RANK PORT OUT``) this file is the worker.
"""

import os
import socket
import subprocess
import sys
from pathlib import Path

B, D = 40, 16  # each process feeds 20 rows


def _global_inputs():
    import jax

    from embeddings_jax.ops import losses

    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    x = losses.l2_normalize(jax.random.normal(k1, (B, D)))
    y = losses.l2_normalize(x + 0.7 * jax.random.normal(k2, (B, D)))
    log_q = jax.numpy.log(jax.random.uniform(k3, (B,), minval=0.01, maxval=0.5))
    return x, y, log_q


def _forms(mesh):
    """name -> f(x, y, log_q, scale, bias) over global (possibly sharded) arrays."""
    from embeddings_jax.ops import losses

    return {
        "in_batch_shard_map": lambda x, y, lq, s, b: losses.in_batch_softmax_loss(
            x, y, temperature=1 / s, log_q=lq, mesh=mesh, block_size=8
        ),
        "clip_shard_map": lambda x, y, lq, s, b: losses.clip_loss(x, y, scale=s, mesh=mesh),
        "clip_global_blockwise": lambda x, y, lq, s, b: losses.clip_loss(x, y, scale=s, block_size=16),
        "siglip_shard_map": lambda x, y, lq, s, b: losses.siglip_loss(x, y, scale=s, bias=b, mesh=mesh, block_size=8),
    }


def _run_all(x, y, log_q, mesh):
    """{name: (value, grad_x, grad_y, grad_scale, grad_bias)} as numpy, gathered to every process."""
    import jax
    import numpy as np
    from jax.experimental import multihost_utils

    forms = _forms(mesh)

    @jax.jit  # one program for every form: one compilation per process
    def all_forms(x, y, log_q, s, b):
        return {name: jax.value_and_grad(f, argnums=(0, 1, 3, 4))(x, y, log_q, s, b) for name, f in forms.items()}

    gathered = multihost_utils.process_allgather(all_forms(x, y, log_q, 10.0, -3.0), tiled=True)
    return {name: [np.asarray(v), *map(np.asarray, grads)] for name, (v, grads) in gathered.items()}


def _train_batches(steps: int = 2, batch: int = 16):
    """Deterministic global batches (uint8 images, caption token ids) for the training check."""
    import numpy as np

    from embeddings_jax.data.class_captions import token_tables

    _, tables = token_tables("fashion_mnist", _train_config().max_len)
    rng = np.random.default_rng(0)
    return [
        {"image": rng.integers(0, 256, (batch, 28, 28)).astype(np.uint8),
         "tokens": tables["train"][rng.integers(0, 8, batch), rng.integers(0, 10, batch)]}
        for _ in range(steps)
    ]


def _train_config():
    import ml_collections

    return ml_collections.ConfigDict({  # the clip runlocal model, narrowed to width 8
        "image_tower": "cnn", "max_len": 40, "embed_dim": 8, "width": 8, "depth": 1, "heads": 4,
        "loss_block_size": 4,  # blockwise shard_map loss across the processes
        "shard_map": True,
    })


def _train(mesh, batches):
    """Two train steps of a tiny CLIP dual encoder with the shared train step; returns (losses, params).

    Plain SGD: Adam divides by the gradient's magnitude, so the float noise in gradients that are zero in
    exact arithmetic (an attention key bias) would become full-size updates of random sign.
    """
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    from embeddings_jax.data.class_captions import token_tables
    from embeddings_jax.models import dual_encoder
    from embeddings_jax.train import create_train_state, make_train_step, shard_batch

    config = _train_config()
    tok, _ = token_tables("fashion_mnist", config.max_len)
    model = dual_encoder.model_from_config(config, len(tok), "clip")
    dummy = (jnp.zeros((1, 28, 28)), jnp.zeros((1, config.max_len), jnp.int32))
    state = create_train_state(lambda k: model.init(k, *dummy)["params"], optax.sgd(0.5), 0, mesh)
    step = make_train_step(dual_encoder.make_loss_fn(model, "clip", mesh, config), mesh, state)
    values = []
    for b in batches:
        state, metrics = step(state, shard_batch(b, mesh))
        values.append(np.asarray(metrics["loss"].addressable_data(0)))
    params = jax.tree.map(lambda a: np.asarray(a.addressable_data(0)), state.params)  # replicated
    return np.array(values), params


def _worker(rank: int, port: int, out: str) -> None:
    import jax

    jax.distributed.initialize(f"localhost:{port}", num_processes=2, process_id=rank)
    import numpy as np
    from jax.sharding import Mesh, NamedSharding
    from jax.sharding import PartitionSpec as P

    assert jax.process_count() == 2 and jax.device_count() == 8 and jax.local_device_count() == 4
    mesh = Mesh(np.array(jax.devices()), ("data",))
    shard = NamedSharding(mesh, P("data"))
    rows = slice(rank * B // 2, (rank + 1) * B // 2)  # this process's input only
    local = [np.asarray(a)[rows] for a in _global_inputs()]
    x, y, log_q = (jax.make_array_from_process_local_data(shard, a) for a in local)
    result = _run_all(x, y, log_q, mesh)
    rows_b = slice(rank * 8, (rank + 1) * 8)  # half of each 16-example training batch
    train_losses, params = _train(mesh, [jax.tree.map(lambda a: a[rows_b], b) for b in _train_batches()])
    result["train_losses"] = [train_losses]
    result["train_params"] = jax.tree.leaves(params)
    if rank == 0:
        np.savez(out, **{f"{k}_{i}": a for k, v in result.items() for i, a in enumerate(v)})
    jax.distributed.shutdown()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def launch_two_processes(script, *args: str, devices_per_process: int = 4, timeout: float = 240) -> list[str]:
    """Runs ``python script RANK PORT *args`` as the two local CPU processes of one ``jax.distributed``
    job; asserts both exit cleanly and returns their logs."""
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices_per_process}",
               JAX_PLATFORMS="cpu")
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[1]), env.get("PYTHONPATH", "")])
    port = _free_port()
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(rank), str(port), *args],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for rank in range(2)
    ]
    logs = []
    for p in procs:
        try:
            logs.append(p.communicate(timeout=timeout)[0])
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise
    assert all(p.returncode == 0 for p in procs), "\n----\n".join(logs)[-4000:]
    return logs


def test_two_processes_equal_one(tmp_path):
    import jax
    import numpy as np
    from jax.sharding import Mesh

    out = tmp_path / "two_process.npz"
    launch_two_processes(__file__, str(out))

    got = np.load(out)
    mesh = Mesh(np.array(jax.devices()), ("data",))
    x, y, log_q = _global_inputs()
    want = _run_all(x, y, log_q, mesh)
    ref = want["clip_shard_map"]
    train_losses, params = _train(mesh, _train_batches())
    want["train_losses"] = [train_losses]
    want["train_params"] = jax.tree.leaves(params)
    for name, arrays in want.items():
        for i, w in enumerate(arrays):
            g = got[f"{name}_{i}"]
            if name == "train_params":  # some leaves are ~0 (zero gradient in exact arithmetic): absolute too
                np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6, err_msg=f"parameter leaf {i}")
                continue
            err = np.max(np.abs(g - w)) / max(np.max(np.abs(w)), 1e-30)
            assert err <= 1e-5, (name, i, err)
    # and the sharded forms equal the plain single-device reference
    from embeddings_jax.ops import losses

    plain = jax.value_and_grad(lambda x, y, s: losses.clip_loss(x, y, scale=s), argnums=(0, 1, 2))(x, y, 10.0)
    for a, w in zip(ref, [plain[0], *plain[1]]):
        np.testing.assert_allclose(a, w, rtol=1e-5, atol=1e-6)


if __name__ == "__main__":
    _worker(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
