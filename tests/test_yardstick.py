"""The yardstick: wide-grid tuning (``discover.scoring.tuning``), the median over tasks and the paired
bootstrap interval (``discover.scoring.stats``), checked against the real engine and references."""

from __future__ import annotations

import math

import numpy as np
import optax
import pytest

import programs
import tasks
from discover.scoring import stats, tuning
from discover.scoring.evaluate import Evaluator
from tasks.train import OptaxTrainer, Trainer

TASKS = ["quadratic", "logistic"]
SEEDS = (0, 1)


def rescaled(name: str, factor: float) -> programs.Program:
    """Baseline ``name`` with its update multiplied by ``factor``: the same optimizer, its
    best learning rate moved by ``1 / factor``."""
    base = programs.BASELINES[name]
    lines = str(base).rstrip().splitlines()
    out = lines[-1].strip().removeprefix("return ").split(",")[0].strip()
    lines.insert(len(lines) - 1, f"    {out} = {factor!r} * {out}")
    text = "\n".join(lines).replace(f"def {base.name}(", f"def {base.name}_rescaled(", 1)
    return programs.parse(text)


@pytest.fixture(scope="module")
def evaluator():
    """One walk evaluator (its ``tune(wide=True)`` is the wide tuning): one compile per task."""
    return Evaluator(TASKS, seeds=SEEDS).warm_up()


# -- the grid and the walk ------------------------------------------------------------------

def test_rates_lie_on_one_half_decade_grid():
    assert tuning.rate(0.01, 0) == pytest.approx(0.01)
    assert tuning.rate(0.01, 2) == pytest.approx(0.1, rel=1e-6)
    assert tuning.rate(0.01, -3) == pytest.approx(0.01 / 10 ** 1.5, rel=1e-6)
    assert tuning.exponent(0.01, 0.0316) == 1 and tuning.exponent(0.01, 1e9) == tuning.LIMIT[1]
    assert tuning.exponent(0.01, math.nan) is None


def bowl(best: float, limit_nan_above: float | None = None):
    """A made-up loss against the exponent: a parabola with its minimum at ``best``, NaN
    (diverged) above ``limit_nan_above``, as ``run_window`` returns it for two seeds."""
    calls = []

    def run_window(ks):
        calls.append(list(ks))
        ks = np.asarray(ks, float)
        loss = np.exp((ks - best) ** 2 / 10)
        if limit_nan_above is not None:
            loss = np.where(ks > limit_nan_above, np.nan, loss)
        return np.stack([loss, loss * 1.01], axis=1)

    return run_window, calls


@pytest.mark.parametrize("best", [-9, -6, 0, 3, 5])
def test_the_wide_tuning_and_the_walk_bracket_the_best_rate(best):
    for wide in (True, False):
        run_window, calls = bowl(best)
        result = tuning.tune(run_window, 3, 1.0, wide=wide)
        assert result.exponents[result.best] == best and not result.at_limit
        assert set(range(tuning.WIDE[0], tuning.WIDE[1] + 1)) <= set(result.exponents) or not wide
        assert result.windows == len(calls)


def test_a_rate_beyond_the_limit_is_flagged_and_the_walk_stops_there():
    run_window, _ = bowl(9)
    result = tuning.tune(run_window, 3, 1.0, wide=True)
    assert result.exponents[result.best] == tuning.LIMIT[1] and result.at_limit
    assert max(result.exponents) == tuning.LIMIT[1]


def test_divergence_walks_down_and_a_flat_loss_stops():
    run_window, _ = bowl(-2, limit_nan_above=-1)  # everything from adam's rate up diverges
    result = tuning.tune(run_window, 3, 1.0, wide=False, start=4)
    assert result.exponents[result.best] == -2
    flat = tuning.tune(lambda ks: np.ones((len(ks), 2)), 3, 1.0, wide=False)
    assert flat.windows == 1 and flat.best == 0
    dead = tuning.tune(lambda ks: np.full((len(ks), 2), np.nan), 3, 1.0, wide=False)
    assert dead.best is None and min(dead.exponents) == tuning.LIMIT[0]


def test_a_trainer_runs_any_rates_without_a_compile_and_matches_optax():
    """``Trainer.run(lrs=...)``: rates off the default grid, against optax's adam (reference)."""
    task = tasks.get("quadratic")
    lrs = np.array([tuning.rate(task.default_lr, k) for k in (-7, 5)], np.float32)
    trainer = Trainer(task, seeds=SEEDS, lr_grid_size=2)
    ours = trainer.run(programs.BASELINES["adam"], lrs=lrs)
    reference = OptaxTrainer(task, optax.adam, seeds=SEEDS, lr_grid_size=2).run(lrs=lrs)
    np.testing.assert_allclose(ours.valid_losses, reference.valid_losses, rtol=2e-4)
    assert trainer.compiled._cache_size() == 1
    with pytest.raises(ValueError, match="2 positive learning rates"):
        trainer.run(programs.BASELINES["adam"], lrs=lrs[:1])


# -- the search's walk reaches the wide grid's answer -------------------------------------

RESCALED = [("lion", 0.01), ("sgd", 100.0), ("adam", 0.001), ("signsgd", 10.0),
            ("momentum", 0.01)]


@pytest.mark.parametrize("name,factor", [(n, 1.0) for n in programs.BASELINES] + RESCALED)
def test_the_walk_scores_within_0_02_of_the_wide_grid(evaluator, name, factor):
    """The search's cheap tuning (a walk from adam's rate) against the wide grid, per task,
    for every baseline and for programs whose best rate is moved by 2-3 decades."""
    program = programs.BASELINES[name] if factor == 1.0 else rescaled(name, factor)
    for task in TASKS:
        walk = evaluator.tune(program, task, wide=False)
        wide = evaluator.tune(program, task, wide=True)
        assert walk.best is not None and wide.best is not None
        base = evaluator.baseline(task)
        walk_score = np.mean([tasks.normalized_score(x, base.loss, base.initial_loss)
                              for x in walk.best_losses])
        wide_score = np.mean([tasks.normalized_score(x, base.loss, base.initial_loss)
                              for x in wide.best_losses])
        assert abs(walk_score - wide_score) <= 0.02, (task, walk.lr, wide.lr)


def test_a_rescaled_program_scores_as_its_original(evaluator):
    """lion x 0.01 is lion with rates x100: tuned, it scores as lion (and adam x 0.001 as
    adam: 0, its rate found beyond the wide span, at x1000 = the grid's limit, flagged)."""
    lion = evaluator.evaluate(programs.BASELINES["lion"])
    moved = evaluator.evaluate(rescaled("lion", 0.01))
    assert moved.aggregate == pytest.approx(lion.aggregate, abs=0.01)
    for a, b in zip(lion.scores, moved.scores):
        assert b.lr == pytest.approx(100 * a.lr, rel=1e-3)
    adam = evaluator.evaluate(rescaled("adam", 0.001))
    assert adam.aggregate == pytest.approx(0.0, abs=1e-3)
    assert all(s.at_limit for s in adam.scores)


# -- the aggregate and the interval --------------------------------------------------------

def test_no_single_task_carries_the_aggregate():
    """The issue's cases: far better than adam on one task (or two of six: both
    Rosenbrocks), clearly worse on every other: the aggregate is worse than adam's (0)."""
    assert stats.aggregate([-2.0, 0.1, 0.1]) > 0
    assert stats.aggregate([-0.98, 0.114, 0.05, 0.03]) > 0
    assert stats.aggregate([-2.0, -2.0, 0.1, 0.1, 0.1, 0.1]) > 0
    assert stats.aggregate([-0.1, -0.1, 0.5]) < 0  # better on most tasks: better


def test_the_evaluators_aggregate_is_the_median_of_its_tasks(evaluator):
    result = evaluator.evaluate(programs.BASELINES["signsgd"])
    assert result.aggregate == pytest.approx(np.median([s.score for s in result.scores]))
    adam = evaluator.evaluate(programs.BASELINES["adam"])
    assert adam.aggregate == pytest.approx(0.0, abs=1e-9)
    assert adam.interval == pytest.approx((0.0, 0.0), abs=1e-9)  # paired with itself


def test_the_bootstrap_interval_matches_the_normal_interval_of_a_mean():
    """Reference: for many seeds of one task the percentile bootstrap of the mean is the
    normal interval, mean +- 1.96 s / sqrt(n)."""
    x = np.random.default_rng(1).normal(0.3, 1.0, 400)
    low, high = stats.interval([x])
    half = 1.96 * x.std(ddof=1) / math.sqrt(x.size)
    assert low == pytest.approx(x.mean() - half, abs=0.15 * half)
    assert high == pytest.approx(x.mean() + half, abs=0.15 * half)


def test_verdicts_follow_the_interval():
    assert stats.interval([np.array([0.2])]) is None
    rng = np.random.default_rng(2)
    worse = [0.2 + 0.01 * rng.normal(size=5) for _ in range(3)]
    noise = [0.1 * rng.normal(size=5) for _ in range(3)]
    assert stats.verdict(stats.interval(worse)) == "worse than adam"
    assert stats.verdict(stats.interval([-w for w in worse])) == "beats adam"
    assert stats.verdict(stats.interval(noise)) == "within noise of adam"
    assert stats.verdict(None).startswith("no interval")
    # A difference the same on every seed but below MIN_EFFECT (adam with its epsilon moved)
    # excludes 0 and is still not claimed.
    tiny = [np.array([-1e-4, -2e-4, -1.5e-4]) for _ in range(3)]
    low, high = stats.interval(tiny)
    assert high < 0 and stats.verdict((low, high)) == "within noise of adam"


def test_a_walk_from_the_parents_rate_costs_one_window(evaluator):
    """The search passes each child its parent's tuned rates (``Job.starts``): a child whose
    best rate is its parent's runs one window per task, where a walk from adam's runs more."""
    child = rescaled("lion", 0.01)
    from_adam = evaluator.evaluate(child)
    parent_rates = {s.task: s.lr for s in from_adam.scores}
    from_parent = evaluator.evaluate(child, starts=parent_rates)
    assert [s.windows for s in from_parent.scores] == [1] * len(TASKS)
    assert all(s.windows >= 2 for s in from_adam.scores)
    assert [s.score for s in from_parent.scores] == [s.score for s in from_adam.scores]
