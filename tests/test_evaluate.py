"""discover.scoring.evaluate and tasks.train: compile once, score candidates, failures as data."""

from __future__ import annotations

import json
import math

import jax
import numpy as np
import pytest

import programs
import tasks
from discover.records import REJECTED, REJECTED_SCORE, Hurdle
from discover.scoring.evaluate import (
    Evaluation,
    Evaluator,
    TaskScore,
    best_of_grid,
    cached_evaluator,
    evaluate,
)
from programs import parse
from tasks.base import WORST_SCORE, normalized_score
from tasks.train import OptaxTrainer, lr_grid

TASKS = ("quadratic", "logistic")  # the cheapest registered tasks

# Differs from adam in ops, constants and statement count (same bucket).
CANDIDATE = parse("""\
def cand(g, lr, t, m):
    m = interp(g, m, 0.8)
    d = abs(m) + 0.001
    u = tanh(m / d) * lr
    u = u * (1.0 - 0.5 * t / 1000.0)
    return u, m
""")
DIVERGING = parse("""\
def boom(g, lr):
    u = exp(g * 1000.0) * -1e30
    return u
""")


class CompileCounter:
    """Counts XLA backend compilations (jax's monitoring event) while active."""

    def __init__(self):
        self.count = 0

    def __enter__(self):
        jax.monitoring.register_event_duration_secs_listener(self._on_event)
        return self

    def __exit__(self, *exc):
        jax.monitoring.unregister_event_duration_listener(self._on_event)

    def _on_event(self, event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            self.count += 1


@pytest.fixture(scope="module")
def evaluator():
    # The cached evaluator of discover.scoring.evaluate(): test_leaderboard reuses its compilations.
    return cached_evaluator(TASKS).warm_up()


def test_second_candidate_compiles_nothing(evaluator):
    evaluator.evaluate(programs.BASELINES["lion"])
    with CompileCounter() as counter:
        first = evaluator.evaluate(CANDIDATE)
        second = evaluator.evaluate(programs.BASELINES["sgd"])
    assert counter.count == 0
    assert first.status == "ok" and second.status == "ok"
    for name in TASKS:
        assert evaluator.trainer(name).compiled._cache_size() == 1
    # The counter does see compilations: a fresh jitted function is one.
    with CompileCounter() as counter:
        jax.jit(lambda x: x * 3.0 + 1.0)(np.float32(2.0)).block_until_ready()
    assert counter.count >= 1


def test_warm_up_compiles_the_candidates_bucket_when_adam_does_not_fit():
    """adam (17 statements) is scored in a bucket of its own; warm_up must still compile the
    bucket candidates use, so that the first candidate costs no compilation."""
    small = Evaluator(["quadratic"], max_statements=12, max_slots=2).warm_up()
    with CompileCounter() as counter:
        result = small.evaluate(CANDIDATE)
    assert counter.count == 0 and result.status == "ok"


def test_adam_scores_zero_by_construction_and_sgd_worse(evaluator):
    """Determinism check: adam is also the normaliser, so its score is 0 by construction (a
    second run of the same engine gives the same loss).  The independent check is the next
    test."""
    adam = evaluator.evaluate(programs.BASELINES["adam"])
    assert adam.status == "ok" and adam.aggregate == 0.0
    for s in adam.scores:
        assert s.score == 0.0 and s.status == "ok"
        assert s.lr in lr_grid(tasks.get(s.task).default_lr)
    sgd = evaluator.evaluate(programs.BASELINES["sgd"]).by_task()
    assert sgd["quadratic"].score > 0.05  # ill-conditioned: plain gradient descent lags


def test_the_normaliser_is_optax_adam_tuned_on_the_same_grid(evaluator):
    """Independent of the engine: optax's own adam, trained on the same grid, seeds and data
    by a plain optax loop, reaches the baseline's best loss at the same learning rate."""
    import optax

    for name in TASKS:
        task = tasks.get(name)
        loss, lr = best_of_grid(OptaxTrainer(task, optax.adam).run())
        base = evaluator.baseline(name)
        assert base.lr == lr
        assert base.loss == pytest.approx(loss, rel=1e-4)


def mixed_curvature_task(curvatures=(1.0, 10.0)):
    """A 1-d quadratic ``c * (p - b)^2`` whose curvature ``c`` depends on the training seed
    (seed 0: 1, seed 1: 10): sgd at a large learning rate diverges on seed 1 only."""
    steps = 60

    def batches(seed):
        rng = np.random.default_rng(seed)
        target = 1.0 + 0.1 * rng.standard_normal(steps)
        return np.stack([target, np.full(steps, curvatures[seed])], 1).astype(np.float32)

    return tasks.Task(
        name="mixed_curvature", family="quadratic", steps=steps, batch_size=1, default_lr=0.3,
        init=lambda key: {"p": jax.numpy.zeros(())},
        loss=lambda params, batch: batch[1] * (params["p"] - batch[0]) ** 2,
        train_batches=batches, valid_batch=lambda: np.array([1.0, 1.0], np.float32))


def sgd_reference(task, lr: float, seed: int) -> float:
    """Validation loss of sgd after ``task.steps`` steps, in float64 NumPy (NaN if the
    training loss stopped being finite on the way: diverged)."""
    p = 0.0
    with np.errstate(over="ignore", invalid="ignore"):
        for target, curvature in task.train_batches(seed).astype(np.float64):
            loss = curvature * (p - target) ** 2
            if not np.isfinite(loss) or abs(p) > 1e30:
                return math.nan
            p -= lr * 2 * curvature * (p - target)
    target, curvature = task.valid_batch().astype(np.float64)
    return curvature * (p - target) ** 2


def test_several_seeds_average_and_one_diverging_seed_loses_its_learning_rate():
    """The multi-seed path: per learning rate the mean over seeds, NaN when any seed diverged;
    the best rate is chosen from those means.  Checked against float64 NumPy sgd."""
    task = mixed_curvature_task()
    evaluator = Evaluator([task], seeds=(0, 1), lr_grid=3)
    run = evaluator.run(programs.BASELINES["sgd"], task.name)
    lrs = [float(x) for x in run.lrs]
    assert run.valid_losses.shape == (3, 2)
    for i, lr in enumerate(lrs):
        for j, seed in enumerate((0, 1)):
            expected = sgd_reference(task, lr, seed)
            if math.isnan(expected):
                assert math.isnan(run.valid_losses[i, j]), (lr, seed)
            else:
                assert run.valid_losses[i, j] == pytest.approx(expected, rel=1e-4, abs=1e-9)
    # lr 0.3 and 0.95 diverge on seed 1 only (2 * lr * 10 > 2), 0.095 on neither
    assert np.isnan(run.valid_losses[1:, 1]).all() and np.isfinite(run.valid_losses[:, 0]).all()
    loss, lr = best_of_grid(run)
    assert lr == lrs[0]
    assert loss == pytest.approx(np.mean([sgd_reference(task, lrs[0], s) for s in (0, 1)]),
                                 rel=1e-4)
    # The tuning chooses the lowest mean over seeds of log loss among the rates no seed
    # diverged at (the NumPy reference at every rate it explored).
    tuned = evaluator.tune(programs.BASELINES["sgd"], task.name)
    reference = np.array([[sgd_reference(task, lr, s) for s in (0, 1)] for lr in tuned.lrs])
    np.testing.assert_allclose(tuned.losses, reference, rtol=1e-4, atol=1e-9)
    per_rate = np.where(np.isfinite(reference).all(axis=1),
                        np.log(reference).mean(axis=1), np.inf)
    score = evaluator.evaluate(programs.BASELINES["sgd"]).scores[0]
    assert (score.status, score.lr) == ("ok", tuned.lrs[int(np.argmin(per_rate))])
    assert score.loss == pytest.approx(reference[int(np.argmin(per_rate))].mean(), rel=1e-4)
    # Seed 0 alone diverges nowhere: the NaN rates are lost through seed 1 alone.
    assert np.isfinite([sgd_reference(task, lr, 0) for lr in lrs]).all()


def test_diverging_program_is_worst_score_not_an_exception(evaluator):
    ev = evaluator.evaluate(DIVERGING)
    assert ev.status == "failed"
    for s in ev.scores:
        assert s.status == "nonfinite" and s.score == WORST_SCORE
        assert math.isnan(s.loss) and math.isnan(s.lr)
    assert ev.aggregate == WORST_SCORE
    # Deterministic (the early stop changes nothing), curves NaN from the divergence on.
    run = evaluator.run(DIVERGING, "quadratic")
    again = evaluator.run(DIVERGING, "quadratic")
    np.testing.assert_array_equal(run.valid_losses, again.valid_losses)
    assert np.isnan(run.valid_losses).all() and not np.isfinite(run.train_losses[..., -1]).any()


def test_engine_training_matches_optax_loop(evaluator):
    # The engine's run of adam against the same grid trained by programs.as_optax in a plain
    # optax loop (same init, batches, learning rates), and the middle lr against
    # tasks.optax_loop.train, which fixes how a seed maps to initial weights and batches.
    adam = programs.BASELINES["adam"]
    task = tasks.get("quadratic")
    mine = evaluator.trainer("quadratic").run(adam, curves=True)
    ref = OptaxTrainer(task, lambda lr: programs.as_optax(adam, lr)).run(curves=True)
    np.testing.assert_allclose(mine.valid_losses, ref.valid_losses, rtol=1e-4)
    np.testing.assert_allclose(mine.train_losses, ref.train_losses, rtol=1e-4)
    np.testing.assert_allclose(mine.initial_valid_losses, ref.initial_valid_losses, rtol=1e-6)
    from tasks import optax_loop
    losses, valid = optax_loop.train(task, programs.as_optax(adam, float(mine.lrs[1])), 0)
    np.testing.assert_allclose(mine.train_losses[1, 0], losses, rtol=1e-4)
    np.testing.assert_allclose(mine.valid_losses[1, 0], valid, rtol=1e-4)


def test_scores_are_normalised_against_tuned_adam(evaluator):
    ev = evaluator.evaluate(CANDIDATE)
    for s in ev.scores:
        base = evaluator.baseline(s.task)
        assert s.score == normalized_score(s.loss, base.loss, base.initial_loss)  # one seed
        run = evaluator.run(CANDIDATE, s.task, lrs=[s.lr] * evaluator.lr_grid)
        assert s.loss == pytest.approx(run.valid_losses[0, 0], rel=1e-6)
        tuned = evaluator.tune(CANDIDATE, s.task)
        assert s.loss == pytest.approx(np.nanmin(tuned.losses.mean(axis=1)))
    assert ev.aggregate == pytest.approx(np.median([s.score for s in ev.scores]))


def test_contract_errors_are_value_errors(evaluator):
    with pytest.raises(ValueError, match="unknown task"):
        Evaluator(["no_such_task"])
    body = "\n".join("    x = x * 0.5" for _ in range(40))
    too_big = parse(f"def big(g, lr):\n    x = g * lr\n{body}\n    return x\n")
    with pytest.raises(ValueError, match="bucket"):
        evaluator.evaluate(too_big)


def test_evaluation_round_trips_through_json(evaluator):
    ev = evaluator.evaluate(DIVERGING)
    text = json.dumps(ev.to_dict(), allow_nan=False)
    back = Evaluation.from_dict(json.loads(text))
    assert back.aggregate == ev.aggregate and back.status == ev.status
    assert [s.task for s in back.scores] == list(TASKS)
    assert all(math.isnan(s.loss) for s in back.scores)
    ok = TaskScore("t", -0.25, 0.5, 0.01, "ok")
    assert TaskScore.from_dict(json.loads(json.dumps(ok.to_dict()))) == ok


def test_module_function_reuses_the_cached_evaluator(evaluator):
    with CompileCounter() as counter:
        ev = evaluate(CANDIDATE, list(TASKS))
    assert counter.count == 0
    assert [s.score for s in ev.scores] == [s.score for s in evaluator.evaluate(CANDIDATE).scores]


def test_lr_grid_is_half_decades_around_the_default():
    np.testing.assert_allclose(lr_grid(0.01, 3), [0.01 / 10 ** 0.5, 0.01, 0.01 * 10 ** 0.5],
                               rtol=1e-6)
    assert len(lr_grid(1.0, 1)) == 1 and lr_grid(1.0, 1)[0] == 1.0
    g = lr_grid(0.1, 4)
    np.testing.assert_allclose(g[1:] / g[:-1], 10 ** 0.5, rtol=1e-5)
    np.testing.assert_allclose(np.sqrt(g[0] * g[-1]), 0.1, rtol=1e-5)


def test_the_first_task_is_a_hurdle_that_stops_or_passes_without_changing_scores(evaluator):
    plain = evaluator.evaluate(CANDIDATE)
    first = plain.scores[0]
    passed = evaluator.evaluate(CANDIDATE, hurdle=first.score)  # at the hurdle: passes
    assert passed.scores == plain.scores and passed.aggregate == plain.aggregate
    assert passed.hurdle == Hurdle(TASKS[0], first.score, first.score, True, False)

    stopped = evaluator.evaluate(CANDIDATE, hurdle=first.score - 1e-3)
    assert stopped.status == REJECTED and stopped.aggregate == REJECTED_SCORE
    assert stopped.scores == (first,)  # the first task alone, as scored without a hurdle
    assert not stopped.hurdle.passed and stopped.interval is None

    audited = evaluator.evaluate(CANDIDATE, hurdle=first.score - 1e-3, audit=True)
    assert audited.scores == plain.scores and audited.status == plain.status
    assert audited.hurdle == Hurdle(TASKS[0], first.score, first.score - 1e-3, False, True)

    diverging = evaluator.evaluate(DIVERGING, hurdle=10.0)  # not ok on the first task: stops
    assert diverging.status == REJECTED and not diverging.hurdle.passed


def test_correct_programs_on_real_tasks_score_without_any_error():
    """An engine bug becomes a per-task ``error`` (a candidate's failure is data), so a broken
    engine would look like a search of bad candidates: correct programs on real search tasks
    must give no per-task error, no failed evaluation, and a finite score."""
    from discover.records import OK

    evaluator = cached_evaluator(("digits_mlp_s", "kjv_bag_of_words_s"))
    for name in ("adam", "lion", "sgd", "lookahead"):
        evaluation = evaluator.evaluate(programs.BASELINES[name])
        assert evaluation.status == OK, (name, evaluation)
        for score in evaluation.scores:
            assert score.status == OK and math.isfinite(score.score), (name, score)
