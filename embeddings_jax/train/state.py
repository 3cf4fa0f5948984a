"""Train state: parameters, optimizer state, step and PRNG key, created already sharded."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh

from embeddings_jax.train import sharding as shd


class TrainState(flax.struct.PyTreeNode):
    """Everything a training run needs to continue exactly: restoring it resumes bit-for-bit.

    ``rng`` is the run's base key; the key of step ``s`` is ``fold_in(rng, s)``, so randomness
    depends only on the seed and the step, never on how often the run was interrupted.
    """

    step: jax.Array
    params: Any
    opt_state: Any
    rng: jax.Array
    tx: optax.GradientTransformation = flax.struct.field(pytree_node=False)

    def apply_gradients(self, grads: Any) -> TrainState:
        updates, opt_state = self.tx.update(grads, self.opt_state, self.params)
        params = optax.apply_updates(self.params, updates)
        return self.replace(step=self.step + 1, params=params, opt_state=opt_state)

    def step_rng(self) -> jax.Array:
        return jax.random.fold_in(self.rng, self.step)


def create_train_state(
    init_params: Callable[[jax.Array], Any],
    tx: optax.GradientTransformation,
    seed: int,
    mesh: Mesh,
) -> TrainState:
    """Initialises parameters and optimizer state directly in their (replicated) sharding.

    ``init_params(key) -> params``. As in big_vision: shapes come from ``jax.eval_shape``, the
    shardings from the mesh, and one ``jit(..., out_shardings=...)`` creates the state in place.
    """
    init_key, run_key = jax.random.split(jax.random.PRNGKey(seed))

    def init() -> TrainState:
        params = init_params(init_key)
        return TrainState(
            step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params), rng=run_key, tx=tx
        )

    abstract = jax.eval_shape(init)
    out_shardings = jax.tree.map(lambda _: shd.replicated(mesh), abstract)
    return jax.jit(init, out_shardings=out_shardings)()


def state_shardings(state: TrainState, mesh: Mesh) -> TrainState:
    """Sharding tree for ``state`` (replicated: data-parallel training)."""
    return jax.tree.map(lambda _: shd.replicated(mesh), state)
