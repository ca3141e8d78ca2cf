"""Logistic regression on synthetic, correlated features with label noise.

Features ``x = z L^T`` with ``z ~ N(0, I)`` and a fixed mixing ``L`` whose singular values span
two decades (correlated, badly scaled inputs); labels are drawn from ``sigmoid(x . w* + b*)``
for a fixed teacher, so even the teacher's loss is well above zero.  A training pool and a
validation pool are drawn once from a fixed seed, from separate streams; a run's batches are
epochs over the training pool in the order of its seed.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from tasks.base import Task
from tasks.layers import data_rng, epoch_indices

_SALT = 202

# default_lr: the best adam learning rate of a sweep (validation loss after the default budget,
# mean of seeds 0-2):
#   1e-3: 0.355, 1e-2: 0.149, 2e-2: 0.125, 5e-2: 0.108, 0.1: 0.108, 0.2: 0.117, 0.5: 0.235


def _draw(rng: np.random.Generator, mixing, teacher, bias, count: int):
    x = rng.normal(size=(count, mixing.shape[0])) @ mixing.T
    p = 1.0 / (1.0 + np.exp(-(x @ teacher + bias)))
    y = (rng.uniform(size=count) < p).astype(np.float32)
    return {"x": x.astype(np.float32), "y": y}


def make(dim: int = 32, train_size: int = 2048, valid_size: int = 1024, steps: int = 300,
         batch_size: int = 64, default_lr: float = 0.05, tier: str = "extra",
         name: str = "logistic") -> Task:

    @functools.cache
    def pools():
        rng = np.random.default_rng([_SALT, dim, 0])
        u, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
        v, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
        mixing = (u * np.logspace(0.5, -1.5, dim)) @ v.T
        teacher = rng.normal(size=dim) * 2.0
        train = _draw(np.random.default_rng([_SALT, dim, 1]), mixing, teacher, 0.5, train_size)
        valid = _draw(np.random.default_rng([_SALT, dim, 2]), mixing, teacher, 0.5, valid_size)
        return train, valid

    def init(key):
        return {"w": 0.01 * jax.random.normal(key, (dim,), jnp.float32),
                "b": jnp.zeros((), jnp.float32)}

    def loss(params, batch):
        logits = batch["x"] @ params["w"] + params["b"]
        # -log p(y | x) for y in {0, 1}, written to stay finite for large |logits|
        return jnp.mean(jax.nn.softplus(logits) - batch["y"] * logits)

    def train_batches(seed):
        train, _ = pools()
        index = epoch_indices(data_rng(seed, _SALT), train_size, steps, batch_size)
        return {key: value[index] for key, value in train.items()}

    def valid_batch():
        return pools()[1]

    return Task(
        name=name, family="logistic", init=init, loss=loss, train_batches=train_batches,
        valid_batch=valid_batch, steps=steps, batch_size=batch_size, default_lr=default_lr,
        tier=tier,
        description=f"logistic regression, {dim} correlated features, {train_size} training "
                    f"and {valid_size} validation examples, noisy labels",
        data_source="synthetic (fixed seed)")
