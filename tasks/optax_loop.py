"""Train a task with an optax optimizer: the reference loop ("floor") the engine is
measured against, and what the task tests use.

The whole run (init, ``steps`` updates by ``jax.lax.scan`` over the precomputed batches, the
validation loss) is one jitted function per (task, optimizer); batches and the PRNG key are
its arguments, so a new seed runs without a compile.
"""

from __future__ import annotations

import functools

import jax
import numpy as np
import optax

from tasks.base import Task


@functools.lru_cache(maxsize=64)
def compiled_run(task: Task, tx: optax.GradientTransformation, with_initial: bool = False):
    """``run(key, train_batches, valid_batch) -> (train_losses [steps], valid_loss)``, jitted;
    ``with_initial`` puts the validation loss of the initial parameters in the middle:
    ``(train_losses, initial_valid_loss, valid_loss)``."""

    def step(carry, batch):
        params, opt_state = carry
        loss, grads = jax.value_and_grad(task.loss)(params, batch)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), loss

    def run(key, train_batches, valid_batch):
        initial = task.init(key)
        (params, _), losses = jax.lax.scan(step, (initial, tx.init(initial)), train_batches)
        if with_initial:
            return losses, task.loss(initial, valid_batch), task.loss(params, valid_batch)
        return losses, task.loss(params, valid_batch)

    return jax.jit(run)


def train(task: Task, tx: optax.GradientTransformation, seed: int) -> tuple[np.ndarray, float]:
    """Train ``task`` from ``task.init(jax.random.key(seed))`` on ``task.train_batches(seed)``;
    return the loss of every step (before its update) and the final validation loss.
    A diverged run returns NaN or Inf, it does not raise."""
    losses, valid = compiled_run(task, tx)(
        jax.random.key(seed), task.train_batches(seed), task.valid_batch())
    return np.asarray(losses), float(valid)


def train_with_initial(task: Task, tx: optax.GradientTransformation,
                       seed: int) -> tuple[np.ndarray, float, float]:
    """As :func:`train`, and the validation loss before training, from the same compiled
    run: ``(train_losses, initial_valid_loss, valid_loss)``."""
    losses, initial, valid = compiled_run(task, tx, True)(
        jax.random.key(seed), task.train_batches(seed), task.valid_batch())
    return np.asarray(losses), float(initial), float(valid)


def initial_valid_loss(task: Task, seed: int) -> float:
    """The validation loss of the untrained parameters ``task.init(jax.random.key(seed))``."""
    return float(jax.jit(lambda key, batch: task.loss(task.init(key), batch))(
        jax.random.key(seed), task.valid_batch()))
