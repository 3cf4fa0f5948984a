"""Linear probe: how linearly separable frozen features are, by softmax regression on them."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax


def linear_probe_predict(x_train, y_train, x_test, steps: int, l2: float = 1e-4,
                         num_classes: int | None = None) -> np.ndarray:
    """Predicted classes ``[M] int`` of softmax regression (full-batch Adam, L2) fitted on
    standardized frozen features.

    x_train: [N, D], y_train: int [N] in 0..num_classes-1 (default ``max + 1``); x_test: [M, D].
    Deterministic: the weights start at zero and every step sees the whole training set.
    """
    y_train = np.asarray(y_train)
    classes = int(y_train.max()) + 1 if num_classes is None else int(num_classes)
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6
    xtr, xte = jnp.asarray((x_train - mean) / std), jnp.asarray((x_test - mean) / std)
    params = {"w": jnp.zeros((x_train.shape[1], classes)), "b": jnp.zeros(classes)}
    tx = optax.adam(0.05)

    def loss(p):
        logits = xtr @ p["w"] + p["b"]
        return optax.softmax_cross_entropy_with_integer_labels(logits, jnp.asarray(y_train)).mean() + l2 * jnp.sum(
            p["w"] ** 2
        )

    @jax.jit
    def fit(params):
        def step(carry, _):
            p, s = carry
            g = jax.grad(loss)(p)
            u, s = tx.update(g, s, p)
            return (optax.apply_updates(p, u), s), None

        return jax.lax.scan(step, (params, tx.init(params)), None, length=steps)[0][0]

    p = fit(params)
    return np.asarray(jnp.argmax(xte @ p["w"] + p["b"], axis=1))


def linear_probe(x_train, y_train, x_test, y_test, steps: int, l2: float = 1e-4) -> float:
    """Test accuracy of :func:`linear_probe_predict`; y_test: [M]."""
    return float(np.mean(linear_probe_predict(x_train, y_train, x_test, steps, l2) == y_test))
