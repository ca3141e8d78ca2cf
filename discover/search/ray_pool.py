"""The Ray pool: long-lived evaluation actors on a local instance or a cluster, and joining
one.

Contract:

* :class:`RayPool` implements ``discover.search.pool.Pool`` with ``size`` actors
  (``discover.search.pool.EvaluationWorker``), one CPU each, JAX on one thread: the thread settings
  are in the actor's ``runtime_env`` so they hold before JAX is imported in the actor process.
* Faults.  A job whose actor dies (process killed, node lost) is the infrastructure's fault,
  never the candidate's: the job is re-queued, ahead of new work, and a replacement actor is
  started (it compiles while the other actors go on); the job is not scored until a worker
  finishes it.  A job that runs longer than ``eval_timeout`` seconds is the candidate's fault:
  its actor is killed (``ray.kill``: Ray cannot force-cancel an actor task) and replaced, and
  the job's result is status ``"timeout"`` with the worst score.  Bounds: when
  ``max_consecutive_losses`` actors are lost with no evaluation finishing in between, or one
  job has been lost with its worker ``MAX_LOSSES_PER_JOB`` times, the pool is ``broken`` (a
  one-line reason) and the campaign stops, keeping every unfinished job for ``discover
  resume``.  What happened is reported by ``take_events()``, one dict per event.
* ``memory_mb`` caps each actor's private memory (``RLIMIT_DATA``): an allocation past it
  fails inside that actor, which the campaign sees as a failed evaluation or a lost worker,
  never as a dead driver.
* :func:`init_ray` starts or joins Ray (a cluster that cannot be joined is a one-line
  ``UserError``); :func:`make_pool` makes the pool a configuration asks for.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import math
import sys
import time
from typing import Any

from discover.errors import WorkersLost
from discover.records import JobResult
from discover.search.cluster import describe, ray_where
from discover.search.pool import ACTOR_ENV, EvaluationWorker, Job, SerialPool, WorkerSpec


@dataclasses.dataclass(eq=False)
class _Actor:
    """One actor of a :class:`RayPool` and what it is doing."""

    name: str
    handle: Any
    ready_ref: Any = None      # set while the actor starts (compiles)
    since: float = 0.0         # monotonic: when it was started, or given its current job
    pid: int | None = None
    node: str | None = None
    job: Job | None = None     # the job it runs, and its result's ref
    ref: Any = None

    @property
    def free(self) -> bool:
        return self.ready_ref is None and self.job is None


class RayPool:
    """``size`` Ray actors, one CPU each, each compiled once; jobs go to idle actors and
    results come back through ``ray.wait`` as they finish.  ``limit`` (<= size) caps how many
    actors get work (a campaign may use fewer workers than a shared pool has).  Lost actors are
    replaced and their jobs re-queued; see the module docstring for timeouts and bounds."""

    MAX_LOSSES_PER_JOB = 3
    """A job lost with its worker this many times stops the campaign (not scored)."""
    RETRIES = 1
    """A job whose evaluation raised (a bug, not a lost worker) is tried once more, then
    recorded as failed."""
    START_TIMEOUT = 900.0
    """Seconds a replacement actor may take to be placed and compile before it counts as
    lost (a cluster with no CPU left for it)."""

    def __init__(self, spec: WorkerSpec, size: int, *, eval_timeout: float | None = None,
                 memory_mb: int | None = None, max_consecutive_losses: int | None = None,
                 worker: type = EvaluationWorker, worker_cpus: float = 1.0,
                 worker_args: tuple = ()):
        """``worker``, ``worker_cpus`` and ``worker_args`` (after ``EvaluationWorker``'s own
        arguments) exist for measuring the pool itself with stand-in actors
        (``discover.search.simulated_pool.SleepingWorker``)."""
        import ray

        if not ray.is_initialized():
            raise RuntimeError("RayPool needs ray.init() first")
        self.spec = spec
        self.size = size
        self.limit = size
        self.eval_timeout = eval_timeout
        self.memory_mb = memory_mb
        self.max_consecutive_losses = max_consecutive_losses or max(3, 2 * size)
        # No restarts by Ray: a dead actor is replaced here, where its job is re-queued and
        # the event recorded.
        self._actor_class = ray.remote(num_cpus=worker_cpus, max_restarts=0,
                                       max_task_retries=0,
                                       runtime_env={"env_vars": ACTOR_ENV})(worker)
        self._worker_args = tuple(worker_args)
        self.broken: str | None = None
        self.lost = self.requeued = self.timeouts = 0
        self._retry: list[Job] = []        # jobs lost with their worker: run these first
        self._losses: dict[int, int] = {}   # seq -> times lost
        self._errors: dict[int, int] = {}   # seq -> times its evaluation raised
        self._consecutive = 0               # actors lost since an evaluation last finished
        self._events: list[dict] = []
        self._names = itertools.count()
        self.workers = [self._start() for _ in range(size)]
        start = time.perf_counter()
        try:
            infos = self._wait_ready(start)
        except ray.exceptions.RayError as err:  # GetTimeoutError included
            self.close()
            crashed = "creation task" not in str(err)  # not a Python error of __init__
            if isinstance(err, ray.exceptions.GetTimeoutError):
                cap = (f" (not ready after {self.START_TIMEOUT:g} s: each worker compiles every "
                       f"task first, which takes longer on a loaded machine; the lines above "
                       f"say how far they got)")
            else:
                cap = (f" (memory cap {memory_mb} MB per worker: raise worker_memory_mb if "
                       f"they need more)" if memory_mb and crashed else "")
            raise WorkersLost(f"the evaluation workers failed to start: {describe(err)}{cap}"
                              ) from None
        self.warm_up_seconds = time.perf_counter() - start
        for actor, info in zip(self.workers, infos):
            actor.ready_ref, actor.pid, actor.node = None, info["pid"], info["node"]
        self.worker_warm_up = [i["warm_up_seconds"] for i in infos]

    HEARTBEAT_SECONDS = 10.0
    """While the workers compile, a line on stderr at least this often: a first start takes
    minutes, and a silent one looks hung."""

    def _wait_ready(self, start: float) -> list[dict]:
        """Every worker's ``ready()`` (``ray.get`` semantics: a ``RayError`` if one fails, a
        ``GetTimeoutError`` past ``START_TIMEOUT``), saying every ``HEARTBEAT_SECONDS`` how
        many are ready.  Each worker also prints a line a task as it compiles it."""
        import ray

        refs = [w.ready_ref for w in self.workers]
        pending = list(refs)
        while pending:
            left = self.START_TIMEOUT - (time.perf_counter() - start)
            if left <= 0:
                raise ray.exceptions.GetTimeoutError(
                    f"{len(pending)} of {len(refs)} workers not ready")
            done, pending = ray.wait(pending, num_returns=len(pending),
                                     timeout=min(self.HEARTBEAT_SECONDS, left))
            ray.get(done)  # a worker that failed to start raises here, at once
            if pending:
                print(f"discover: {len(refs) - len(pending)} of {len(refs)} worker(s) ready "
                      f"after {time.perf_counter() - start:.0f} s (each compiles every task "
                      f"once; later starts load it from the cache)", file=sys.stderr,
                      flush=True)
        return ray.get(refs)

    @property
    def where(self) -> str:
        """Where the actors run: ``on`` :func:`ray_where`."""
        return f"on {ray_where()}"

    @property
    def actors(self) -> list:
        """The actor handles (a starting replacement included)."""
        return [w.handle for w in self.workers]

    def _start(self) -> _Actor:
        index = next(self._names)
        name = f"actor-{index}"
        handle = self._actor_class.remote(self.spec, name, self.memory_mb, (index, self.size),
                                          *self._worker_args)
        return _Actor(name, handle, ready_ref=handle.ready.remote(), since=time.monotonic())

    # -- the pool interface ---------------------------------------------------------------
    def configure(self, workers: int | None, eval_timeout: float | None) -> None:
        self.limit = self.size if workers is None else max(1, min(workers, self.size))
        self.eval_timeout = eval_timeout

    def idle(self) -> int:
        free = sum(w.free for w in self.workers)
        return max(0, min(self.limit - self.busy(), free) - len(self._retry))

    def busy(self) -> int:
        return sum(w.job is not None for w in self.workers)

    def submit(self, job: Job) -> None:
        if self.idle() <= 0:
            raise RuntimeError("submit needs an idle worker")
        self._run(next(w for w in self.workers if w.free), job)

    def _run(self, worker: _Actor, job: Job) -> None:
        worker.job, worker.since = job, time.monotonic()
        worker.ref = worker.handle.evaluate.remote(job)

    def _dispatch(self) -> None:
        """Re-queued jobs go first to any free actor."""
        while self._retry and self.busy() < self.limit:
            worker = next((w for w in self.workers if w.free), None)
            if worker is None:
                return
            self._run(worker, self._retry.pop(0))

    def wait(self, timeout: float | None = None) -> list[tuple[Job, JobResult]]:
        """Finished jobs (waiting up to ``timeout`` seconds for the first); also starts the
        re-queued jobs, notices replacements that are ready and enforces ``eval_timeout``."""
        import ray

        self._dispatch()
        watched = {w.ref: w for w in self.workers if w.job is not None}
        watched.update({w.ready_ref: w for w in self.workers if w.ready_ref is not None})
        if not watched:
            return []
        deadline = self._next_deadline()
        if deadline is not None:
            timeout = deadline if timeout is None else min(timeout, deadline)
        ready, _ = ray.wait(list(watched), num_returns=1, timeout=timeout)
        # Take every other result that is already done too, without waiting.
        if ready and len(watched) > 1:
            more, _ = ray.wait([r for r in watched if r not in ready],
                               num_returns=len(watched) - len(ready), timeout=0)
            ready += more
        done: list[tuple[Job, JobResult]] = []
        for ref in ready:
            worker = watched[ref]
            if ref is worker.ready_ref:
                self._started(worker)
            elif worker.job is not None:
                self._finished(worker, done)
        self._expire(done)
        self._dispatch()
        return done

    def take_events(self) -> list[dict]:
        """Events since the last call: ``worker_lost`` (``worker``, ``pid``, ``node``,
        ``error``, ``replacement``, and ``seq`` of the job re-queued), ``worker_ready`` (a
        replacement compiled), ``timeout`` (``seq``, ``worker``, ``pid``, ``seconds``),
        ``evaluation_error`` (``seq``, ``error``: the evaluation raised, tried again)."""
        events, self._events = self._events, []
        return events

    # -- what ray.wait returned -----------------------------------------------------------
    def _started(self, worker: _Actor) -> None:
        import ray

        try:
            info = ray.get(worker.ready_ref)
        except ray.exceptions.RayError as err:
            self._lose(worker, describe(err))
            return
        worker.ready_ref, worker.pid, worker.node = None, info["pid"], info["node"]
        self._events.append({"event": "worker_ready", "worker": worker.name, "pid": worker.pid,
                             "node": worker.node,
                             "warm_up_seconds": round(info["warm_up_seconds"], 2)})

    def _finished(self, worker: _Actor, done: list) -> None:
        import ray

        job, ref = worker.job, worker.ref
        worker.job = worker.ref = None
        try:
            result = ray.get(ref)
        except ray.exceptions.RayTaskError as err:
            # evaluate() raised (it should not: a bug, or this process is in a bad state);
            # the actor lives.  Once more, then it is recorded as failed.
            seq = job.seq
            self._errors[seq] = self._errors.get(seq, 0) + 1
            if self._errors[seq] <= self.RETRIES:
                self._events.append({"event": "evaluation_error", "seq": seq,
                                     "worker": worker.name, "error": describe(err)})
                self._requeue(job)
            else:
                del self._errors[seq]
                done.append((job, JobResult.failed(describe(err), worker.name)))
            return
        except ray.exceptions.RayError as err:  # the actor died, or its node: not the job's
            self._lose(worker, describe(err), job)
            return
        self._consecutive = 0
        self._losses.pop(job.seq, None)
        self._errors.pop(job.seq, None)
        done.append((job, result))

    def _expire(self, done: list) -> None:
        now = time.monotonic()
        for worker in list(self.workers):
            if (worker.job is not None and self.eval_timeout is not None
                    and now - worker.since > self.eval_timeout):
                job, seconds = worker.job, now - worker.since
                self.timeouts += 1
                self._events.append({"event": "timeout", "seq": job.seq,
                                     "worker": worker.name, "pid": worker.pid,
                                     "seconds": round(seconds, 2)})
                replacement = self._replace(worker)
                self._events[-1]["replacement"] = replacement.name
                done.append((job, JobResult.timeout(seconds, self.eval_timeout, worker.name)))
            elif worker.ready_ref is not None and now - worker.since > self.START_TIMEOUT:
                self._lose(worker, f"not started after {self.START_TIMEOUT:g} s (no free CPU "
                                   f"in the cluster?)")

    def _next_deadline(self) -> float | None:
        """Seconds until the next job passes ``eval_timeout`` or a starting actor passes
        ``START_TIMEOUT`` (None: no deadline)."""
        now, ends = time.monotonic(), []
        for w in self.workers:
            if w.job is not None and self.eval_timeout is not None:
                ends.append(w.since + self.eval_timeout)
            elif w.ready_ref is not None:
                ends.append(w.since + self.START_TIMEOUT)
        return max(0.0, min(ends) - now + 0.01) if ends else None

    # -- faults ---------------------------------------------------------------------------
    def _replace(self, worker: _Actor) -> _Actor:
        """Kill ``worker``'s actor (if it still lives) and start a new one in its place."""
        import ray

        with contextlib.suppress(ValueError, ray.exceptions.RayError):  # gone already
            ray.kill(worker.handle, no_restart=True)
        replacement = self._start()
        self.workers[self.workers.index(worker)] = replacement
        return replacement

    def _lose(self, worker: _Actor, error: str, job: Job | None = None) -> None:
        """``worker`` died (or never started): replace it, re-queue its job, check bounds."""
        self.lost += 1
        self._consecutive += 1
        replacement = self._replace(worker)
        event = {"event": "worker_lost", "worker": worker.name, "pid": worker.pid,
                 "node": worker.node, "error": error, "replacement": replacement.name}
        if job is not None:
            seq = job.seq
            self._losses[seq] = self._losses.get(seq, 0) + 1
            event.update(seq=seq, requeued=True)
            self._requeue(job)
            self.requeued += 1
            if self._losses[seq] >= self.MAX_LOSSES_PER_JOB and self.broken is None:
                self.broken = (f"the evaluation of seq {seq} was lost with its worker "
                               f"{self._losses[seq]} times (last: {error})")
        self._events.append(event)
        if self._consecutive >= self.max_consecutive_losses and self.broken is None:
            self.broken = (f"{self._consecutive} workers lost in a row with no evaluation "
                           f"finished (last: {error})")

    def _requeue(self, job: Job) -> None:
        """Back in the line, lowest ``seq`` first (the log is written in ``seq`` order)."""
        self._retry.append(job)
        self._retry.sort(key=lambda j: j.seq)

    # -- stopping -------------------------------------------------------------------------
    def pending(self) -> list[Job]:
        return [w.job for w in self.workers if w.job is not None] + list(self._retry)

    def drop_pending(self) -> list[Job]:
        """Forget what is running or re-queued (the campaign is stopping); returns those
        jobs."""
        # Not ray.cancel: interrupting JAX mid-run could leave a shared actor broken.  The
        # actor finishes the abandoned job and takes its next one after it.
        jobs = self.pending()
        for worker in self.workers:
            worker.job = worker.ref = None
        self._retry = []
        return jobs

    def busy_seconds(self) -> float:
        import ray

        live = [w.handle for w in self.workers if w.ready_ref is None]
        try:
            return sum(s["busy_seconds"] for s in ray.get([a.stats.remote() for a in live]))
        except ray.exceptions.RayError:
            return math.nan

    def close(self) -> None:
        import ray

        self.drop_pending()
        for worker in self.workers:
            with contextlib.suppress(ValueError, ray.exceptions.RayError):  # gone already
                ray.kill(worker.handle, no_restart=True)
        self.workers = []


def make_pool(spec: WorkerSpec, workers: int, **options) -> SerialPool | RayPool:
    """``workers`` 0: the serial in-process pool; else that many Ray actors (``options``:
    :class:`RayPool`'s ``eval_timeout``, ``memory_mb``)."""
    if workers == 0:
        return SerialPool(spec)
    return RayPool(spec, workers, **options)
