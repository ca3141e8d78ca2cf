"""A discovery campaign: evolution + workers + the run directory, with budgets and resume.

Contract:

* :meth:`Campaign.create` makes a new run directory (refusing a non-empty one) with
  ``config.json`` (task lists resolved), ``state.json`` and an empty ``evaluations.jsonl``;
  :meth:`Campaign.open` reopens one to resume it.
* :meth:`Campaign.run` keeps every worker busy (one job each): as each result returns it is
  logged (``evaluations.jsonl``, with its ``seq``), told to the evolution, and a new child is
  bred and submitted.  It stops at the evaluation budget (``max_evals``, over the whole
  campaign: the jobs in flight finish first), at the time limit of this invocation (no new
  jobs; those in flight finish), on Ctrl-C (at once: jobs in flight are kept as pending) or
  when there is nothing left to breed.  A checkpoint (``state.json``, ``hall_of_fame.json``)
  is written every ``checkpoint_every`` evaluations and at exit, with ``best/`` at exit.
* Resume loses and repeats no evaluation: children bred before the checkpoint and not yet in
  the log are evaluated first; log lines written after the checkpoint (a crash) are read back
  and told to the evolution instead of being evaluated again.
* Killed at any moment (``SIGKILL``, a lost machine), the run directory stays resumable with
  no gap, duplicate or torn line in ``seq``: the directory appears whole or not at all
  (:meth:`Campaign.create` builds it aside and renames it), JSON files are replaced
  atomically, and a child bred since the last checkpoint is logged (and told) only once every
  child bred before it since then is logged; one finishing early waits in memory, and a
  checkpoint saves it as pending.
* Faults of the workers (see :mod:`discover.workers`) never lose a child: a job whose worker
  died is re-queued and evaluated by another; an evaluation past ``eval_timeout`` is logged
  with status ``"timeout"`` and the worst score.  Each fault is a line of ``events.jsonl``
  (``event``, ``time``, ``invocation``, ``evaluations`` logged so far, and the pool's fields:
  ``worker_lost``, ``worker_ready``, ``timeout``, ``evaluation_error``, ``stopped``).  When
  the workers cannot be kept alive the campaign checkpoints and raises
  :class:`~discover.workers.WorkersLost`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time

import programs
from discover import state as files
from discover.config import CampaignConfig, check_names
from discover.errors import UserError
from discover.evolution import AgingEvolution, Individual, start_programs
from discover.progress import Progress, format_score
from discover.workers import (
    WorkersLost,
    WorkerSpec,
    check_spec,
    cluster_cpus,
    init_ray,
    make_pool,
    ray_where,
)

STATE_VERSION = files.STATE_VERSION
EXPORT_TARGETS = ("optax", "torch", "numpy")
EVENTS_FILE = "events.jsonl"
"""Faults of the workers, one JSON object a line; absent while there has been none."""


@dataclasses.dataclass
class Summary:
    """What one invocation of a campaign did."""

    run_dir: str
    stopped: str               # "max_evals", "time_limit", "interrupted", "exhausted" or
                               # "requested" (request_stop)
    evaluations: int           # over the whole campaign
    evaluations_here: int      # in this invocation
    cache_hits: int
    cache_hit_rate: float
    invalid: int
    failed: int
    restarts: int
    best_search_score: float | None
    best_held_out_score: float | None
    adam_search_score: float | None
    adam_held_out_score: float | None
    best_program: str | None
    seconds: float             # wall clock of this invocation
    loop_seconds: float        # from the first job submitted to the last result
    worker_seconds: float      # time the workers spent evaluating (as they measured it)
    worker_cpu_seconds: float  # CPU time of the workers while evaluating
    warm_up_seconds: float     # compiling the workers (0 for a pool passed in)
    workers: int
    workers_lost: int = 0      # actors that died (or never started) and were replaced
    requeued: int = 0          # evaluations re-queued because their worker died
    timeouts: int = 0          # evaluations cancelled at eval_timeout (logged as "timeout")

    @property
    def evaluations_per_second(self) -> float:
        return self.evaluations_here / self.loop_seconds if self.loop_seconds > 0 else 0.0

    @property
    def overhead_fraction(self) -> float:
        """Share of the workers' time not spent evaluating (driver, Ray, idle)."""
        capacity = self.loop_seconds * self.workers
        return 1.0 - self.worker_seconds / capacity if capacity > 0 else 0.0

    def lines(self) -> list[str]:
        out = [f"run directory: {self.run_dir}",
               f"stopped by: {self.stopped}",
               (f"evaluations: {self.evaluations} ({self.evaluations_here} in this run, "
                f"{self.evaluations_per_second:.2f}/s on {self.workers} worker(s))"),
               (f"cache hits: {self.cache_hits} ({100 * self.cache_hit_rate:.1f}% of "
                f"children needing a score); invalid children rejected: {self.invalid}; "
                f"failed evaluations: {self.failed}; restarts: {self.restarts}"),
               *([(f"faults: {self.workers_lost} worker(s) lost and replaced, "
                   f"{self.requeued} evaluation(s) re-queued, {self.timeouts} timeout(s) "
                   f"(see {EVENTS_FILE})")]
                 if self.workers_lost or self.requeued or self.timeouts else []),
               (f"best search score: {format_score(self.best_search_score)} (adam "
                f"{format_score(self.adam_search_score)}; 0 = tuned adam, lower is better)"),
               (f"best held-out score: {format_score(self.best_held_out_score)} "
                f"(adam {format_score(self.adam_held_out_score)})")]
        if self.best_program:
            out += ["best program (simplified):"] + ["  " + line for line in
                                                     self.best_program.rstrip().splitlines()]
        return out


class Campaign:
    def __init__(self, run_dir: str, config: CampaignConfig, evolution: AgingEvolution,
                 pending: list[Individual], log: files.EvaluationLog, state: dict):
        self.run_dir = run_dir
        self.config = config
        self.evolution = evolution
        self.pending = sorted(pending, key=lambda c: c.seq)
        self.log = log
        self.meta = state  # elapsed seconds, invocations
        self._stop: str | None = None
        self._critical = False
        self._simple: dict[str, str] = {}  # program text -> simplified text
        self._events = None                # events.jsonl, opened at the first event
        self._saved_seq = evolution.next_seq  # children below it are in a checkpoint or logged
        self._unsaved: set[int] = set()    # children bred since, not yet logged
        self._held: dict[int, tuple[Individual, dict]] = {}  # finished, waiting for those

    # -- creating and reopening -----------------------------------------------------------
    @classmethod
    def create(cls, config: CampaignConfig, run_dir: str) -> Campaign:
        """A new campaign in ``run_dir`` (created; it must not hold any file)."""
        if os.path.isdir(run_dir) and os.listdir(run_dir):
            raise UserError(f"run directory {run_dir} is not empty (use 'discover resume "
                            f"{run_dir}' to continue it, or choose another --out)")
        if os.path.exists(run_dir) and not os.path.isdir(run_dir):
            raise UserError(f"run directory {run_dir} is a file")
        config = resolve_tasks(config)
        evolution = AgingEvolution(config, funnel=bool(config.held_out_tasks))
        pending = evolution.initial_children(start_programs(config.start))
        meta = {"elapsed_seconds": 0.0, "invocations": 0}
        if os.path.islink(run_dir):  # an empty directory behind a link: written in place
            log = files.EvaluationLog(os.path.join(run_dir, files.LOG_FILE))
            files.write_json_atomic(os.path.join(run_dir, files.CONFIG_FILE), config.to_dict())
            campaign = cls(run_dir, config, evolution, pending, log, meta)
            campaign.checkpoint()
            return campaign
        # Built aside and renamed into place: a driver killed meanwhile leaves no half-made
        # run directory, which neither 'run' (not empty) nor 'resume' (no state) would take.
        parent = os.path.dirname(os.path.abspath(run_dir))
        os.makedirs(parent, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=f".{os.path.basename(os.path.abspath(run_dir))}.",
                                   suffix=".new", dir=parent)
        try:
            os.chmod(staging, 0o777 & ~files.UMASK)  # mkdtemp makes it private
            files.write_json_atomic(os.path.join(staging, files.CONFIG_FILE),
                                    config.to_dict())
            log = files.EvaluationLog(os.path.join(staging, files.LOG_FILE))
            campaign = cls(staging, config, evolution, pending, log, meta)
            campaign.checkpoint()
            log.close()
            if os.path.isdir(run_dir):
                os.rmdir(run_dir)  # empty (checked above)
            os.rename(staging, run_dir)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        files.fsync_dir(parent)
        campaign.run_dir = run_dir
        campaign.log = files.EvaluationLog(os.path.join(run_dir, files.LOG_FILE))
        return campaign

    @classmethod
    def open(cls, run_dir: str, *, max_evals: int | None = None,
             time_limit: float | None = None) -> Campaign:
        """Reopen ``run_dir`` to go on; ``max_evals`` / ``time_limit`` replace the saved ones.
        A directory that cannot be resumed (``state.validate_run_dir``) is a UserError naming
        the first problem, raised before anything in it is written."""
        problems = files.validate_run_dir(run_dir)
        if problems:
            raise UserError(problems[0])
        config_path = os.path.join(run_dir, files.CONFIG_FILE)
        state_path = os.path.join(run_dir, files.STATE_FILE)
        data, saved = files.read_json(config_path), files.read_json(state_path)
        config = CampaignConfig.from_dict(data, source=config_path)
        changes = {}
        if max_evals is not None:
            changes["max_evals"] = max_evals
        if time_limit is not None:
            changes["time_limit"] = time_limit
        if changes:
            config = config.replace(**changes)
            files.write_json_atomic(config_path, config.to_dict())
        evolution = AgingEvolution(config, funnel=bool(config.held_out_tasks))
        pending = evolution.load_state_dict(saved["evolution"])
        remove_stale_temporaries(run_dir)
        log = files.EvaluationLog(os.path.join(run_dir, files.LOG_FILE))
        # Results logged after the checkpoint (the process died before the next one), and
        # any pending child found in the log, are told now, not evaluated again.
        by_seq = {child.seq: child for child in pending}
        for index, record in enumerate(files.read_log(log.path)):
            if index < saved["log_count"] and record["seq"] not in by_seq:
                continue
            child = by_seq.pop(record["seq"], None)
            if child is None:
                child = Individual(programs.parse(record["program"]), record["fingerprint"],
                                   seq=record["seq"], parent=record["parent"],
                                   mutation=record["mutation"])
            evolution.adopt(child)
            evolution.tell(child, record)
        meta = {"elapsed_seconds": saved["elapsed_seconds"],
                "invocations": saved["invocations"]}
        return cls(run_dir, config, evolution, list(by_seq.values()), log, meta)

    # -- running --------------------------------------------------------------------------
    def run(self, pool=None, *, progress: bool = True) -> Summary:
        """Run until a budget is spent or Ctrl-C; ``pool``: workers to use (else made here
        from ``config.workers`` and closed at the end).  Raises WorkersLost (after the
        checkpoint) when the pool's workers cannot be kept alive."""
        start = time.monotonic()
        config = self.config
        spec = WorkerSpec.from_config(config)
        own_pool = pool is None
        warm_up = 0.0
        where = ""
        if own_pool:
            workers = config.workers
            if workers != 0:
                init_ray(config.address)
                workers = workers if workers is not None else cluster_cpus()
                where = f" on {ray_where()}"
            pool = make_pool(spec, workers, eval_timeout=config.eval_timeout,
                             memory_mb=config.worker_memory_mb)
            warm_up = pool.warm_up_seconds
        else:
            check_spec(pool, spec)
            pool.limit = pool.size if config.workers is None else max(1, min(config.workers,
                                                                           pool.size))
            if hasattr(pool, "eval_timeout"):
                pool.eval_timeout = config.eval_timeout
        faults_before = _fault_counts(pool)
        n_workers = pool.limit
        clock = time.monotonic()  # the time limit counts from here: workers compiled
        if progress and config.progress_seconds > 0:
            limit = (f"; searching for {config.time_limit:g} s"
                     if config.time_limit is not None else "")
            print(f"discover: {n_workers} worker(s) ready{where} (compiled in {warm_up:.0f} s)"
                  f"{limit}", file=sys.stderr, flush=True)
        reporter = Progress(config.progress_seconds if progress else 0.0)
        self._stop = None
        broken = None
        previous = self._install_sigint()
        queue = list(self.pending)
        in_flight: dict[int, Individual] = {}
        stats = {"done": 0, "worker_seconds": 0.0, "worker_cpu": 0.0, "since_checkpoint": 0}
        loop_start = None
        starved = False  # breed() found nothing new: not again before a result is told
        try:
            while True:
                stop = self._stop or self._budget_reason(clock, in_flight)
                while pool.idle() > 0 and stop is None and (queue or not starved):
                    child = queue.pop(0) if queue else self.evolution.breed()
                    if child is None:
                        starved = True
                        break
                    in_flight[child.seq] = child
                    if child.seq >= self._saved_seq:
                        self._unsaved.add(child.seq)
                    pool.submit({"seq": child.seq, "program": str(child.program),
                                 "threshold": self.funnel_threshold()})
                    if loop_start is None:
                        loop_start = time.monotonic()
                    stop = self._stop or self._budget_reason(clock, in_flight)
                if not in_flight or self._stop == "interrupted":
                    break
                for job, result in pool.wait(timeout=0.25):
                    starved = False
                    child = in_flight.pop(job["seq"])
                    self._finish(child, make_record(child, result), stats)
                    stats["worker_seconds"] += result["seconds"]
                    stats["worker_cpu"] += result.get("cpu_seconds", 0.0)
                    # Also when results wait for an earlier child (one evaluation much slower
                    # than the others): the checkpoint saves them as pending, so they can be
                    # logged and told without waiting for it.
                    if (stats["since_checkpoint"] >= config.checkpoint_every
                            or len(self._held) >= config.checkpoint_every):
                        stats["since_checkpoint"] = 0
                        self.evolution.record()
                        self.checkpoint(self._unfinished(queue, in_flight),
                                        time.monotonic() - start)
                        self._release(stats)
                self._record_events(pool, progress)
                broken = getattr(pool, "broken", None)
                if broken:
                    self._stop = "workers_lost"
                    break
                reporter.update(**self._progress_fields(stats["done"]))
            loop_end = time.monotonic()
            if self._stop is None:
                self._stop = self._budget_reason(clock, in_flight) or "exhausted"
        finally:
            signal_restore(previous)
            pool.drop_pending()
            self._record_events(pool, progress)
            if broken:
                self._event({"event": "stopped", "reason": broken}, progress)
            self.evolution.record()
            self.meta["invocations"] += 1
            # Twice when results wait for an earlier child: first with them as pending, then,
            # once they are logged (safe now), without.
            self.pending = self._unfinished(queue, in_flight)
            self.checkpoint(self.pending, time.monotonic() - start)
            if self._release(stats):
                self.pending = self._unfinished(queue, in_flight)
                self.checkpoint(self.pending, time.monotonic() - start)
            self.meta["elapsed_seconds"] += time.monotonic() - start
            self.write_best()
            reporter.update(force=True, **self._progress_fields(stats["done"]))
            reporter.close()
            if own_pool:
                pool.close()
        if broken:
            raise WorkersLost(f"stopped: {broken}; the campaign is saved: 'discover resume "
                              f"{self.run_dir}' evaluates its {len(self.pending)} unfinished "
                              f"children first")
        faults = {k: v - faults_before[k] for k, v in _fault_counts(pool).items()}
        return self._summary(stats["done"], time.monotonic() - start,
                             (loop_end - loop_start) if loop_start else 0.0,
                             stats["worker_seconds"], stats["worker_cpu"], warm_up, n_workers,
                             faults)

    def _unfinished(self, queue: list, in_flight: dict) -> list[Individual]:
        """Children bred and not logged, by ``seq``: what a checkpoint saves as pending."""
        held = [child for child, _ in self._held.values()]
        return sorted(queue + list(in_flight.values()) + held, key=lambda c: c.seq)

    def _finish(self, child: Individual, record: dict, stats: dict) -> None:
        """Log and tell ``child`` now if every child bred before it since the last checkpoint
        is logged (else it waits in ``_held``), then whatever waited for it."""
        self._held[child.seq] = (child, record)
        while self._held:
            seq = min(self._held)
            if seq >= self._saved_seq and seq != min(self._unsaved, default=seq):
                return
            self._log(*self._held.pop(seq), stats)

    def _release(self, stats: dict) -> int:
        """After a checkpoint (which saved them as pending): log and tell every held result."""
        released = len(self._held)
        for seq in sorted(self._held):
            self._log(*self._held.pop(seq), stats)
        return released

    def _log(self, child: Individual, record: dict, stats: dict) -> None:
        self._critical = True  # logged and told, or neither (second Ctrl-C)
        self.log.append(record)
        self.evolution.tell(child, record)
        self._unsaved.discard(child.seq)
        self._critical = False
        stats["done"] += 1
        stats["since_checkpoint"] += 1

    def _record_events(self, pool, progress: bool) -> None:
        take = getattr(pool, "take_events", None)
        for event in take() if take else ():
            self._event(event, progress)

    def _event(self, event: dict, progress: bool) -> None:
        """One line of ``events.jsonl`` (made durable at once: faults are rare), and of
        stderr."""
        event = {"event": event["event"], "time": round(time.time(), 3),
                 "invocation": self.meta["invocations"], "evaluations": self.log.count,
                 **{k: v for k, v in event.items() if k != "event"}}
        if self._events is None:
            self._events = open(os.path.join(self.run_dir, EVENTS_FILE), "a",  # noqa: SIM115
                                encoding="utf-8")
        self._events.write(json.dumps(event, allow_nan=False, separators=(",", ":")) + "\n")
        self._events.flush()
        os.fsync(self._events.fileno())
        if progress:
            print(f"discover: {describe_event(event)}", file=sys.stderr, flush=True)

    def _budget_reason(self, start: float, in_flight: dict) -> str | None:
        c = self.config
        outstanding = self.log.count + len(in_flight) + len(self._held)
        if c.max_evals is not None and outstanding >= c.max_evals:
            return "max_evals"
        if c.time_limit is not None and time.monotonic() - start >= c.time_limit:
            return "time_limit"
        return None

    def request_stop(self, reason: str = "requested") -> None:
        """Stop :meth:`run` as a budget does: no new jobs, those in flight finish (callable
        from another thread)."""
        if self._stop is None:
            self._stop = reason

    def _install_sigint(self):
        if threading.current_thread() is not threading.main_thread():
            return None

        def handler(signum, frame):
            if self._stop == "interrupted" and not self._critical:
                raise KeyboardInterrupt  # a second Ctrl-C: stop now (the checkpoint still runs)
            self._stop = "interrupted"
        return signal.signal(signal.SIGINT, handler)

    # -- records --------------------------------------------------------------------------
    def checkpoint(self, pending: list[Individual] | None = None,
                   seconds: float = 0.0) -> None:
        """``state.json`` and ``hall_of_fame.json``, atomically, after the log is on disk.
        ``pending``: every child bred and not logged (default: ``self.pending``)."""
        self.log.sync()
        pending = self.pending if pending is None else pending
        data = {"version": STATE_VERSION, "log_count": self.log.count,
                "elapsed_seconds": self.meta["elapsed_seconds"] + seconds,
                "invocations": self.meta["invocations"],
                "evolution": self.evolution.state_dict(sorted(pending, key=lambda c: c.seq))}
        files.write_json_atomic(os.path.join(self.run_dir, files.STATE_FILE), data)
        self._saved_seq = self.evolution.next_seq  # every child bred so far: saved or logged
        self._unsaved.clear()
        files.write_json_atomic(os.path.join(self.run_dir, files.HALL_OF_FAME_FILE),
                                self.hall_of_fame())

    def hall_of_fame(self) -> list[dict]:
        """Best first: each entry's program simplified, with its search and held-out scores."""
        out = []
        for rank, entry in enumerate(self.evolution.hall_of_fame_records(), start=1):
            out.append({
                "rank": rank,
                "program": self._simplified_text(entry["program"]),
                "original_program": entry["program"],
                "fingerprint": entry["fingerprint"],
                "search_score": entry["search_score"],
                "held_out_score": entry.get("held_out_score"),
                "scores": entry["scores"],
                "held_out_scores": entry.get("held_out_scores"),
                "lr": entry["lr"],
                "held_out_lr": entry.get("held_out_lr"),
                "seq": entry["seq"],
                "parent": entry["parent"],
                "mutation": entry["mutation"],
            })
        return out

    def _simplified_text(self, text: str) -> str:
        if text not in self._simple:
            self._simple[text] = str(_simplified(programs.parse(text)))
        return self._simple[text]

    def funnel_threshold(self) -> float:
        """Highest search score that earns held-out tasks now: ``held_out_threshold``, and
        with ``held_out_margin`` at most that far above the best search score so far."""
        config, best = self.config, self.evolution.best
        if config.held_out_margin is None or best is None:
            return config.held_out_threshold
        return min(config.held_out_threshold, best.score + config.held_out_margin)

    def write_best(self) -> None:
        """``best/program.opt`` and, when ``programs.export`` supports them, the optax, torch
        and numpy modules of the best program (hall of fame first, else best search score)."""
        hof = self.hall_of_fame()
        if hof:
            best = hof[0]
            program, provenance = _simplified(programs.parse(best["program"])), {
                "search_score": best["search_score"], "held_out_score": best["held_out_score"],
                "fingerprint": best["fingerprint"]}
        elif self.evolution.best is not None:
            program = _simplified(self.evolution.best.program)
            provenance = {"search_score": self.evolution.best.score, "held_out_score": None,
                          "fingerprint": self.evolution.best.fingerprint}
        else:
            return
        program = dataclasses.replace(program, name="discovered")
        best_dir = os.path.join(self.run_dir, files.BEST_DIR)
        os.makedirs(best_dir, exist_ok=True)
        header = (f"# Discovered by campaign {self.config.name or os.path.basename(self.run_dir)}"
                  f" (seed {self.config.seed}).\n"
                  f"# Search score {format_score(provenance['search_score'])}, held-out score "
                  f"{format_score(provenance['held_out_score'])} (0 = tuned adam, lower is "
                  f"better); fingerprint {provenance['fingerprint']}.\n")
        files.write_text_atomic(os.path.join(best_dir, "program.opt"), header + str(program))
        for target in EXPORT_TARGETS:
            source = _export(program, target, run=os.path.abspath(self.run_dir),
                             **provenance)
            if source is not None:
                files.write_text_atomic(os.path.join(best_dir, f"discovered_{target}.py"),
                                        source)

    def _progress_fields(self, done_here: int) -> dict:
        evo = self.evolution
        hof = evo.hall_of_fame_records()
        return {"evaluations": self.log.count, "done_here": done_here,
                "best": evo.best.score if evo.best else None,
                "best_held_out": hof[0].get("held_out_score") if hof else None,
                "hit_rate": evo.cache_hit_rate, "failed": evo.counters["failed"],
                "invalid": evo.counters["invalid"], "restarts": evo.counters["restarts"]}

    def _summary(self, done_here, seconds, loop_seconds, worker_seconds, worker_cpu, warm_up,
                 workers, faults) -> Summary:
        evo = self.evolution
        hof = self.hall_of_fame()
        adam = evo.cache.get(programs.BASELINES["adam"].fingerprint(), {})
        return Summary(
            run_dir=self.run_dir, stopped=self._stop or "exhausted",
            evaluations=self.log.count, evaluations_here=done_here,
            cache_hits=evo.counters["cache_hits"], cache_hit_rate=evo.cache_hit_rate,
            invalid=evo.counters["invalid"], failed=evo.counters["failed"],
            restarts=evo.counters["restarts"],
            best_search_score=evo.best.score if evo.best else None,
            best_held_out_score=hof[0]["held_out_score"] if hof else None,
            adam_search_score=adam.get("score"), adam_held_out_score=adam.get("held_out_score"),
            best_program=hof[0]["program"] if hof else (
                str(_simplified(evo.best.program)) if evo.best else None),
            seconds=seconds, loop_seconds=loop_seconds, worker_seconds=worker_seconds,
            worker_cpu_seconds=worker_cpu,
            warm_up_seconds=warm_up, workers=workers, **faults)

    def close(self) -> None:
        self.log.close()
        if self._events is not None:
            self._events.close()
            self._events = None


def _fault_counts(pool) -> dict[str, int]:
    return {"workers_lost": getattr(pool, "lost", 0), "requeued": getattr(pool, "requeued", 0),
            "timeouts": getattr(pool, "timeouts", 0)}


def describe_event(event: dict) -> str:
    """One line for stderr."""
    kind, worker = event["event"], event.get("worker")
    pid = f" (pid {event['pid']})" if event.get("pid") else ""
    if kind == "worker_lost":
        job = f"; seq {event['seq']} re-queued" if "seq" in event else ""
        return (f"worker {worker}{pid} lost: {event['error']}{job}; starting "
                f"{event['replacement']}")
    if kind == "worker_ready":
        return f"worker {worker}{pid} ready (compiled in {event['warm_up_seconds']:.0f} s)"
    if kind == "timeout":
        return (f"seq {event['seq']} cancelled after {event['seconds']:.0f} s on {worker}{pid}"
                f" (eval_timeout): scored as a timeout; starting {event['replacement']}")
    if kind == "evaluation_error":
        return f"seq {event['seq']} raised on {worker}: {event['error']}; trying again"
    if kind == "stopped":
        return f"stopping: {event['reason']}"
    return json.dumps(event)


def remove_stale_temporaries(run_dir: str) -> None:
    """Temporary files of atomic writes cut short by a killed process (``.NAME.*.tmp``)."""
    for directory in (run_dir, os.path.join(run_dir, files.BEST_DIR)):
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        for name in names:
            if name.startswith(".") and name.endswith(".tmp"):
                try:
                    os.unlink(os.path.join(directory, name))
                except OSError:
                    pass


def signal_restore(previous) -> None:
    if previous is not None:
        signal.signal(signal.SIGINT, previous)


def make_record(child: Individual, result: dict) -> dict:
    """One line of ``evaluations.jsonl``."""
    search, held_out = result["search"], result["held_out"]
    record = {
        "seq": child.seq,
        "program": str(child.program),
        "fingerprint": child.fingerprint,
        "parent": child.parent,
        "mutation": child.mutation,
        "status": search["status"],
        "score": search["score"],
        "scores": {t: s["score"] for t, s in search["tasks"].items()},
        "lr": {t: s["lr"] for t, s in search["tasks"].items()},
        "losses": {t: s["loss"] for t, s in search["tasks"].items()},
        "task_status": {t: s["status"] for t, s in search["tasks"].items()},
        "held_out_score": held_out["score"] if held_out else None,
        "held_out_scores": ({t: s["score"] for t, s in held_out["tasks"].items()}
                            if held_out else None),
        "held_out_lr": {t: s["lr"] for t, s in held_out["tasks"].items()} if held_out else None,
        "seconds": round(result["seconds"], 4),
        "worker": result["worker"],
        "time": round(time.time(), 3),
    }
    if "error" in search:
        record["error"] = search["error"]
    if held_out is not None and held_out["status"] != "ok":
        record["held_out_status"] = held_out["status"]
    return record


TIMING_FIELDS = ("seconds", "worker", "time")
"""Fields of an evaluation record that depend on timing and placement, not on the search."""


def resolve_tasks(config: CampaignConfig) -> CampaignConfig:
    """``config`` with its task lists filled from the registry and every name checked."""
    import tasks
    from programs import mutate

    search = tuple(config.tasks) if config.tasks is not None else tuple(tasks.search_names())
    held = (tuple(config.held_out_tasks) if config.held_out_tasks is not None
            else tuple(tasks.held_out_names()))
    config = config.replace(tasks=list(search), held_out_tasks=list(held))
    check_names(config, ops=programs.OPS, task_names=tasks.names(),
                baselines=programs.BASELINES, mutation_kinds=mutate.KINDS)
    for name, program in start_programs(config.start):
        if len(program.body) > config.max_statements or len(program.slots) > config.max_slots:
            raise UserError(f"'start': {name} has {len(program.body)} statements and "
                            f"{len(program.slots)} state slots; 'max_statements' is "
                            f"{config.max_statements} and 'max_slots' {config.max_slots}")
    for name in search + held:
        try:
            tasks.resolve(name)
        except ValueError as err:
            raise UserError(str(err)) from None
    return config


def _simplified(program: programs.Program) -> programs.Program:
    try:
        return program.pruned()
    except Exception:  # noqa: BLE001 -- cosmetic here; never lose a result over it
        return program


def _export(program: programs.Program, target: str, **provenance) -> str | None:
    """Source of the ``target`` module, or None while ``programs.export`` lacks it."""
    try:
        return programs.export(program, target, **provenance)
    except TypeError:
        try:
            return programs.export(program, target)
        except (ImportError, AttributeError, NotImplementedError, ValueError, TypeError):
            return None
    except (ImportError, AttributeError, NotImplementedError, ValueError):
        return None


def default_run_dir(config: CampaignConfig, root: str = "runs") -> str:
    """``runs/NAME`` or ``runs/<timestamp>`` (with a suffix when it exists already)."""
    base = os.path.join(root, config.name or time.strftime("%Y%m%d-%H%M%S"))
    path, n = base, 2
    while config.name == "" and os.path.exists(path):
        path, n = f"{base}-{n}", n + 1
    return path

