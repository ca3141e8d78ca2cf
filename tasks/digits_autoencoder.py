"""MLP autoencoder on the 8x8 handwritten digits: 64 -> hidden -> code -> hidden -> 64, tanh,
sigmoid output, mean squared reconstruction error (labels unused)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from tasks.base import Task
from tasks.layers import digits_batches, digits_valid, mlp, mlp_init

_SALT = 404

# default_lr: the best adam learning rate of a sweep (validation loss after the default budget,
# mean of seeds 0-2):
#   1e-3: 2.10, 2e-3: 1.71, 5e-3: 1.46, 1e-2: 1.32, 2e-2: 1.34, 5e-2: 2.73, 0.1: 5.28


def make(code: int = 8, hidden: int = 64, steps: int = 400, batch_size: int = 64,
         default_lr: float = 0.01, tier: str = "extra",
         name: str = "digits_autoencoder") -> Task:

    def init(key):
        return mlp_init(key, [64, hidden, code, hidden, 64])

    def loss(params, batch):
        x = jnp.reshape(batch["image"], batch["image"].shape[:-2] + (64,))
        reconstruction = jax.nn.sigmoid(mlp(params, x))
        return jnp.mean(jnp.sum((reconstruction - x) ** 2, axis=-1))

    def train_batches(seed):
        return digits_batches(seed, _SALT, steps, batch_size, keys=("image",))

    def valid_batch():
        return digits_valid(keys=("image",))

    return Task(
        name=name, family="autoencoder", init=init, loss=loss, train_batches=train_batches,
        valid_batch=valid_batch, steps=steps, batch_size=batch_size, default_lr=default_lr,
        tier=tier,
        description=f"64-{hidden}-{code}-{hidden}-64 tanh autoencoder, squared error per image "
                    f"on 8x8 digits",
        data_source="8x8 digits (UCI via scikit-learn), tasks/data/digits.npz")
