"""Learning-rate schedules applied outside the update program, the same for every contender.

A schedule multiplies the program's ``lr`` input at step ``t`` (from 1) of a ``T``-step run by
``multipliers(name, T)[t - 1]``: the program sees ``lr * s(t)`` wherever it reads ``lr`` (the
AlgoPerf and Lion-paper protocol: every optimizer trained under the same tuned schedule, the
schedule not part of what is compared).  The rate that tuning picks is the schedule's peak.

Contract:

* :data:`SCHEDULES` names them: ``"constant"`` (1 at every step: the program trains as
  written) and ``"warmup_cosine"`` (linear warmup from 0 over ``W = floor(T / 10)`` steps, then
  a cosine decay to 0 at step ``T``, evaluated at ``count = t - 1``: exactly
  ``optax.warmup_cosine_decay_schedule(0, 1, W, T, 0)``, the multiplier of the library's
  ``adam_warmup_cosine``).
* :func:`multipliers` returns float32 ``[length]`` (``length >= T``; steps past ``T`` repeat
  the last value: they pad a shared scalar pass and are never trained).
* An unknown name is a ``ValueError`` listing the known ones.
"""

from __future__ import annotations

import math

import numpy as np

CONSTANT = "constant"
WARMUP_COSINE = "warmup_cosine"
SCHEDULES = (CONSTANT, WARMUP_COSINE)


def check(name: str) -> str:
    """``name`` if it is a schedule, else a ``ValueError`` naming the known ones."""
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; schedules: {', '.join(SCHEDULES)}")
    return name


def multipliers(name: str, T: int, length: int | None = None) -> np.ndarray:
    """The factor on ``lr`` at steps ``t = 1 .. length`` of a ``T``-step run (float32)."""
    check(name)
    if T < 1:
        raise ValueError(f"a schedule needs at least one step, got T={T}")
    length = T if length is None else length
    if length < T:
        raise ValueError(f"length {length} is shorter than the run's {T} steps")
    count = np.minimum(np.arange(length, dtype=np.float64), T - 1)  # t - 1, held after T
    if name == CONSTANT:
        return np.ones(length, np.float32)
    warmup = math.floor(T / 10)
    span = T - warmup
    cosine = 0.5 * (1.0 + np.cos(math.pi * np.minimum(count - warmup, span) / span))
    if warmup == 0:
        return cosine.astype(np.float32)
    warm = count / warmup
    return np.where(count < warmup, warm, cosine).astype(np.float32)


def key_suffix(name: str) -> str:
    """What a cache key appends for runs under schedule ``name`` ("" for ``constant``, so
    that every cache written before schedules existed keeps its meaning)."""
    return "" if check(name) == CONSTANT else f"~{name}"
