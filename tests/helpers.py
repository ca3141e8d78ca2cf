"""The tests' shared helpers: paths, ``discover`` as a subprocess, polling with a deadline,
and made-up evaluation results in the record schema (``discover.records``).

pytest puts this directory on ``sys.path`` (its default "prepend" import mode), so test
modules import it as ``helpers``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import signal
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
"""The repository's root."""
DISCOVER = os.path.join(os.path.dirname(sys.executable), "discover")
"""The ``discover`` command of the environment running the tests."""


READY = re.compile(r"discover: \d+ worker\(s\) ready (on|in)\b")
"""The line a campaign prints once every worker has compiled."""


class Driver:
    """``discover ARGS`` in a subprocess; ``ready`` is set once its workers are compiled.
    ``env``: the environment (default: this one, unbuffered, without RAY_ADDRESS)."""

    def __init__(self, args: list[str], env: dict | None = None):
        if env is None:
            env = dict(os.environ, PYTHONUNBUFFERED="1")
            env.pop("RAY_ADDRESS", None)
        self.process = subprocess.Popen([DISCOVER, *args], stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
        self.ready = threading.Event()
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stderr:
            self.lines.append(line)
            if READY.match(line):  # not the "n of N worker(s) ready after ..." progress
                self.ready.set()

    def output(self) -> str:
        return "".join(self.lines)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)


def wait_until(condition, seconds: float, what: str) -> None:
    """Poll ``condition`` until it is true; AssertionError naming ``what`` after ``seconds``."""
    end = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {seconds:g} s waiting for {what}")
        time.sleep(0.2)


def job_result(score: float | None, held_out: float | None = None, *, status: str = "ok",
               task: str = "quadratic", held_out_task: str = "digits_cnn",
               worker: str = "made-up"):
    """A worker's result with made-up scores (no training): one search task scored ``score``
    (None: nothing scored, as a failed evaluation) and, when ``held_out`` is given, one
    held-out task."""
    from discover.records import Evaluation, JobResult, TaskScore

    def evaluation(value, name):
        if value is None:
            return Evaluation.failed("made up", "failed" if status == "ok" else status)
        return Evaluation((TaskScore(name, value, 1.0, 0.1, "ok"),), value, status, 0.0)

    held = None if held_out is None else evaluation(held_out, held_out_task)
    return JobResult(evaluation(score, task), held, 0.01, 0.01, worker)


def logged(child, result, time: float = 0.0):
    """The log record of ``child`` (a ``discover.search.individual.Individual``) and ``result``."""
    from discover.records import LogRecord

    return LogRecord.from_result(child.seq, str(child.program), child.fingerprint, child.parent,
                                 child.mutation, result, time)


class StandInPool:
    """The pool interface (``discover.search.pool.Pool``) with made-up, deterministic results: each
    task's score is drawn from the program text's hash (no training), every ``fail_every``-th
    job fails.  For tests of what a campaign writes (report, ``best/``), not of evaluation."""

    size = limit = 1
    eval_timeout = None
    broken = None
    lost = requeued = timeouts = 0
    where = "here (stand-in)"

    def __init__(self, spec, fail_every: int = 4):
        self.spec = spec
        self.fail_every = fail_every
        self.jobs: list = []
        self.warm_up_seconds = 0.0

    def configure(self, workers, eval_timeout) -> None:
        pass

    def idle(self) -> int:
        return self.limit - len(self.jobs)

    def submit(self, job) -> None:
        self.jobs.append(job)

    def wait(self, timeout=None):
        jobs, self.jobs = self.jobs, []
        return [(job, self.result(job)) for job in jobs]

    def take_events(self) -> list[dict]:
        return []

    def drop_pending(self):
        jobs, self.jobs = self.jobs, []
        return jobs

    def close(self) -> None:
        pass

    def evaluation(self, program: str, task_names):
        import tasks
        from discover.records import Evaluation, TaskScore
        from tasks.train import lr_grid

        digest = hashlib.sha256(program.encode()).digest()
        scores = []
        for i, name in enumerate(task_names):
            grid = lr_grid(tasks.get(name).default_lr, self.spec.lr_grid)
            score = round(digest[i] / 255 * 1.2 - 0.3, 4)
            scores.append(TaskScore(name, score, 0.1 + score, float(grid[digest[i] % 2]), "ok"))
        return Evaluation(tuple(scores), sum(t.score for t in scores) / len(scores), "ok", 0.01)

    def result(self, job):
        from discover.records import Evaluation, JobResult

        seconds = 0.05 + 0.001 * job.seq
        if self.fail_every and job.seq % self.fail_every == self.fail_every - 1:
            return JobResult(Evaluation.failed("stand-in failure"), None, seconds, seconds,
                             "w0")
        search = self.evaluation(job.program, self.spec.tasks)
        if job.hurdle is not None:  # the first task is the hurdle, as in discover.scoring.evaluate
            from discover.records import REJECTED, REJECTED_SCORE, Hurdle

            first = search.scores[0]
            met = Hurdle(first.task, first.score, job.hurdle, first.score <= job.hurdle,
                         job.audit)
            if not met.passed and not job.audit:
                return JobResult(Evaluation((first,), REJECTED_SCORE, REJECTED, 0.01,
                                            hurdle=met), None, seconds / 4, seconds / 4,
                                 f"w{job.seq % 2}")
            search = dataclasses.replace(search, hurdle=met)
        held = None
        if search.aggregate <= job.threshold:
            held = self.evaluation(job.program[::-1], self.spec.held_out_tasks)
        return JobResult(search, held, seconds, seconds, f"w{job.seq % 2}")


def optax_scan(tx, params, gradient, xs, record=None):
    """Run the optax transformation ``tx`` from ``params`` for ``len(xs)`` steps in one jitted
    ``lax.scan``: at step ``k`` the gradient is ``gradient(params, xs[k])``, then the update is
    applied.  Returns ``record(params, state, g)`` after every step, stacked (default: the
    params).  The reference loop of the engine and baseline tests (the export tests run their
    own, in a fresh process per target)."""
    import jax
    import optax

    record = record or (lambda p, state, g: p)

    def step(carry, x):
        p, state = carry
        g = gradient(p, x)
        updates, state = tx.update(g, state, p)
        p = optax.apply_updates(p, updates)
        return (p, state), record(p, state, g)

    @jax.jit
    def run(p, xs):
        return jax.lax.scan(step, (p, tx.init(p)), xs)[1]

    return run(params, xs)


def assert_close_to_scale(actual, expected, rtol: float, what: str = "") -> None:
    """``|actual - expected| <= rtol * max|expected|`` over the whole array (elementwise
    relative error means nothing for values that cancel to ~0); NaN and Inf must match."""
    import numpy as np

    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    finite = np.isfinite(expected)
    np.testing.assert_array_equal(actual[~finite], expected[~finite], f"{what}: NaN/Inf differ")
    scale = max(np.max(np.abs(expected[finite]), initial=0.0), 1e-30)
    err = np.max(np.abs(actual[finite] - expected[finite]), initial=0.0) / scale
    assert err <= rtol, f"{what}: error {err:.3g} of the scale > {rtol}"
