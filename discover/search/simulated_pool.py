"""A pool of simulated workers: made-up scores at once, for measuring the driver alone.

``SimulatedPool(spec, workers)`` implements the campaign's pool interface
(``discover.search.pool.Pool``) without training anything: a job's result is made up from a hash of
its program text (deterministic: the same program always scores the same, as a real
evaluation does), returned at once or after a drawn delay (``seconds``: each job takes
``seconds * Exp(1)`` of simulated time; ``wait`` sleeps until the first is due).  Hurdles and
the funnel act as the real workers' do: a child whose first-task score is above the hurdle
stops there (``rejected``); one whose search score passes the funnel's threshold is scored on
the held-out tasks too.  No job fails.  ``scripts/bench_driver.py`` drives campaigns with it;
the tests use it where what is measured is the campaign, not the evaluation.

``SleepingWorker`` is the same made-up evaluation as a Ray actor that sleeps ``seconds`` a job
instead of training (``RayPool(spec, n, worker=SleepingWorker, worker_cpus=0,
worker_args=(seconds,))``): the real pool, Ray's scheduling and transport included, with
hundreds of actors on one machine (``scripts/bench_driver.py --ray``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import heapq
import itertools
import time

import numpy as np

from discover.records import (
    OK,
    REJECTED,
    REJECTED_SCORE,
    Evaluation,
    Hurdle,
    JobResult,
    TaskScore,
)
from discover.search.pool import Job, WorkerSpec


def made_up_evaluation(program: str, task_names, salt: bytes = b"") -> Evaluation:
    """Scores in [-0.3, 0.9] per task, from the program text's hash; the median over tasks."""
    digest = hashlib.sha256(salt + program.encode()).digest()
    scores = tuple(TaskScore(name, round(digest[i % 32] / 255 * 1.2 - 0.3, 4),
                             0.1 + digest[i % 32] / 255, 0.01, OK)
                   for i, name in enumerate(task_names))
    return Evaluation(scores, float(np.median([s.score for s in scores])), OK, 0.0)


def made_up_result(spec: WorkerSpec, job: Job, seconds: float, worker: str) -> JobResult:
    """``job``'s made-up result as a worker of ``spec`` would return it: the hurdle (a child
    above it stops after the first task) and the funnel (held-out tasks when the search score
    passes the job's threshold) act as the real workers' do."""
    search = made_up_evaluation(job.program, spec.tasks)
    if job.hurdle is not None:
        first = search.scores[0]
        met = Hurdle(first.task, first.score, job.hurdle, first.score <= job.hurdle, job.audit)
        if not met.passed and not job.audit:
            return JobResult(Evaluation((first,), REJECTED_SCORE, REJECTED, 0.0, hurdle=met),
                             None, seconds, 0.0, worker)
        search = dataclasses.replace(search, hurdle=met)
    held = None
    if spec.held_out_tasks and (job.threshold is None or search.aggregate <= job.threshold):
        held = made_up_evaluation(job.program, spec.held_out_tasks, b"held")
    return JobResult(search, held, seconds, 0.0, worker)


class SleepingWorker:
    """A stand-in for ``discover.search.pool.EvaluationWorker`` (the same constructor and
    methods) that compiles nothing and sleeps ``seconds`` a job; its result is
    :func:`made_up_result`.  ``start_seconds``: how long ``ready`` sleeps, as a real worker
    compiles before its first job.  Imports no JAX: hundreds fit on one machine."""

    def __init__(self, spec: WorkerSpec, name: str = "sleeping", memory_mb: int | None = None,
                 share: tuple[int, int] = (0, 1), seconds: float = 1.0,
                 start_seconds: float = 0.0):
        self.spec, self.name, self.seconds = spec, name, float(seconds)
        self.start_seconds = float(start_seconds)
        self.busy_seconds, self.jobs = 0.0, 0

    def ready(self) -> dict:
        import os
        import socket

        time.sleep(self.start_seconds)
        return {"worker": self.name, "pid": os.getpid(), "node": socket.gethostname(),
                "warm_up_seconds": self.start_seconds}

    def evaluate(self, job: Job) -> JobResult:
        start = time.perf_counter()
        time.sleep(self.seconds)
        result = made_up_result(self.spec, job, time.perf_counter() - start, self.name)
        self.busy_seconds += time.perf_counter() - start
        self.jobs += 1
        return result

    def stats(self) -> dict:
        return {"worker": self.name, "busy_seconds": self.busy_seconds, "jobs": self.jobs}


class SimulatedPool:
    """``workers`` simulated workers (see the module docstring)."""

    eval_timeout = None
    broken = None
    lost = requeued = timeouts = 0
    warm_up_seconds = 0.0

    def __init__(self, spec: WorkerSpec, workers: int, *, seconds: float = 0.0, seed: int = 0):
        self.spec = spec
        self.size = self.limit = int(workers)
        self.seconds = float(seconds)
        self.where = f"simulated ({workers} workers)"
        self._rng = np.random.default_rng(seed)
        self._due: list[tuple[float, int, Job]] = []  # (due time, order, job)
        self._order = itertools.count()
        self.submitted = 0

    def configure(self, workers, eval_timeout) -> None:
        if workers is not None:
            self.limit = min(self.size, int(workers))

    def idle(self) -> int:
        return self.limit - len(self._due)

    def busy(self) -> int:
        return len(self._due)

    def submit(self, job: Job) -> None:
        delay = self.seconds * float(self._rng.exponential()) if self.seconds > 0 else 0.0
        heapq.heappush(self._due, (time.monotonic() + delay, next(self._order), job))
        self.submitted += 1

    def wait(self, timeout: float | None = None) -> list[tuple[Job, JobResult]]:
        if not self._due:
            return []
        first = self._due[0][0] - time.monotonic()
        if first > 0:
            if timeout is not None and first > timeout:
                time.sleep(timeout)
                return []
            time.sleep(first)
        now, done = time.monotonic(), []
        while self._due and self._due[0][0] <= now:
            _, _, job = heapq.heappop(self._due)
            done.append((job, self.result(job)))
        return done

    def result(self, job: Job) -> JobResult:
        return made_up_result(self.spec, job, 0.0, "simulated")

    def take_events(self) -> list[dict]:
        return []

    def pending(self) -> list[Job]:
        return [job for _, _, job in sorted(self._due)]

    def drop_pending(self) -> list[Job]:
        jobs = self.pending()
        self._due.clear()
        return jobs

    def close(self) -> None:
        self._due.clear()
