"""discover.scoring.baseline_cache: tuned adam read back from disk is the tuning the engine computes,
a worker that reads it trains nothing, and a stale, corrupt or disabled cache is never used."""

from __future__ import annotations

import os

import numpy as np
import pytest

import programs
import tasks
from discover.scoring import baseline_cache
from discover.scoring.evaluate import Evaluator
from discover.scoring.tuning import Tuning

ADAM = programs.BASELINES["adam"]


def files(folder) -> list[str]:
    return sorted(f for f in os.listdir(folder) if f.endswith(".json"))


def test_a_second_evaluator_reads_adam_from_disk_and_trains_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv(baseline_cache.ENV, "")  # the reference: computed, cache off
    reference = Evaluator(["logistic"], seeds=(0, 1)).baseline("logistic")
    monkeypatch.setenv(baseline_cache.ENV, str(tmp_path))
    first = Evaluator(["logistic"], seeds=(0, 1))
    first.baseline("logistic")
    assert len(files(tmp_path)) == 1
    second = Evaluator(["logistic"], seeds=(0, 1))
    cached = second.baseline("logistic")
    assert second.trainer("logistic", ADAM).compiled._cache_size() == 0  # nothing trained
    np.testing.assert_array_equal(cached.tuning.losses, reference.tuning.losses)
    assert (cached.tuning.best, cached.tuning.exponents, cached.lr, cached.loss) == (
        reference.tuning.best, reference.tuning.exponents, reference.lr, reference.loss)
    np.testing.assert_array_equal(cached.seed_scores, reference.seed_scores)
    # warm_up still compiles the candidates' run, so that evaluating compiles nothing
    second.warm_up()
    assert second.trainer("logistic").compiled._cache_size() == 1
    sgd = programs.BASELINES["sgd"]
    assert second.evaluate(sgd).aggregate == first.evaluate(sgd).aggregate


def test_other_seeds_or_another_task_size_miss(tmp_path, monkeypatch):
    monkeypatch.setenv(baseline_cache.ENV, str(tmp_path))
    task = tasks.get("logistic")
    initial = [0.69, 0.70]
    base = baseline_cache.key(task, (0, 1), 3, str(ADAM), initial)
    from tasks import logistic

    shorter = logistic.make(steps=task.steps // 2)
    assert shorter.name == task.name
    for other in (baseline_cache.key(task, (0, 2), 3, str(ADAM), initial),
                  baseline_cache.key(shorter, (0, 1), 3, str(ADAM), initial),
                  baseline_cache.key(task, (0, 1), 3, str(ADAM), [0.69, 0.71]),
                  baseline_cache.key(task, (0, 1), 2, str(ADAM), initial)):
        assert other != base
    Evaluator(["logistic"], seeds=(0, 1)).baseline("logistic")
    Evaluator(["logistic"], seeds=(0, 2)).baseline("logistic")
    assert len(files(tmp_path)) == 2


def test_a_corrupt_entry_is_a_miss_and_is_replaced(tmp_path, monkeypatch):
    monkeypatch.setenv(baseline_cache.ENV, str(tmp_path))
    Evaluator(["quadratic"]).baseline("quadratic")
    (name,) = files(tmp_path)
    (tmp_path / name).write_text('{"key": {"version": 1}, "tuning": ')  # cut short
    again = Evaluator(["quadratic"])
    baseline = again.baseline("quadratic")
    assert again.trainer("quadratic", ADAM).compiled._cache_size() == 1  # trained again
    assert baseline.loss < baseline.initial_loss
    assert baseline_cache.load(baseline_cache.key(
        tasks.get("quadratic"), (0,), 3, str(ADAM),
        again.trainer("quadratic").initial_valid_losses())) is not None  # rewritten whole


@pytest.mark.parametrize("value", ["", "/proc/no-such-place/baselines"])
def test_an_empty_or_uncreatable_directory_turns_it_off(value, monkeypatch):
    monkeypatch.setenv(baseline_cache.ENV, value)
    assert baseline_cache.directory() is None
    key = baseline_cache.key(tasks.get("quadratic"), (0,), 3, str(ADAM), [1.0])
    tuning = Tuning((-1, 0, 1), (0.1, 0.2, 0.3), np.array([[2.0], [1.0], [np.nan]]), 1, False, 1)
    baseline_cache.store(key, tuning)  # writes nothing
    assert baseline_cache.load(key) is None


def test_a_tuning_round_trips_through_json_with_its_diverged_runs():
    import json
    import math

    for best in (1, None):
        tuning = Tuning((-2, -1, 0), (0.01, 0.0316, 0.1),
                        np.array([[1.5, 1.25], [0.75, math.nan], [math.inf, 2.0]]), best,
                        True, 2)
        text = json.dumps(tuning.to_json(), allow_nan=False)  # NaN and inf: null
        back = Tuning.from_json(json.loads(text))
        assert (back.exponents, back.lrs, back.best, back.at_limit, back.windows) == (
            tuning.exponents, tuning.lrs, best, True, 2)
        expected = np.where(np.isfinite(tuning.losses), tuning.losses, np.nan)
        np.testing.assert_array_equal(back.losses, expected)
    with pytest.raises(KeyError):
        Tuning.from_json({"exponents": [0]})
