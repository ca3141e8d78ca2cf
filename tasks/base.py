"""The task protocol: what a proxy training task provides to the evaluation engine.

A task is a small, deterministic training problem.  The engine trains a task's parameters
with a candidate optimizer for ``steps`` steps on ``train_batches(seed)`` and reads the loss on
``valid_batch()``, data never trained on.  Everything a task returns is plain arrays, so the
engine can compile the whole training run once (``jax.lax.scan`` over the steps, ``vmap``
over learning rates and seeds) and feed data and programs as arguments.

Contract:

* ``init(key) -> params``: a pytree of float32 arrays; deterministic in ``key``.
* ``loss(params, batch) -> scalar``: the training objective on one batch; jit-able, pure.
* ``train_batches(seed) -> batches``: a pytree of NumPy arrays whose leading axis is the step
  (length ``steps``), deterministic in ``seed``; tasks without data return an array of shape
  ``(steps, 0)``.
* ``valid_batch() -> batch``: one fixed batch (same structure as one training batch, any
  size) from data disjoint from the training data; ``loss(params, valid_batch())`` is the
  validation loss the score is computed from.
* ``default_lr``: the centre of the learning-rate grid, about right for adam.
* ``tier``: which default set the task belongs to (:data:`TIERS`): ``"search"`` (the search's
  proxies, about a second for a candidate's whole evaluation), ``"B"`` (held out from the
  search, about 10x a search task: the funnel's first stage), ``"C"`` (held out, about 100x:
  the funnel's last stage and ``discover bench``'s default suite), or ``"extra"`` (registered,
  in no default set: analytic functions and synthetic problems for tests and demos).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

WORST_SCORE = 2.0
"""Normalised score of a failed run (NaN, Inf, diverged); every score is clipped to it."""

TIERS = ("search", "B", "C", "extra")
"""The default sets a task can belong to, search proxies first, then by size."""

HELD_OUT_TIERS = ("B", "C")
"""Tiers the search never sees."""

LOSS_FLOOR = 1e-30
"""Losses are floored here before their logarithm is taken."""


@dataclasses.dataclass(frozen=True)
class Task:
    name: str
    family: str
    init: Callable[[Any], Any]
    loss: Callable[[Any, Any], Any]
    train_batches: Callable[[int], Any]
    valid_batch: Callable[[], Any]
    steps: int
    batch_size: int
    default_lr: float
    tier: str = "search"
    description: str = ""
    data_source: str = ""

    def __post_init__(self):
        if self.tier not in TIERS:
            raise ValueError(f"task {self.name!r}: tier must be one of {', '.join(TIERS)}, "
                             f"not {self.tier!r}")

    @property
    def held_out(self) -> bool:
        """True for tasks of a held-out tier (never shown to the search by default)."""
        return self.tier in HELD_OUT_TIERS


def normalized_score(loss: float, baseline_loss: float, initial_loss: float) -> float:
    """Validation ``loss`` on the scale where 0 is the tuned adam baseline and 1 is the
    untrained model, measured in log-loss:
    ``(log loss - log baseline) / (log initial - log baseline)``.

    Log space because proxy losses span orders of magnitude (Rosenbrock falls from 1e3 to
    1e-5 under adam): on a linear scale every run that gets within 1% of the initial loss
    would look as good as adam.  Losses must be positive (they are floored at LOSS_FLOOR).
    The result is clipped to ``[-WORST_SCORE, WORST_SCORE]``; NaN or Inf gives WORST_SCORE.
    Negative means better than tuned adam.
    """
    if not math.isfinite(loss):
        return WORST_SCORE
    log = lambda x: math.log(max(x, LOSS_FLOOR))
    span = log(initial_loss) - log(baseline_loss)
    if not math.isfinite(span) or span <= 0:
        raise ValueError(f"baseline loss {baseline_loss} does not improve on {initial_loss}")
    score = (log(loss) - log(baseline_loss)) / span
    return max(-WORST_SCORE, min(score, WORST_SCORE))
