"""The normalised task score (tasks.base.normalized_score), against direct float64 arithmetic."""

import math

import pytest

from tasks.base import WORST_SCORE, normalized_score


def test_anchor_points_and_log_scale():
    assert normalized_score(0.5, 0.5, 50.0) == 0.0          # as good as tuned adam
    assert normalized_score(50.0, 0.5, 50.0) == 1.0         # no progress at all
    # one decade better than adam, on a span of two decades
    assert normalized_score(0.05, 0.5, 50.0) == pytest.approx(-0.5, abs=1e-12)
    want = (math.log(3.0) - math.log(0.5)) / (math.log(50.0) - math.log(0.5))
    assert normalized_score(3.0, 0.5, 50.0) == pytest.approx(want, rel=1e-12)


def test_failures_and_extremes_are_bounded():
    for bad in (float("nan"), float("inf"), -float("inf")):
        assert normalized_score(bad, 0.5, 50.0) == WORST_SCORE
    assert normalized_score(1e30, 0.5, 50.0) == WORST_SCORE
    assert normalized_score(0.0, 0.5, 50.0) == -WORST_SCORE
    with pytest.raises(ValueError, match="does not improve"):
        normalized_score(1.0, 50.0, 0.5)
