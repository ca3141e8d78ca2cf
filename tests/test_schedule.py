"""Schedules applied outside the program (``tasks/schedule.py``), task variants
(``tasks.variant``) and ``discover bench --schedule``: checked against optax."""

from __future__ import annotations

import json

import jax
import numpy as np
import optax
import pytest

import programs
import tasks
from discover import cli
from discover.scoring import bench
from tasks import schedule
from tasks.train import OptaxTrainer, Trainer

TASK = "logistic"  # cheap, and adam's schedule matters on it (checked below)


@pytest.mark.parametrize("T", [1, 7, 10, 100, 123])
def test_warmup_cosine_is_optax_warmup_cosine_decay(T):
    warmup = T // 10
    reference = optax.warmup_cosine_decay_schedule(0.0, 1.0, warmup, T, 0.0)
    expected = np.array([float(reference(c)) for c in range(T)])
    got = schedule.multipliers("warmup_cosine", T, T + 5)
    np.testing.assert_allclose(got[:T], expected, rtol=1e-6, atol=1e-7)
    assert (got[T:] == got[T - 1]).all()  # padding repeats the last step's factor
    assert (schedule.multipliers("constant", T) == 1).all()


def test_unknown_schedule_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown schedule 'cosine'.*warmup_cosine"):
        schedule.multipliers("cosine", 10)
    with pytest.raises(ValueError, match="shorter"):
        schedule.multipliers("constant", 10, 5)


def _scheduled_adam(lr):
    T = tasks.get(TASK).steps
    return optax.chain(optax.scale_by_adam(),
                       optax.scale_by_schedule(optax.warmup_cosine_decay_schedule(
                           0.0, 1.0, T // 10, T, 0.0)),
                       optax.scale(-lr))


def test_a_scheduled_trainer_trains_as_optax_under_the_same_schedule():
    """adam under ``warmup_cosine`` through the engine = optax adam scaled by optax's own
    schedule = the library's adam_warmup_cosine program (its schedule written inside)."""
    task = tasks.get(TASK)
    scheduled = Trainer(task, seeds=(1, 2), schedule="warmup_cosine").run(
        programs.BASELINES["adam"]).valid_losses
    reference = OptaxTrainer(task, _scheduled_adam, seeds=(1, 2)).run().valid_losses
    inside = Trainer(task, seeds=(1, 2), max_statements=48).run(
        programs.BASELINES["adam_warmup_cosine"]).valid_losses
    np.testing.assert_allclose(scheduled, reference, rtol=2e-4)
    np.testing.assert_allclose(scheduled, inside, rtol=2e-4)
    constant = Trainer(task, seeds=(1, 2)).run(programs.BASELINES["adam"]).valid_losses
    assert np.abs(constant - scheduled).max() > 1e-2  # the schedule changed the training


def test_a_variant_changes_only_its_factor():
    base = tasks.get("kjv_gru_s")
    longer = tasks.variant("kjv_gru_s", steps=4)
    assert (longer.name, longer.steps, longer.batch_size) == ("kjv_gru_s.steps4x", 400, 16)
    wider = tasks.variant("kjv_gru_s", width=2, batch=4)
    assert wider.name == "kjv_gru_s.width2x.batch4x" and wider.batch_size == 64
    assert "GRU(64)" in wider.description and "GRU(32)" in base.description
    assert (wider.steps, wider.family, wider.tier) == (base.steps, base.family, base.tier)
    cnn = tasks.variant("digits_cnn_s", width=2)
    assert "conv3x3(8)" in cnn.description and "(16)" in cnn.description
    assert tasks.variant("kjv_gru_s") is base
    leaves = jax.tree.leaves(longer.train_batches(3))
    assert all(np.asarray(x).shape[0] == 400 for x in leaves)  # one batch a step
    with pytest.raises(ValueError, match="no width"):
        tasks.variant("quadratic", width=2)
    with pytest.raises(ValueError, match="positive"):
        tasks.variant("kjv_gru_s", steps=0)


def test_bench_under_a_schedule_is_cached_apart_and_scores_as_optax(tmp_path):
    """``discover bench --schedule warmup_cosine``: adam's tuned losses are the losses of optax
    adam under optax's schedule at the tuned rates; the constant-rate bench sharing the cache
    file reuses none of them."""
    out = tmp_path / "b"
    argv = ["bench", "--tasks", TASK, "--seeds", "1,2", "--baselines", "adam,sgd",
            "--out", str(out)]
    assert cli.main([*argv, "--schedule", "warmup_cosine"]) == 0
    data = json.loads((out / "results.json").read_text())
    assert data["schedule"] == "warmup_cosine"
    assert "warmup_cosine" in (out / "table.md").read_text()
    adam = next(c for c in data["contenders"] if c["name"] == "adam")
    tuning = adam["tunings"][TASK]
    lrs = np.array(tuning["lrs"][:3], np.float32)
    reference = OptaxTrainer(tasks.get(TASK), _scheduled_adam, seeds=(1, 2),
                             lr_grid_size=3).run(lrs=lrs).valid_losses
    np.testing.assert_allclose(np.array(tuning["valid_losses"][:3]), reference, rtol=2e-4)
    scheduled_entries = len(json.loads((out / bench.CACHE_FILE).read_text())["losses"])
    assert cli.main(argv) == 0  # constant rate, same cache file: trained anew
    entries = json.loads((out / bench.CACHE_FILE).read_text())["losses"]
    assert len(entries) > scheduled_entries
    assert any("~warmup_cosine" in k for k in entries)
    assert json.loads((out / "results.json").read_text())["schedule"] == "constant"


def test_bench_refuses_an_unknown_schedule(tmp_path, capsys):
    code = cli.main(["bench", "--tasks", "quadratic", "--schedule", "cosine",
                     "--out", str(tmp_path / "b")])
    assert code != 0
    assert "--schedule: unknown schedule 'cosine'" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_a_campaign_configuration_carries_its_schedule_to_the_workers_evaluators():
    """``schedule = "warmup_cosine"`` in a campaign's configuration reaches the worker's
    evaluator: tuned adam, the reference, is optax adam under optax's schedule at its rate."""
    from discover.config import SCHEDULES, CampaignConfig
    from discover.errors import UserError
    from discover.search.pool import EvaluationWorker, WorkerSpec

    assert SCHEDULES == schedule.SCHEDULES
    with pytest.raises(UserError, match="'schedule' must be one of constant, warmup_cosine"):
        CampaignConfig.from_dict({"schedule": "cosine"})
    config = CampaignConfig(tasks=(TASK,), held_out_tasks=(), schedule="warmup_cosine")
    assert CampaignConfig.from_dict(config.to_dict()).schedule == "warmup_cosine"
    spec = WorkerSpec.from_config(config)
    worker = EvaluationWorker(spec)
    evaluator = worker.search
    assert evaluator.config()["schedule"] == "warmup_cosine"
    baseline = evaluator.baseline(TASK)
    reference = OptaxTrainer(tasks.get(TASK), _scheduled_adam, seeds=(0,),
                             lr_grid_size=3).run(lrs=np.full(3, baseline.lr, np.float32))
    np.testing.assert_allclose(baseline.tuning.best_losses, reference.valid_losses[0],
                               rtol=2e-4)
    constant = EvaluationWorker(WorkerSpec.from_config(config.replace(schedule="constant")))
    assert "schedule" not in constant.search.config()
    assert abs(constant.search.baseline(TASK).loss - baseline.loss) > 1e-3


def test_a_variant_resolves_by_name_and_is_cached_as_a_built_in():
    from tasks import registry

    task = tasks.resolve("digits_cnn_s.width2x.batch4x")
    assert task is tasks.variant("digits_cnn_s", width=2, batch=4)  # one object per variant
    assert registry.is_builtin(task) and task.batch_size == 64
    assert tasks.resolve("digits_mlp_s.steps3x").steps == 600
    with pytest.raises(ValueError, match="in that order"):
        tasks.resolve("digits_cnn_s.batch4x.width2x")
    with pytest.raises(ValueError, match="not a built-in"):
        tasks.resolve("nothing.steps2x")
    with pytest.raises(ValueError, match="unknown task 'digits_cnn_s.wide'"):
        tasks.resolve("digits_cnn_s.wide")
