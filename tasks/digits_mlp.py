"""MLP classifier on the 8x8 handwritten digits: 64 -> hidden -> hidden -> 10, relu,
cross-entropy."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from tasks.base import Task
from tasks.layers import digits_batches, digits_valid, mlp, mlp_init, softmax_cross_entropy

_SALT = 303

# default_lr: the best adam learning rate of a sweep (validation loss after the default budget,
# mean of seeds 0-2):
#   1e-3: 0.091, 2e-3: 0.077, 5e-3: 0.073, 1e-2: 0.066, 2e-2: 0.174, 5e-2: 0.282, 0.1: 0.456


def make(hidden: int = 128, steps: int = 400, batch_size: int = 64, default_lr: float = 0.01,
         tier: str = "B", name: str = "digits_mlp") -> Task:

    def init(key):
        return mlp_init(key, [64, hidden, hidden, 10], scale=np.sqrt(2.0))

    def loss(params, batch):
        x = jnp.reshape(batch["image"], batch["image"].shape[:-2] + (64,))
        return softmax_cross_entropy(mlp(params, x, jax.nn.relu), batch["label"])

    def train_batches(seed):
        return digits_batches(seed, _SALT, steps, batch_size)

    def valid_batch():
        return digits_valid()

    return Task(
        name=name, family="mlp_classifier", init=init, loss=loss, train_batches=train_batches,
        valid_batch=valid_batch, steps=steps, batch_size=batch_size, default_lr=default_lr,
        tier=tier,
        description=f"64-{hidden}-{hidden}-10 relu MLP, cross-entropy on 8x8 digits (1,300 train / "
                    f"497 validation images)",
        data_source="8x8 digits (UCI via scikit-learn), tasks/data/digits.npz")
