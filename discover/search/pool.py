"""Evaluation workers and the pool interface the campaign drives; the serial pool.

Contract:

* :class:`EvaluationWorker` holds the compiled evaluators of one process (search tasks and,
  when there are any, held-out tasks), built and warmed up once when the worker starts.
  :meth:`EvaluationWorker.evaluate` never raises for a bad candidate: the
  :class:`~discover.records.JobResult` says its status.
* :class:`Pool` is what a campaign needs of its workers; :class:`SerialPool` (one in-process
  worker, for debugging) and ``discover.search.ray_pool.RayPool`` (Ray actors) implement it.  A pool
  runs one :class:`Job` per worker at a time: ``submit(job)`` when ``idle() > 0``;
  ``wait(timeout)`` returns the finished ``(job, result)`` pairs (possibly none on a
  timeout).  A job's ``threshold`` is the funnel: held-out tasks run when the search score is
  at most it, and the upper end of its interval against adam too when the search has two or
  more seeds (None: always, when there are held-out tasks).
* Memory.  Programs are data for an interpreter compiled once per (task, statement bucket,
  slot count): every buffer of an evaluation has a static shape set by the spec, so what a
  candidate does cannot change the memory an evaluation takes, and the spec's sizes are
  bounded by the configuration.  :func:`limit_memory` caps a worker's private memory on top.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import socket
import sys
import time
from collections.abc import Mapping
from typing import Protocol

from discover.records import Evaluation, JobResult
from discover.search import warm_claims

ACTOR_ENV = {
    # One XLA CPU thread per actor: the cluster's CPUs are shared out one per actor.
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false",
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
    held_out_seeds: tuple[int, ...] = (0, 1, 2)
    schedule: str = "constant"
    promotion_seeds: tuple[int, ...] = ()

    @classmethod
    def from_config(cls, config) -> WorkerSpec:
        """The spec of a campaign configuration whose task lists are resolved."""
        return cls(tuple(config.tasks), tuple(config.held_out_tasks or ()),
                   tuple(config.eval_seeds), config.lr_grid, config.max_statements,
                   config.max_slots, tuple(config.held_out_seeds), config.schedule,
                   tuple(config.promotion_seeds))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Job:
    """One candidate to evaluate: its ``seq``, its ``program`` text, the funnel ``threshold``
    (held-out tasks when the search score is at most it; None: always) and the rates per task
    where the tuning walks start (its parent's: ``starts`` on the search tasks,
    ``held_out_starts`` on the held-out ones; None: adam's), and the ``hurdle`` on the first
    search task (None: none) with ``audit`` (scored on every task whatever the hurdle says)."""

    seq: int
    program: str
    threshold: float | None = None
    starts: Mapping[str, float | None] | None = None
    held_out_starts: Mapping[str, float | None] | None = None
    hurdle: float | None = None
    audit: bool = False


def limit_memory(megabytes: int) -> None:
    """Cap this process's private memory (heap and anonymous mappings: ``RLIMIT_DATA``, which
    leaves out Ray's shared object store) at ``megabytes``; an allocation past it fails
    (``MemoryError`` in Python, ``RESOURCE_EXHAUSTED`` in XLA) instead of swapping the node.
    The soft limit only: a hard limit already lower is kept.

    C++ code that fails to allocate aborts; Ray's failure handler would then try to print a
    symbolized stack trace, fail to allocate for it and spin, so ``SIGABRT`` gets its default
    action back: the process dies at once and Ray reports the actor dead."""
    import resource
    import signal

    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    limit = int(megabytes) << 20
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
    try:
        signal.signal(signal.SIGABRT, signal.SIG_DFL)
    except ValueError:  # not the main thread: keep the handler
        pass


def memory_info() -> dict:
    """This process's memory in MB: ``peak_rss`` (high-water mark of the resident set),
    ``rss``, and ``data_limit`` (the ``RLIMIT_DATA`` soft limit, None when unlimited)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    rss = None
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            rss = next((int(line.split()[1]) / 1024 for line in f
                        if line.startswith("VmRSS:")), None)
    except OSError:
        pass
    soft, _ = resource.getrlimit(resource.RLIMIT_DATA)
    return {"peak_rss": usage.ru_maxrss / 1024, "rss": rss,  # ru_maxrss: KB on Linux
            "data_limit": None if soft == resource.RLIM_INFINITY else soft / (1 << 20)}


_LOWERINGS = {"counting": False, "count": 0}
_LOWERING_EVENT = "/jax/core/compile/jaxpr_to_mlir_module_duration"


def count_compilations() -> None:
    """From now on, count in :func:`compilations` every computation this process lowers for
    XLA (each new executable, compiled or loaded from the persistent cache; a call that hits
    JAX's in-memory cache lowers nothing).  Idempotent."""
    if _LOWERINGS["counting"]:
        return
    import jax

    def listener(event: str, duration: float, **kwargs) -> None:
        if event == _LOWERING_EVENT:
            _LOWERINGS["count"] += 1

    jax.monitoring.register_event_duration_secs_listener(listener)
    _LOWERINGS["counting"] = True


def compilations() -> int:
    """Computations lowered since :func:`count_compilations` (0 before it)."""
    return _LOWERINGS["count"]


def _rates(starts: Mapping[str, float | None] | None) -> dict[str, float]:
    return {task: float(lr) for task, lr in (starts or {}).items() if lr is not None}


def _passes(search: Evaluation, threshold: float) -> bool:
    """The funnel's gate: the search score, and the upper end of its interval against adam
    when there is one (two or more seeds), at most ``threshold``."""
    if search.interval is not None and search.interval[1] > threshold:
        return False
    return search.aggregate <= threshold


def promotes(held_out: Evaluation) -> bool:
    """Promotion's gate: the held-out evaluation would crown the candidate (ok, its interval
    against adam below ``-MIN_EFFECT``: ``discover.scoring.final_check.crowned``'s rule)."""
    from discover.scoring.stats import beats

    return held_out.status == "ok" and beats(held_out.interval)


class EvaluationWorker:
    """The evaluators of one process; compiles everything in ``__init__``."""

    def __init__(self, spec: WorkerSpec, name: str = "serial", memory_mb: int | None = None,
                 share: tuple[int, int] = (0, 1)):
        if memory_mb is not None:
            limit_memory(memory_mb)  # before the evaluators allocate anything
        # Imported here, after the actor's environment is set (JAX reads XLA_FLAGS once).
        # The process-wide cached evaluators: a serial campaign resumed in the same process
        # compiles nothing again.
        from discover.scoring import compile_cache
        from discover.scoring.evaluate import cached_evaluator

        cache = compile_cache.enable()  # executables from an earlier start load from disk
        count_compilations()
        self.spec = spec
        self.name = name
        start = time.perf_counter()
        kwargs = {"lr_grid": spec.lr_grid, "max_statements": spec.max_statements,
                  "max_slots": spec.max_slots, "schedule": spec.schedule}
        self.search = cached_evaluator(list(spec.tasks), seeds=spec.seeds, **kwargs)
        self.held_out = self.promotion = None
        if spec.held_out_tasks:
            self.held_out = cached_evaluator(list(spec.held_out_tasks),
                                             seeds=spec.held_out_seeds, **kwargs)
            if spec.promotion_seeds:
                self.promotion = cached_evaluator(list(spec.held_out_tasks),
                                                  seeds=spec.promotion_seeds, **kwargs)
        # Worker ``share[0]`` of ``share[1]`` starting together warms the tasks from its own
        # place in the list, round to the start, and claims each before compiling it
        # (``warm_claims``): a task another worker is compiling is put off to the end and then
        # loaded from the disk caches it wrote, so a cold start of N workers costs about 1/N
        # of the work each instead of all of it.
        work = [(e, t) for e in (self.search, self.held_out, self.promotion) if e is not None
                for t in e.task_names]
        first = (share[0] % share[1]) * len(work) // share[1]
        done = itertools.count(1)

        def warm(item) -> None:
            evaluator, task_name = item
            evaluator.warm_task(task_name)
            i, elapsed = next(done), time.perf_counter() - start
            left = elapsed / i * (len(work) - i)
            # One line a task on stderr (Ray forwards an actor's to the driver's terminal):
            # a first start compiles for minutes, and says what it is doing meanwhile.
            print(f"discover: worker {name}: {task_name} ready ({i}/{len(work)}, "
                  f"{elapsed:.0f} s" + (f"; about {left:.0f} s left)" if i < len(work)
                                        else ")"), file=sys.stderr, flush=True)

        warm_claims.warm_in_turn(work[first:] + work[:first],
                                 key=lambda item: item[0].warm_key(item[1]), warm=warm,
                                 directory=cache and cache.rstrip(os.sep) + "-claims")
        self.warm_up_seconds = time.perf_counter() - start
        self.busy_seconds = 0.0

    def ready(self) -> dict:
        """Returns once compiled: name, pid, host and compile seconds."""
        return {"worker": self.name, "pid": os.getpid(), "node": socket.gethostname(),
                "warm_up_seconds": self.warm_up_seconds}

    def memory(self) -> dict:
        """:func:`memory_info` of this worker's process."""
        return memory_info()

    def compilations(self) -> int:
        """:func:`compilations` of this worker's process since it started compiling."""
        return compilations()

    def evaluate(self, job: Job) -> JobResult:
        """Score ``job``'s program on the search tasks and, when the funnel passes it, on the
        held-out tasks; when that would crown it (:func:`promotes`), again on the held-out
        tasks over the promotion seeds.  A program that does not parse, or does not fit the
        compiled bucket (statements, slots), is a failed evaluation, not an exception."""
        import programs

        start, cpu = time.perf_counter(), time.process_time()
        held_out = promotion = None
        try:
            program = programs.parse(job.program)
            search = self.search.evaluate(program, starts=_rates(job.starts),
                                          hurdle=job.hurdle, audit=job.audit)
        except ValueError as err:  # ProgramError included
            search = Evaluation.failed(str(err))
        else:
            passed = job.threshold is None or _passes(search, job.threshold)
            if self.held_out is not None and search.status == "ok" and passed:
                held_out = self.held_out.evaluate(program, starts=_rates(job.held_out_starts))
                if self.promotion is not None and promotes(held_out):
                    tuned = {s.task: s.lr for s in held_out.scores}
                    promotion = self.promotion.evaluate(program, starts=tuned)
        seconds = time.perf_counter() - start
        self.busy_seconds += seconds
        # CPU time of this process while evaluating: below ``seconds`` when the actor had to
        # share its core (a loaded machine), which the benchmark reports.
        return JobResult(search, held_out, seconds, time.process_time() - cpu, self.name,
                         promotion)

    def stats(self) -> dict:
        return {"worker": self.name, "busy_seconds": self.busy_seconds}


class Pool(Protocol):
    """What a campaign needs of its workers (:class:`SerialPool`, ``RayPool``).

    ``spec``: what every worker compiled; ``size``: workers; ``limit`` (<= size): how many
    get jobs; ``eval_timeout``: seconds a job may run (None: no limit); ``warm_up_seconds``:
    compiling them; ``broken``: None, or why the workers cannot be kept alive (the campaign
    stops); ``lost``, ``requeued``, ``timeouts``: fault counters since the pool started;
    ``where``: where the workers run, for the progress output."""

    spec: WorkerSpec
    size: int
    limit: int
    eval_timeout: float | None
    warm_up_seconds: float
    broken: str | None
    lost: int
    requeued: int
    timeouts: int
    where: str

    def configure(self, workers: int | None, eval_timeout: float | None) -> None:
        """For a pool shared by campaigns: give jobs to at most ``workers`` of its workers
        (None: all) and cancel jobs past ``eval_timeout`` seconds where the pool can."""

    def idle(self) -> int:
        """Jobs that can be submitted now."""

    def busy(self) -> int:
        """Jobs running."""

    def submit(self, job: Job) -> None:
        """Start ``job`` (needs ``idle() > 0``)."""

    def wait(self, timeout: float | None = None) -> list[tuple[Job, JobResult]]:
        """Finished jobs, waiting up to ``timeout`` seconds for the first."""

    def take_events(self) -> list[dict]:
        """Fault events since the last call, one dict each (``event`` names it)."""

    def pending(self) -> list[Job]:
        """Jobs submitted and not finished."""

    def drop_pending(self) -> list[Job]:
        """Forget the pending jobs (the campaign is stopping and saves them); returns them."""

    def busy_seconds(self) -> float:
        """Seconds the workers spent evaluating since they started."""

    def close(self) -> None:
        """Stop the workers."""


class SerialPool:
    """One in-process worker, evaluating each job when ``wait`` is called (debugging).  No
    time limit, no memory cap: it runs in the driver's process, which cannot be killed and
    replaced (``eval_timeout`` is always None here)."""

    broken = None
    lost = requeued = timeouts = 0
    where = "in this process"

    def __init__(self, spec: WorkerSpec):
        self.spec = spec
        self.size = 1
        self.worker = EvaluationWorker(spec, "serial")
        self.warm_up_seconds = self.worker.warm_up_seconds
        self.eval_timeout = None
        self._jobs: list[Job] = []
        self.limit = 1

    def configure(self, workers: int | None, eval_timeout: float | None) -> None:
        """One worker, no timeout (it cannot be killed and replaced)."""

    def idle(self) -> int:
        return self.limit - len(self._jobs)

    def busy(self) -> int:
        return len(self._jobs)

    def submit(self, job: Job) -> None:
        if self.idle() <= 0:
            raise RuntimeError("submit needs an idle worker")
        self._jobs.append(job)

    def wait(self, timeout: float | None = None) -> list[tuple[Job, JobResult]]:
        if not self._jobs:
            return []
        job = self._jobs.pop(0)
        return [(job, self.worker.evaluate(job))]

    def take_events(self) -> list[dict]:
        return []

    def pending(self) -> list[Job]:
        return list(self._jobs)

    def drop_pending(self) -> list[Job]:
        jobs, self._jobs = self._jobs, []
        return jobs

    def busy_seconds(self) -> float:
        return self.worker.busy_seconds

    def close(self) -> None:
        self._jobs = []
