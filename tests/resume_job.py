"""A small VAE training job for the kill-and-resume test.

usage: python tests/resume_job.py WORKDIR NUM_STEPS [KILL_AT_STEP]

With KILL_AT_STEP the process SIGKILLs itself while building that step's batch, mid-run and
possibly mid-checkpoint, exactly as an out-of-memory killer or a pre-empted machine would.
At the end it writes the final parameters to WORKDIR/final_params.npz.
"""

import os
import signal
import sys

os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("EMBEDDINGS_JAX_QUIET", "1")

import jax
import ml_collections
import numpy as np
import optax

from embeddings_jax.data.batching import epoch_batches
from embeddings_jax.models.autoencoder import elbo_loss_fn, model_from_config
from embeddings_jax.train import LoopConfig, create_train_state, make_mesh, train


def main(workdir: str, num_steps: int, kill_at: int | None) -> None:
    config = ml_collections.ConfigDict(
        {"model": "vae", "arch": "mlp", "hidden": 64, "latents": 8, "pixels": "binarized"}
    )
    model = model_from_config(config)
    rng = np.random.default_rng(0)
    images = rng.random((512, 784), dtype=np.float32)
    batch_fn, _ = epoch_batches({"image": images}, 32, seed=0)

    def batches(step):
        if kill_at is not None and step == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return batch_fn(step)

    mesh = make_mesh()
    init = lambda key: model.init(key, images[:1], key)["params"]
    state = create_train_state(init, optax.adam(1e-3), 0, mesh)
    loop = LoopConfig(num_steps=num_steps, log_every=1, checkpoint_every=4)
    state = train(state, elbo_loss_fn(model, config), batches, mesh=mesh, workdir=workdir, config=loop)
    flat = {jax.tree_util.keystr(k): np.asarray(v) for k, v in jax.tree_util.tree_leaves_with_path(state.params)}
    np.savez(os.path.join(workdir, "final_params.npz"), **flat)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else None)
