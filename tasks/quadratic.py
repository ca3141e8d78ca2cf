"""Ill-conditioned noisy quadratic: the classic model of stochastic optimisation.

``loss(w, c) = 0.5 * mean_b (w - c_b)^T H (w - c_b)`` with ``H = Q diag(h) Q^T``, eigenvalues
``h`` log-spaced over three decades (condition number 1000) and ``Q`` a fixed random rotation,
so the ill-conditioning is not aligned with the coordinate axes (a diagonal preconditioner
such as adam's cannot undo it exactly).  Training batches are noisy targets ``c_b ~ N(0, I)``;
the validation batch is the noise-free target ``c = 0``, whose loss is the true objective
(minimum 0 at ``w = 0``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from tasks.base import Task
from tasks.layers import data_rng

_SALT = 101

# default_lr: the best adam learning rate of a sweep (validation loss after the default budget,
# mean of seeds 0-2):
#   1e-3: 29.0, 1e-2: 3.62, 5e-2: 0.329, 0.1: 0.146, 0.2: 0.121, 0.5: 0.290, 1: 0.510


def make(dim: int = 64, condition: float = 1e3, steps: int = 300, batch_size: int = 16,
         noise: float = 1.0, default_lr: float = 0.2, name: str = "quadratic",
         tier: str = "extra") -> Task:
    rng = np.random.default_rng([_SALT, dim])
    rotation, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    eigenvalues = np.logspace(0.0, -np.log10(condition), dim)
    hessian = np.asarray((rotation * eigenvalues) @ rotation.T, np.float32)

    def init(key):
        return {"w": jax.random.normal(key, (dim,), jnp.float32) * 3.0}

    def loss(params, targets):
        diff = params["w"] - targets
        return 0.5 * jnp.mean(jnp.einsum("bi,ij,bj->b", diff, hessian, diff))

    def train_batches(seed):
        return data_rng(seed, _SALT).normal(0.0, noise, (steps, batch_size, dim)).astype(
            np.float32)

    def valid_batch():
        return np.zeros((1, dim), np.float32)

    return Task(
        name=name, family="quadratic", init=init, loss=loss, train_batches=train_batches,
        valid_batch=valid_batch, steps=steps, batch_size=batch_size, default_lr=default_lr,
        tier=tier,
        description=f"{dim}-d rotated quadratic, condition number {condition:g}, "
                    f"N(0, {noise:g}^2) target noise",
        data_source="synthetic (fixed seed)")
