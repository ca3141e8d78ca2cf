"""Evaluation workers: long-lived Ray actors (or one in-process worker for debugging).

Contract:

* :class:`EvaluationWorker` holds the compiled evaluators of one process (search tasks and,
  when there are any, held-out tasks), built and warmed up once when the worker starts.
  ``evaluate(job)`` never raises for a bad candidate: the result says ``status``.
* A pool (:class:`RayPool` or :class:`SerialPool`) runs one job per worker at a time:
  ``submit(job)`` when ``idle() > 0``; ``wait(timeout)`` returns the finished
  ``(job, result)`` pairs (possibly none on a timeout).  A job is a dict with ``seq``,
  ``program`` (text) and ``threshold`` (the funnel: held-out tasks run when the search score is
  at most this).  A result is a dict: ``search`` and ``held_out`` (summaries, the second None
  when the funnel did not pass), ``seconds`` spent in the worker, ``worker``.
* Ray actors take one CPU each and run JAX on one thread: the thread settings are in the
  actor's ``runtime_env`` so they hold before JAX is imported in the actor process.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
import warnings
from typing import Any

ACTOR_ENV = {
    # One XLA CPU thread per actor: the cluster's CPUs are shared out one per actor.
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "TF_NUM_INTEROP_THREADS": "1",
    "TF_NUM_INTRAOP_THREADS": "1",
    "JAX_PLATFORMS": "cpu",
}


@dataclasses.dataclass(frozen=True)
class WorkerSpec:
    """What a worker compiles: same spec, same scores."""

    tasks: tuple[str, ...]
    held_out_tasks: tuple[str, ...] = ()
    seeds: tuple[int, ...] = (0,)
    lr_grid: int = 3
    max_statements: int = 20
    max_slots: int = 4

    @classmethod
    def from_config(cls, config) -> WorkerSpec:
        """The spec of a campaign configuration whose task lists are resolved."""
        return cls(tuple(config.tasks), tuple(config.held_out_tasks or ()),
                   tuple(config.eval_seeds), config.lr_grid, config.max_statements,
                   config.max_slots)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def summarize(evaluation) -> dict:
    """JSON summary of a ``discover.evaluate.Evaluation``: aggregate score, status, seconds and
    per task ``{score, loss, lr, status}``."""
    scores = evaluation.scores
    items = scores.values() if isinstance(scores, dict) else scores
    return {
        "score": _finite(evaluation.aggregate),
        "status": evaluation.status,
        "seconds": evaluation.seconds,
        "tasks": {s.task: {"score": _finite(s.score), "loss": _finite(s.loss),
                           "lr": _finite(s.lr), "status": s.status} for s in items},
    }


def _finite(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


class EvaluationWorker:
    """The evaluators of one process; compiles everything in ``__init__``."""

    def __init__(self, spec: WorkerSpec, name: str = "serial"):
        # Imported here, after the actor's environment is set.  The process-wide cached
        # evaluators: a serial campaign resumed in the same process compiles nothing again.
        from discover.evaluate import cached_evaluator

        self.spec = spec
        self.name = name
        start = time.perf_counter()
        kwargs = {"seeds": spec.seeds, "lr_grid": spec.lr_grid,
                  "max_statements": spec.max_statements, "max_slots": spec.max_slots}
        self.search = cached_evaluator(list(spec.tasks), **kwargs).warm_up()
        self.held_out = None
        if spec.held_out_tasks:
            self.held_out = cached_evaluator(list(spec.held_out_tasks), **kwargs).warm_up()
        self.warm_up_seconds = time.perf_counter() - start
        self.busy_seconds = 0.0

    def ready(self) -> dict:
        """Returns once compiled: name, pid and compile seconds."""
        return {"worker": self.name, "pid": os.getpid(), "warm_up_seconds": self.warm_up_seconds}

    def evaluate(self, job: dict) -> dict:
        import programs

        start, cpu = time.perf_counter(), time.process_time()
        try:
            program = programs.parse(job["program"])
        except programs.ProgramError as err:
            failed = {"score": None, "status": "failed", "seconds": 0.0, "tasks": {},
                      "error": str(err)}
            return {"search": failed, "held_out": None, "seconds": 0.0, "cpu_seconds": 0.0,
                    "worker": self.name}
        try:
            search = summarize(self.search.evaluate(program))
        except ValueError as err:  # does not fit the compiled bucket (statements, slots)
            search = {"score": None, "status": "failed", "seconds": 0.0, "tasks": {},
                      "error": str(err)}
        held_out = None
        threshold = job.get("threshold")
        if (self.held_out is not None and search["status"] == "ok"
                and search["score"] is not None
                and (threshold is None or search["score"] <= threshold)):
            held_out = summarize(self.held_out.evaluate(program))
        seconds = time.perf_counter() - start
        self.busy_seconds += seconds
        # CPU time of this process while evaluating: below ``seconds`` when the actor had to
        # share its core (a loaded machine), which the benchmark reports.
        return {"search": search, "held_out": held_out, "seconds": seconds,
                "cpu_seconds": time.process_time() - cpu, "worker": self.name}

    def stats(self) -> dict:
        return {"worker": self.name, "busy_seconds": self.busy_seconds}


def failed_result(job: dict, error: str, worker: str) -> dict:
    """The result of a job whose worker crashed twice: a failed evaluation, as data."""
    return {"search": {"score": None, "status": "failed", "seconds": 0.0, "tasks": {},
                       "error": error},
            "held_out": None, "seconds": 0.0, "cpu_seconds": 0.0, "worker": worker}


class SerialPool:
    """One in-process worker, evaluating each job when ``wait`` is called (debugging)."""

    def __init__(self, spec: WorkerSpec):
        self.spec = spec
        self.size = 1
        self.worker = EvaluationWorker(spec, "serial")
        self.warm_up_seconds = self.worker.warm_up_seconds
        self._jobs: list[dict] = []
        self.limit = 1

    def idle(self) -> int:
        return self.limit - len(self._jobs)

    def busy(self) -> int:
        return len(self._jobs)

    def submit(self, job: dict) -> None:
        assert self.idle() > 0, "submit needs an idle worker"
        self._jobs.append(job)

    def wait(self, timeout: float | None = None) -> list[tuple[dict, dict]]:
        if not self._jobs:
            return []
        job = self._jobs.pop(0)
        return [(job, self.worker.evaluate(job))]

    def pending(self) -> list[dict]:
        return list(self._jobs)

    def drop_pending(self) -> list[dict]:
        jobs, self._jobs = self._jobs, []
        return jobs

    def busy_seconds(self) -> float:
        return self.worker.busy_seconds

    def close(self) -> None:
        self._jobs = []


class RayPool:
    """``size`` Ray actors, one CPU each, each compiled once; jobs go to idle actors and
    results come back through ``ray.wait`` as they finish.  ``limit`` (<= size) caps how many
    actors get work (a campaign may use fewer workers than a shared pool has)."""

    RETRIES = 1  # a job whose actor died is tried once more, then recorded as failed

    def __init__(self, spec: WorkerSpec, size: int):
        import ray

        if not ray.is_initialized():
            raise RuntimeError("RayPool needs ray.init() first")
        self.spec = spec
        self.size = size
        self.limit = size
        actor_class = ray.remote(num_cpus=1, max_restarts=2,
                                 runtime_env={"env_vars": ACTOR_ENV})(EvaluationWorker)
        self.actors = [actor_class.remote(spec, f"actor-{i}") for i in range(size)]
        start = time.perf_counter()
        infos = ray.get([a.ready.remote() for a in self.actors])
        self.warm_up_seconds = time.perf_counter() - start
        self.worker_warm_up = [i["warm_up_seconds"] for i in infos]
        self._idle = list(range(size))
        self._running: dict[Any, tuple[int, dict, int]] = {}  # ref -> (actor, job, attempt)

    def idle(self) -> int:
        return max(0, self.limit - len(self._running))

    def busy(self) -> int:
        return len(self._running)

    def submit(self, job: dict, attempt: int = 0) -> None:
        assert self.idle() > 0 and self._idle, "submit needs an idle worker"
        index = self._idle.pop(0)
        ref = self.actors[index].evaluate.remote(job)
        self._running[ref] = (index, job, attempt)

    def wait(self, timeout: float | None = None) -> list[tuple[dict, dict]]:
        import ray

        if not self._running:
            return []
        ready, _ = ray.wait(list(self._running), num_returns=1, timeout=timeout)
        # Take every other result that is already done too, without waiting.
        if ready and len(self._running) > 1:
            more, _ = ray.wait([r for r in self._running if r not in ready],
                               num_returns=len(self._running) - len(ready), timeout=0)
            ready += more
        done = []
        for ref in ready:
            index, job, attempt = self._running.pop(ref)
            self._idle.append(index)
            try:
                done.append((job, ray.get(ref)))
            except ray.exceptions.RayError as err:
                if attempt < self.RETRIES:
                    self.submit(job, attempt + 1)
                else:
                    message = str(err).strip().splitlines()[0] if str(err).strip() else "error"
                    done.append((job, failed_result(job, f"{type(err).__name__}: {message}",
                                                    f"actor-{index}")))
        return done

    def pending(self) -> list[dict]:
        return [job for _, job, _ in self._running.values()]

    def drop_pending(self) -> list[dict]:
        """Forget what is running (the campaign is stopping); returns those jobs."""
        # Not ray.cancel: interrupting JAX mid-run could leave a shared actor broken.  The
        # actor finishes the abandoned job and takes its next one after it.
        jobs = self.pending()
        for ref in list(self._running):
            self._idle.append(self._running.pop(ref)[0])
        return jobs

    def busy_seconds(self) -> float:
        import ray

        return sum(s["busy_seconds"] for s in ray.get([a.stats.remote() for a in self.actors]))

    def close(self) -> None:
        import ray

        self.drop_pending()
        for actor in self.actors:
            ray.kill(actor)
        self.actors = []


def init_ray(address: str | None) -> bool:
    """Start or join Ray unless it is up already; True when this call started it.

    ``address`` None: RAY_ADDRESS when set, else a local instance using every core; "auto" or
    HOST:PORT joins an existing cluster."""
    import logging

    import ray

    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING,
                              "log_to_driver": True}
    if address is None:
        address = os.environ.get("RAY_ADDRESS") or None
    with warnings.catch_warnings():
        # JAX warns on any os.fork() once it has run in this process; Ray forks only through
        # subprocess, which execs at once, so no JAX state is shared with the child.
        warnings.filterwarnings("ignore", message="os.fork", category=RuntimeWarning)
        ray.init(address=address, **kwargs)
    return True


def cluster_cpus() -> int:
    import ray

    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def make_pool(spec: WorkerSpec, workers: int) -> SerialPool | RayPool:
    """``workers`` 0: the serial in-process pool; else that many Ray actors."""
    if workers == 0:
        return SerialPool(spec)
    return RayPool(spec, workers)


def check_spec(pool, spec: WorkerSpec) -> None:
    """A pool reused by another campaign must have compiled the same evaluators."""
    if pool.spec != spec:
        raise ValueError(f"pool evaluators {pool.spec} differ from the campaign's {spec}")

