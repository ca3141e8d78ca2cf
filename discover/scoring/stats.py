"""How scores are combined over tasks, their confidence intervals, and what may be claimed.

Contract:

* A task's score is the mean over training seeds of the per-seed normalised scores
  (``discover.scoring.evaluate``); :func:`aggregate` combines tasks by their **median**, so no task
  can carry a score alone: a program must be better than adam on more than half the tasks to
  score below 0 (docs/scoring.md states the measurement behind the choice).
* :func:`interval` is a percentile bootstrap (``scipy.stats.bootstrap``) of the aggregate of
  *paired* per-seed differences (program minus reference on the same seed, the same initial
  weights and batches), resampling seeds within each task (a stratified bootstrap; the tasks
  are the suite's, fixed).  None when a task has fewer than two seeds.  Deterministic: the
  resampling generator is seeded.
* :func:`verdict` says "beats", "worse than" or "within noise of": a claim only where the
  interval excludes 0 by at least :data:`MIN_EFFECT`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
RESAMPLES = 2000
SEED = 0
MIN_EFFECT = 0.005
"""The smallest difference claimed, in score units (half a percent of the way from tuned adam
to the untrained model): adam with its epsilon moved from 1e-8 to 5e-9 differs from adam in
the same direction on every seed, so its interval excludes 0, but it is not a discovery."""


def aggregate(task_scores: Sequence[float]) -> float:
    """The median of the tasks' scores (NaN for no task)."""
    values = np.asarray(list(task_scores), np.float64)
    return float(np.median(values)) if values.size else math.nan


def _median_of_means(*samples: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.median(np.stack([s.mean(axis=axis) for s in samples]), axis=0)


def interval(differences: Sequence[np.ndarray], confidence: float = CONFIDENCE
             ) -> tuple[float, float] | None:
    """Bootstrap interval of :func:`aggregate` over tasks of the per-task mean of
    ``differences`` (one array of per-seed differences per task); None when a task has fewer
    than two seeds (nothing to resample) or a difference is not finite."""
    samples = tuple(np.asarray(d, np.float64).reshape(-1) for d in differences)
    if not samples or any(s.size < 2 or not np.isfinite(s).all() for s in samples):
        return None
    if all(np.ptp(s) == 0 for s in samples):  # no spread: the interval is the point
        point = float(_median_of_means(*samples))
        return point, point
    result = stats.bootstrap(samples, _median_of_means, n_resamples=RESAMPLES,
                             vectorized=True, paired=False, method="percentile",
                             confidence_level=confidence, rng=np.random.default_rng(SEED))
    low, high = result.confidence_interval
    return float(low), float(high)


def beats(bounds) -> bool:
    """Whether an interval of (program - reference) supports "beats": it exists and lies
    wholly below ``-MIN_EFFECT`` (a campaign's crown, promotion's gate, the bench's verdict)."""
    return bounds is not None and bounds[1] < -MIN_EFFECT


def verdict(bounds: tuple[float, float] | None, reference: str = "adam") -> str:
    """What the interval of (program - ``reference``) supports, lower being better: "beats"
    when the whole interval is below ``-MIN_EFFECT``, "worse than" when it is above
    ``MIN_EFFECT``, else "within noise of"."""
    if bounds is None:
        return f"no interval (one seed): not compared with {reference}"
    low, _ = bounds
    if beats(bounds):
        return f"beats {reference}"
    if low > MIN_EFFECT:
        return f"worse than {reference}"
    return f"within noise of {reference}"


def short_verdict(bounds: tuple[float, float] | None) -> str:
    """:func:`verdict` in a table cell: "better", "worse", "noise" or "-" (one seed)."""
    if bounds is None:
        return "-"
    return {"beats adam": "better", "worse than adam": "worse"}.get(verdict(bounds), "noise")


def signed(x: float, places: int = 4) -> str:
    """``x`` to ``places`` decimals with its sign, and a value that rounds to zero as
    ``+0.000...`` (never ``-0.000...``: a sum of floats that is zero in exact arithmetic may
    come out as -1e-17 under another library version)."""
    value = round(float(x), places)
    return f"{value + 0.0 if value != 0 else 0.0:+.{places}f}"


def format_interval(bounds: tuple[float, float] | None) -> str:
    return "" if bounds is None else f"[{bounds[0]:+.3f}, {bounds[1]:+.3f}]"
