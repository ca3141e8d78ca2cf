"""Learning-rate tuning that finds the best rate wherever it lies: a walk on a wide log grid.

Every rate a program is trained at lies on one grid per task, half a decade apart around the
task's ``default_lr`` (about right for adam): rate ``k`` is ``default_lr * 10 ** (k / 2)`` for an
integer exponent ``k`` within :data:`LIMIT` (x1e-5 to x1e3, eight decades).  A trainer runs a
*window* of ``w`` neighbouring rates at once (``tasks.train.Trainer.run(..., lrs=...)``: the rates
are an argument, so a walk compiles nothing).

Contract of :func:`tune`:

* ``wide=True`` (comparisons: ``discover eval``, ``bench``, baselines, held-out scores, adam as
  the normaliser) first covers :data:`WIDE` (exponents -4..4: four decades, nine rates); the
  walk (the search's fitness) starts with one window centred on ``start`` (default 0).
* Then, while the best rate is at an edge of what was explored, strictly better than its
  inner neighbour and not at :data:`LIMIT`, the next window beyond that edge is run; when every
  rate explored diverged, the walk goes down (a rate too large diverges).  A tie at an edge (a
  program whose result does not depend on the rate) stops the walk.
* The best rate is the lowest mean over seeds of log validation loss (the score's scale),
  among rates at which no seed diverged (the lowest rate on a tie).  ``at_limit`` flags a best
  rate at the limit of the grid: the tuning could not bracket it.
* Deterministic: the same program, task and seeds explore the same rates, whatever ran before.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import numpy as np

from tasks.base import LOSS_FLOOR

STEP = 10 ** 0.5
"""Ratio of neighbouring rates of the grid (half a decade), as ``tasks.train.LR_GRID_FACTOR``."""

WIDE = (-4, 4)
"""Exponents a wide tuning covers first: default_lr x0.01 .. x100 (nine rates, four decades)."""

LIMIT = (-10, 6)
"""Exponents no tuning goes beyond: default_lr x1e-5 .. x1e3."""


def rate(default_lr: float, k: int) -> float:
    """The grid's rate of exponent ``k`` (float32, as trained)."""
    return float(np.float32(default_lr * STEP ** k))


def exponent(default_lr: float, lr: float) -> int | None:
    """The grid exponent nearest to ``lr`` (None for a rate that is not positive and finite),
    clamped to :data:`LIMIT`."""
    if not (math.isfinite(lr) and lr > 0):
        return None
    k = round(2 * math.log10(lr / default_lr))
    return int(min(max(k, LIMIT[0]), LIMIT[1]))


@dataclasses.dataclass(frozen=True)
class Tuning:
    """What a tuning explored: ``exponents`` (sorted) and their ``lrs``, ``losses`` float64
    [K, E] (validation loss per rate and seed, NaN where the run diverged), the index ``best``
    of the chosen rate (None when every rate diverged), ``at_limit`` and the number of
    ``windows`` run."""

    exponents: tuple[int, ...]
    lrs: tuple[float, ...]
    losses: np.ndarray
    best: int | None
    at_limit: bool
    windows: int

    @property
    def lr(self) -> float:
        return math.nan if self.best is None else self.lrs[self.best]

    @property
    def best_losses(self) -> np.ndarray:
        """Validation loss per seed at the chosen rate (NaN when every rate diverged)."""
        if self.best is None:
            return np.full(self.losses.shape[1], math.nan)
        return self.losses[self.best]

    def to_json(self) -> dict:
        """Plain JSON data (a diverged run's loss as null) that :meth:`from_json` reads."""
        return {"exponents": [int(k) for k in self.exponents],
                "lrs": [float(x) for x in self.lrs],
                "losses": [[x if math.isfinite(x) else None for x in map(float, row)]
                           for row in self.losses],
                "best": self.best, "at_limit": bool(self.at_limit), "windows": int(self.windows)}

    @classmethod
    def from_json(cls, data: dict) -> Tuning:
        """The tuning :meth:`to_json` wrote (null or NaN losses read as NaN); KeyError,
        TypeError or ValueError on anything else."""
        losses = np.array([[math.nan if x is None else float(x) for x in row]
                           for row in data["losses"]], np.float64)
        return cls(tuple(int(k) for k in data["exponents"]),
                   tuple(float(x) for x in data["lrs"]), losses,
                   None if data["best"] is None else int(data["best"]),
                   bool(data["at_limit"]), int(data["windows"]))


def mean_log_loss(losses: np.ndarray) -> np.ndarray:
    """Mean over the last axis (seeds) of log loss (floored); NaN where a seed diverged."""
    losses = np.asarray(losses, np.float64)
    with np.errstate(invalid="ignore"):
        logs = np.log(np.maximum(losses, LOSS_FLOOR))
    return np.where(np.isfinite(losses).all(axis=-1), logs.mean(axis=-1), math.nan)


def choose(losses: np.ndarray) -> int | None:
    """Index of the best rate of ``losses`` [K, E] (see the module docstring), or None."""
    per_rate = mean_log_loss(losses)
    if not np.isfinite(per_rate).any():
        return None
    return int(np.argmin(np.where(np.isfinite(per_rate), per_rate, np.inf)))


def _window(first: int, width: int) -> list[int]:
    """``width`` exponents from ``first``, shifted to lie within :data:`LIMIT`."""
    first = min(max(first, LIMIT[0]), LIMIT[1] - width + 1)
    return list(range(first, first + width))


def _direction(ks: list[int], losses: np.ndarray, best: int | None) -> int:
    """-1 to explore lower rates, +1 higher ones, 0 to stop (see the module docstring)."""
    if best is None:
        return -1 if ks[0] > LIMIT[0] else 0
    per_rate = mean_log_loss(losses)
    per_rate = np.where(np.isfinite(per_rate), per_rate, np.inf)
    if best == len(ks) - 1 and ks[-1] < LIMIT[1] and (best == 0 or
                                                      per_rate[best] < per_rate[best - 1]):
        return 1
    if best == 0 and ks[0] > LIMIT[0] and (len(ks) == 1 or per_rate[0] < per_rate[1]):
        return -1
    return 0


def tune(run_window: Callable[[Sequence[int]], np.ndarray], width: int, default_lr: float,
         *, wide: bool, start: int = 0) -> Tuning:
    """Tune by running windows of ``width`` exponents: ``run_window(ks)`` returns the validation
    losses float [width, E] at the rates of those exponents (:func:`rate` of ``default_lr``).
    See the module docstring."""
    if width < 1:
        raise ValueError(f"a window needs at least one rate, got {width}")
    explored: dict[int, np.ndarray] = {}
    windows = 0

    def run(ks: list[int]) -> None:
        nonlocal windows
        losses = np.asarray(run_window(ks), np.float64)
        if losses.ndim != 2 or losses.shape[0] != len(ks):
            raise ValueError(f"run_window returned shape {losses.shape} for {len(ks)} rates")
        windows += 1
        explored.update(zip(ks, losses))

    if wide:
        first = WIDE[0]
        while first <= WIDE[1]:
            run(_window(first, width))
            first += width
    else:
        run(_window(start - (width - 1) // 2, width))
    while True:
        ks = sorted(explored)
        losses = np.stack([explored[k] for k in ks])
        best = choose(losses)
        direction = _direction(ks, losses, best)
        if direction == 0:
            break
        run(_window(ks[0] - width if direction < 0 else ks[-1] + 1, width))
    return Tuning(tuple(ks), tuple(rate(default_lr, k) for k in ks), losses, best,
                  best is not None and ks[best] in LIMIT, windows)
