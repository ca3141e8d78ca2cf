"""Small convolutional classifier on the 8x8 handwritten digits.

conv 3x3 (channels[0], relu) -> conv 3x3 stride 2 (channels[1], relu) -> dense 10, 'SAME'
padding, NHWC layout.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from tasks.base import Task
from tasks.layers import dense, dense_init, digits_batches, digits_valid, softmax_cross_entropy

_SALT = 505
_DIMENSIONS = ("NHWC", "HWIO", "NHWC")

# default_lr: the best adam learning rate of a sweep (validation loss after the default budget,
# mean of seeds 0-2):
#   1e-3: 0.163, 2e-3: 0.114, 5e-3: 0.090, 1e-2: 0.077, 2e-2: 0.102, 5e-2: 0.208, 0.1: 0.401


def _conv_init(key, c_in: int, c_out: int) -> dict:
    fan_in = 9 * c_in
    w = jax.random.normal(key, (3, 3, c_in, c_out), jnp.float32) * np.sqrt(2.0 / fan_in)
    return {"w": w, "b": jnp.zeros((c_out,), jnp.float32)}


def _conv(layer: dict, x, stride: int):
    y = jax.lax.conv_general_dilated(x, layer["w"], (stride, stride), "SAME",
                                     dimension_numbers=_DIMENSIONS)
    return y + layer["b"]


def make(channels: tuple[int, int] = (8, 16), steps: int = 300, batch_size: int = 32,
         default_lr: float = 0.01, tier: str = "B", name: str = "digits_cnn") -> Task:
    c1, c2 = channels

    def init(key):
        k1, k2, k3 = jax.random.split(key, 3)
        return {"conv1": _conv_init(k1, 1, c1), "conv2": _conv_init(k2, c1, c2),
                "out": dense_init(k3, 4 * 4 * c2, 10)}

    def loss(params, batch):
        x = batch["image"][..., None]
        x = jax.nn.relu(_conv(params["conv1"], x, 1))
        x = jax.nn.relu(_conv(params["conv2"], x, 2))
        logits = dense(params["out"], jnp.reshape(x, (x.shape[0], -1)))
        return softmax_cross_entropy(logits, batch["label"])

    def train_batches(seed):
        return digits_batches(seed, _SALT, steps, batch_size)

    def valid_batch():
        return digits_valid()

    return Task(
        name=name, family="cnn_classifier", init=init, loss=loss, train_batches=train_batches,
        valid_batch=valid_batch, steps=steps, batch_size=batch_size, default_lr=default_lr,
        tier=tier,
        description=f"conv3x3({c1})-conv3x3/2({c2})-dense(10) relu CNN, cross-entropy on "
                    f"8x8 digits",
        data_source="8x8 digits (UCI via scikit-learn), tasks/data/digits.npz")
