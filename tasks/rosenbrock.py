"""Rosenbrock's banana valley in ``dim`` dimensions (the chained form).

``f(x) = sum_i 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2``, minimum 0 at ``x = 1``.  A
deterministic, data-free test of how an optimizer follows a narrow curved valley; the
start is near the classic ``(-1.2, 1, -1.2, 1, ...)`` with a small random offset.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from tasks.base import Task


def rosenbrock(x):
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def make(dim: int, steps: int, default_lr: float, tier: str = "extra",
         name: str | None = None) -> Task:
    start = np.resize([-1.2, 1.0], dim).astype(np.float32)

    def init(key):
        return {"x": start + 0.1 * jax.random.normal(key, (dim,), jnp.float32)}

    def loss(params, batch):
        del batch  # no data: the objective is the function itself
        return rosenbrock(params["x"])

    def train_batches(seed):
        del seed
        return np.zeros((steps, 0), np.float32)

    def valid_batch():
        return np.zeros((0,), np.float32)

    return Task(
        name=name or f"rosenbrock_{dim}d", family="rosenbrock", init=init, loss=loss,
        train_batches=train_batches, valid_batch=valid_batch, steps=steps, batch_size=0,
        default_lr=default_lr, tier=tier,
        description=f"chained Rosenbrock function in {dim} dimensions, no data",
        data_source="none")


# default_lr: the best adam learning rate of a sweep (final loss, mean of seeds 0-2):
#   1e-3: 4.29, 1e-2: 3.16, 5e-2: 0.575, 0.1: 0.097, 0.2: 0.030, 0.5: 0.010, 1: 0.023
def make_2d() -> Task:
    return make(2, steps=300, default_lr=0.5)


# default_lr as above; the 8-d valley is long and adam's result erratic in lr:
#   1e-3: 166, 1e-2: 7.47, 5e-2: 1.99, 0.1: 0.016, 0.2: 5.6e-5, 0.5: 0.044, 1: 8.15
def make_8d() -> Task:
    return make(8, steps=1000, default_lr=0.2)
