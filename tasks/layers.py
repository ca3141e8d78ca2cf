"""Small building blocks the task families share: parameter init, layers, losses, batching.

Models are plain pytrees (dicts of float32 arrays) and pure functions of them; every random
draw takes an explicit JAX key (parameters) or a NumPy ``Generator`` (data), never global state.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def dense_init(key, n_in: int, n_out: int, scale: float = 1.0) -> dict:
    """A dense layer: weights ~ N(0, scale^2 / n_in) (LeCun; ``scale=sqrt(2)`` for relu),
    zero bias."""
    w = jax.random.normal(key, (n_in, n_out), jnp.float32) * (scale / np.sqrt(n_in))
    return {"w": w, "b": jnp.zeros((n_out,), jnp.float32)}


def dense(layer: dict, x):
    return x @ layer["w"] + layer["b"]


def mlp_init(key, sizes: list[int], scale: float = 1.0) -> list[dict]:
    keys = jax.random.split(key, len(sizes) - 1)
    return [dense_init(k, a, b, scale) for k, a, b in zip(keys, sizes[:-1], sizes[1:])]


def mlp(layers: list[dict], x, activation=jnp.tanh):
    """Dense layers with ``activation`` between them; the last layer is linear."""
    for layer in layers[:-1]:
        x = activation(dense(layer, x))
    return dense(layers[-1], x)


def softmax_cross_entropy(logits, labels):
    """Mean negative log-likelihood of integer ``labels`` under ``logits`` (last axis)."""
    log_probs = jax.nn.log_softmax(logits)
    picked = jnp.take_along_axis(log_probs, labels[..., None].astype(jnp.int32), axis=-1)
    return -jnp.mean(picked)


def epoch_indices(rng: np.random.Generator, pool_size: int, steps: int, batch: int) -> np.ndarray:
    """``[steps, batch]`` indices into a pool of ``pool_size`` examples: successive random
    permutations (epochs), so every example is seen equally often."""
    total = steps * batch
    epochs = -(-total // pool_size)
    order = np.concatenate([rng.permutation(pool_size) for _ in range(epochs)])
    return order[:total].reshape(steps, batch)


def data_rng(seed: int, salt: int) -> np.random.Generator:
    """The NumPy generator for a task's training data at ``seed``; ``salt`` keeps the streams
    of different tasks (and of a task's fixed data) apart."""
    return np.random.default_rng([int(seed), salt])


def digits_batches(seed: int, salt: int, steps: int, batch: int,
                   keys: tuple[str, ...] = ("image", "label")) -> dict[str, np.ndarray]:
    """``steps`` batches of the digits training pool (``keys`` of it), ``[steps, batch, ...]``,
    in epochs shuffled by ``data_rng(seed, salt)``."""
    from tasks import data

    train = data.digits_pools()[0]
    index = epoch_indices(data_rng(seed, salt), len(train["label"]), steps, batch)
    return {key: train[key][index] for key in keys}


def digits_valid(keys: tuple[str, ...] = ("image", "label")) -> dict[str, np.ndarray]:
    """The digits validation pool (``keys`` of it)."""
    from tasks import data

    return {key: data.digits_pools()[1][key] for key in keys}


def gru_init(key, n_in: int, hidden: int) -> dict:
    """A GRU cell's weights: ``"in"`` [n_in, 3 hidden] and ``"rec"`` [hidden, 3 hidden] (gates
    in the order update, reset, candidate); the recurrent bias feeds the candidate only."""
    k_in, k_rec = jax.random.split(key)
    return {"in": dense_init(k_in, n_in, 3 * hidden), "rec": dense_init(k_rec, hidden, 3 * hidden)}


def gru_step(cell: dict, state, x):
    """One GRU step: ``state`` [..., hidden], ``x`` [..., n_in] -> the new state."""
    hidden = state.shape[-1]
    update_in, reset_in, cand_in = jnp.split(dense(cell["in"], x), 3, axis=-1)
    update_rec, reset_rec, cand_rec = jnp.split(state @ cell["rec"]["w"], 3, axis=-1)
    update = jax.nn.sigmoid(update_in + update_rec)
    reset = jax.nn.sigmoid(reset_in + reset_rec)
    candidate = jnp.tanh(cand_in + reset * (cand_rec + cell["rec"]["b"][2 * hidden:]))
    return (1.0 - update) * state + update * candidate
