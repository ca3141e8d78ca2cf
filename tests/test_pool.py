"""discover.search.pool: the evaluation worker in this process (failures as data, the funnel) and the
serial pool; both pools against the Pool protocol.  The Ray pool's faults are in
test_faults.py, its campaigns in test_campaign.py and test_cluster.py."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

import programs
from discover.search.pool import EvaluationWorker, Job, Pool, SerialPool, WorkerSpec
from discover.search.ray_pool import RayPool, describe

# The search tasks and bucket of test_evaluate's cached evaluator: compiled once per session.
SPEC = WorkerSpec(("quadratic", "logistic"), held_out_tasks=("quadratic",), max_statements=32,
                  max_slots=4)


@pytest.fixture(scope="module")
def worker():
    return EvaluationWorker(SPEC)


def test_a_program_that_does_not_parse_is_a_failed_evaluation(worker):
    result = worker.evaluate(Job(0, "def f(g, lr):\n    u = frobnicate(g)\n    return u\n"))
    assert result.search.status == "failed" and result.held_out is None
    assert "unknown op 'frobnicate'" in result.search.error and result.search.scores == ()
    assert result.worker == "serial"


def test_a_program_too_long_for_the_bucket_is_a_failed_evaluation(worker):
    body = "".join(f"    u = u * 1.0{i}\n" for i in range(40))
    text = f"def long(g, lr):\n    u = g * lr\n{body}    return u\n"
    result = worker.evaluate(Job(1, text))
    assert result.search.status == "failed" and "the bucket holds 32" in result.search.error


def test_the_funnel_threshold_decides_the_held_out_tasks(worker):
    adam = str(programs.BASELINES["adam"])
    passed = worker.evaluate(Job(2, adam, threshold=0.0))  # adam scores 0: passes at 0
    assert passed.search.aggregate == pytest.approx(0.0, abs=1e-12) and passed.held_out is not None
    assert [s.task for s in passed.held_out.scores] == ["quadratic"]
    assert passed.held_out.aggregate == pytest.approx(0.0, abs=1e-12)
    stopped = worker.evaluate(Job(3, adam, threshold=-0.5))
    assert stopped.search.aggregate == pytest.approx(0.0, abs=1e-12) and stopped.held_out is None
    always = worker.evaluate(Job(4, str(programs.BASELINES["sgd"])))  # threshold None
    assert always.held_out is not None
    assert 0 < always.cpu_seconds and worker.busy_seconds >= always.seconds


def test_with_two_seeds_the_gate_is_the_upper_end_of_the_search_interval():
    """sgd is worse than adam on logistic and quadratic: its median passes a loose threshold,
    but the upper end of its interval must pass it too."""
    two_seeds = EvaluationWorker(dataclasses.replace(SPEC, seeds=(0, 1)))
    sgd = str(programs.BASELINES["sgd"])
    probe = two_seeds.evaluate(Job(5, sgd))
    low, high = probe.search.interval
    assert low <= probe.search.aggregate <= high and high > low
    between = (probe.search.aggregate + high) / 2  # the median passes, the interval does not
    assert two_seeds.evaluate(Job(6, sgd, threshold=between)).held_out is None
    assert two_seeds.evaluate(Job(7, sgd, threshold=high)).held_out is not None


def test_the_serial_pool_runs_one_job_at_a_time(worker, monkeypatch):
    monkeypatch.setattr("discover.search.pool.EvaluationWorker", lambda spec, name: worker)
    pool = SerialPool(SPEC)
    pool.configure(8, eval_timeout=5.0)
    assert (pool.limit, pool.eval_timeout) == (1, None)  # no timeout in the driver
    pool.submit(Job(5, str(programs.BASELINES["lion"])))
    assert pool.idle() == 0 and pool.busy() == 1
    with pytest.raises(RuntimeError, match="idle worker"):
        pool.submit(Job(6, "x"))
    [(job, result)] = pool.wait()
    assert job.seq == 5 and result.search.status == "ok" and pool.wait() == []
    pool.submit(Job(7, "y"))
    assert [j.seq for j in pool.drop_pending()] == [7] and pool.pending() == []


@pytest.mark.parametrize("cls", [SerialPool, RayPool])
def test_both_pools_implement_the_protocol(cls):
    methods = [n for n, v in vars(Pool).items() if inspect.isfunction(v) and not n.startswith("_")]
    assert {"wait", "submit", "configure", "take_events", "close"} <= set(methods)
    for name in methods:
        assert inspect.isfunction(getattr(cls, name, None)), f"{cls.__name__}.{name}"
        theirs = list(inspect.signature(getattr(cls, name)).parameters)
        assert theirs == list(inspect.signature(getattr(Pool, name)).parameters), name
    source = inspect.getsource(cls)
    for attribute in Pool.__annotations__:
        assert (hasattr(cls, attribute) or f"self.{attribute} =" in source
                or f"def {attribute}(" in source), f"{cls.__name__}.{attribute}"


def test_describe_is_one_line():
    assert describe(ValueError("bad value\nmore detail")) == "ValueError: bad value"
    assert describe("already a line") == "already a line"
    assert describe(RuntimeError("")) == "RuntimeError"
