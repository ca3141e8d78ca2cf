"""discover.experiments.task_selection: subset correlations against scipy, and the split-half selection."""

from __future__ import annotations

import itertools

import numpy as np
from scipy import stats

from discover.experiments.task_selection import split_half_selection, subset_correlations, subsets


def test_every_subset_rho_is_scipys_spearman_of_the_subset_median():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(25, 5))
    scores[3, :] = scores[4, :]          # tied programs
    target = rng.normal(size=25)
    chosen, rhos = subset_correlations(scores, target, min_size=2)
    assert chosen == subsets(5, 2)
    assert len(chosen) == sum(1 for k in range(2, 6) for _ in itertools.combinations(range(5), k))
    for c, rho in zip(chosen, rhos):
        expected = stats.spearmanr(np.median(scores[:, list(c)], axis=1), target).statistic
        assert abs(rho - expected) < 1e-12


def test_split_half_selection_finds_the_predictive_tasks_and_measures_them_out_of_sample():
    rng = np.random.default_rng(1)
    target = rng.normal(size=60)
    noise = rng.normal(size=(60, 6))
    scores = noise.copy()
    scores[:, :2] = target[:, None] + 0.5 * noise[:, :2]    # two tasks that predict
    result = split_half_selection(scores, target, min_size=2, splits=50,
                                  rng=np.random.default_rng(2))
    assert len(result.selected) == len(result.full) == 50
    favourite = max(result.picks, key=result.picks.get)
    assert {0, 1} <= set(favourite) and len(favourite) <= 3   # at most one noise task
    # out of sample, the chosen tasks beat all six (whose median is mostly noise)
    assert np.median(result.gain) > 0.2
    assert np.all(result.selected <= 1.0)
    # with no predictive task, choosing a subset gains nothing out of sample
    null = split_half_selection(noise, target, min_size=2, splits=50,
                                rng=np.random.default_rng(3))
    assert abs(np.median(null.selected)) < 0.25
