"""Choosing a search set by how well it predicts a target tier, without fooling ourselves.

``scripts/proxy_validity.py`` scores a panel of programs on every search task and on the
target tier.  Picking the subset of search tasks whose median score ranks the panel most like
the target does is a selection over many subsets on one panel: the winner's correlation on
that panel is biased upwards.  This module measures the selection out of sample.

Contract:

* :func:`subset_correlations` gives, for every subset of the tasks (columns of ``scores``)
  with at least ``min_size`` tasks, Spearman's rho between the per-program median over the
  subset and ``target``; subsets as tuples of column indices, in a fixed order (by size, then
  lexicographic).
* :func:`split_half_selection` repeats ``splits`` times: split the programs at random into two
  halves, choose the subset with the best rho on one half, and measure that subset's rho and
  the full set's rho on the other half.  It returns both held-out rhos per split, so the
  caller can say whether choosing a subset beats keeping every task out of sample.
* Ties in ranks are averaged (``scipy.stats.rankdata``), as in ``scipy.stats.spearmanr``;
  every function is deterministic given its ``rng``.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np


def subsets(n_tasks: int, min_size: int) -> list[tuple[int, ...]]:
    """Every subset of ``range(n_tasks)`` with at least ``min_size`` members (by size, then
    lexicographic)."""
    return [c for size in range(min_size, n_tasks + 1)
            for c in itertools.combinations(range(n_tasks), size)]


def subset_medians(scores: np.ndarray, chosen: list[tuple[int, ...]]) -> np.ndarray:
    """``(len(chosen), programs)``: each program's median score over each subset's tasks."""
    scores = np.asarray(scores, np.float64)
    return np.stack([np.median(scores[:, list(c)], axis=1) for c in chosen])


def _rank_correlations(rows: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Spearman's rho of each row of ``rows`` with ``target`` (average ranks for ties)."""
    from scipy import stats

    x = stats.rankdata(rows, axis=1)
    y = stats.rankdata(target)
    x = x - x.mean(axis=1, keepdims=True)
    y = y - y.mean()
    denominator = np.sqrt((x * x).sum(axis=1) * (y * y).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, (x @ y) / denominator, np.nan)


def subset_correlations(scores: np.ndarray, target: np.ndarray, min_size: int
                        ) -> tuple[list[tuple[int, ...]], np.ndarray]:
    """Every subset of at least ``min_size`` tasks and its Spearman rho with ``target``."""
    chosen = subsets(np.shape(scores)[1], min_size)
    return chosen, _rank_correlations(subset_medians(scores, chosen), np.asarray(target))


@dataclasses.dataclass(frozen=True)
class SplitHalf:
    """Out-of-sample rhos over random halves of the panel: ``selected`` of the subset chosen
    on the other half, ``full`` of every task; ``picks`` how often each subset was chosen."""

    selected: np.ndarray
    full: np.ndarray
    picks: dict[tuple[int, ...], int]

    @property
    def gain(self) -> np.ndarray:
        return self.selected - self.full


def split_half_selection(scores: np.ndarray, target: np.ndarray, min_size: int, splits: int,
                         rng: np.random.Generator) -> SplitHalf:
    """See the module docstring."""
    scores, target = np.asarray(scores, np.float64), np.asarray(target, np.float64)
    chosen = subsets(scores.shape[1], min_size)
    medians = subset_medians(scores, chosen)
    full = chosen.index(tuple(range(scores.shape[1])))
    n = len(target)
    selected, everything, picks = [], [], {}
    for _ in range(splits):
        order = rng.permutation(n)
        fit, held = order[: n // 2], order[n // 2:]
        rho_fit = _rank_correlations(medians[:, fit], target[fit])
        best = int(np.nanargmax(rho_fit))
        rho_held = _rank_correlations(medians[:, held][[best, full]], target[held])
        selected.append(rho_held[0])
        everything.append(rho_held[1])
        picks[chosen[best]] = picks.get(chosen[best], 0) + 1
    return SplitHalf(np.array(selected), np.array(everything), picks)
