"""A discovery campaign: the loop that keeps the workers busy, with budgets and resume.

Contract:

* :meth:`Campaign.create` makes a new run directory (``discover.rundir``: whole or not at all,
  refusing a non-empty one) with ``config.json`` (task lists resolved), the first checkpoint
  and an empty ``evaluations.jsonl``; :meth:`Campaign.open` reopens one to resume it.
* :meth:`Campaign.run` keeps every worker busy (one job each): as each result returns it is
  logged (``evaluations.jsonl``, a ``discover.records.LogRecord``), told to the evolution, and
  a new child is bred and submitted.  It stops at the evaluation budget (``max_evals``, over
  the whole campaign: the jobs in flight finish first), at the time limit of this invocation
  (no new jobs; those in flight finish), on Ctrl-C (at once: jobs in flight are kept as
  pending) or when there is nothing left to breed.  A checkpoint (``state.json``,
  ``hall_of_fame.json``) is written every ``checkpoint_every`` evaluations and at exit, with
  ``best/`` at exit.  A ``best/`` module that cannot be exported is a ``RuntimeError`` after
  the checkpoint (an exporter's bug is never hidden).
* Resume loses and repeats no evaluation: children bred before the checkpoint and not yet in
  the log are evaluated first; log lines written after the checkpoint (a crash) are read back
  and told to the evolution instead of being evaluated again.
* Killed at any moment (``SIGKILL``, a lost machine), the run directory stays resumable with
  no gap, duplicate or torn line in ``seq``: JSON files are replaced atomically, and a child
  bred since the last checkpoint is logged (and told) only once every child bred before it
  since then is logged; one finishing early waits in memory, and a checkpoint saves it as
  pending.
* Faults of the workers (``discover.search.ray_pool``) never lose a child: a job whose worker died
  is re-queued and evaluated by another; an evaluation past ``eval_timeout`` is logged with
  status ``"timeout"`` and the worst score.  Each fault is a line of ``events.jsonl``
  (``event``, ``time``, ``invocation``, ``evaluations`` logged so far, and the pool's fields:
  ``worker_lost``, ``worker_ready``, ``timeout``, ``evaluation_error``, ``stopped``).  When
  the workers cannot be kept alive the campaign checkpoints and raises
  :class:`~discover.errors.WorkersLost`.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

import programs
from discover.config import CampaignConfig
from discover.errors import UserError, WorkersLost
from discover.progress import Progress
from discover.records import HallEntry, LogRecord
from discover.reporting.best import best_files, found_name
from discover.reporting.summary import Summary, describe_event
from discover.resolve import resolve_tasks, start_programs
from discover.rundir import CONFIG_FILE, RunDir
from discover.search.cluster import cluster_cpus, init_ray
from discover.search.evolution import AgingEvolution
from discover.search.individual import Individual
from discover.search.pool import Job, Pool, WorkerSpec
from discover.search.ray_pool import make_pool
from discover.search.replay import replay
from programs.fingerprint import VERSION as FINGERPRINT_VERSION


class Campaign:
    """One campaign's evolution, its open run directory and the loop (see the module
    docstring).  Make one with :meth:`create` or :meth:`open`."""

    def __init__(self, files: RunDir, config: CampaignConfig, evolution: AgingEvolution,
                 pending: list[Individual], meta: dict):
        self.files = files
        self.config = config
        self.evolution = evolution
        self.pending = sorted(pending, key=lambda c: c.seq)
        self.meta = meta  # elapsed seconds, invocations
        self._stop: str | None = None
        self._critical = False
        self._pruned: dict[str, str] = {}  # program text -> pruned text
        self._saved_seq = evolution.next_seq  # children below it are in a checkpoint or logged
        self._unsaved: set[int] = set()    # children bred since, not yet logged
        self._held: dict[int, tuple[Individual, LogRecord]] = {}  # finished, waiting for those

    @property
    def run_dir(self) -> str:
        return self.files.path

    @property
    def log(self):
        return self.files.log

    # -- creating and reopening -----------------------------------------------------------
    @classmethod
    def create(cls, config: CampaignConfig, run_dir: str) -> Campaign:
        """A new campaign in ``run_dir`` (created; it must not hold any file)."""
        config = resolve_tasks(config)
        evolution = AgingEvolution(config, funnel=bool(config.held_out_tasks))
        pending = evolution.initial_children(start_programs(config.start))
        meta = {"elapsed_seconds": 0.0, "invocations": 0}

        def fill(files: RunDir) -> None:
            files.write_config(config.to_dict())
            cls(files, config, evolution, pending, meta).checkpoint()

        return cls(RunDir.create(run_dir, fill), config, evolution, pending, meta)

    @classmethod
    def open(cls, run_dir: str, *, max_evals: int | None = None,
             time_limit: float | None = None, workers: int | None = None) -> Campaign:
        """Reopen ``run_dir`` to go on; ``max_evals`` / ``time_limit`` replace the saved ones
        (saved), ``workers`` the saved number for this invocation.  A directory that cannot be
        resumed, a bad value or a spent budget is a UserError, raised before anything in the
        directory is written."""
        changes = {k: v for k, v in (("max_evals", max_evals), ("time_limit", time_limit))
                   if v is not None}
        opened: dict = {}

        def check(view: RunDir) -> None:
            source = view.file(CONFIG_FILE)
            config = CampaignConfig.from_saved(view.config_data(), source=source)
            config = config.replace(**changes) if changes else config  # UserError if bad
            if workers is not None:
                config.replace(workers=workers)  # UserError if bad; not saved
            done = len(view.records())
            if config.max_evals is not None and done >= config.max_evals:
                raise UserError(f"{run_dir}: the budget of {config.max_evals} evaluations is "
                                f"spent; pass a larger --max-evals")
            opened["config"] = config

        files = RunDir.open(run_dir, check)
        saved, config = files.state(), opened["config"]
        if changes:
            files.write_config(config.to_dict())
        if workers is not None:
            config = config.replace(workers=workers)
        # Results logged after the checkpoint (the process died before the next one), and
        # any pending child found in the log, are told now, not evaluated again.
        pending_seqs = {c["seq"] for c in saved["evolution"]["pending"]}
        told, after = [], []
        for index, record in enumerate(files.records()):
            later = index >= saved["log_count"] or record.seq in pending_seqs
            (after if later else told).append(record)
        evolution, pending = replay(config, saved["evolution"], after, told)
        meta = {"elapsed_seconds": saved["elapsed_seconds"],
                "invocations": saved["invocations"]}
        return cls(files, config, evolution, pending, meta)

    # -- running --------------------------------------------------------------------------
    def run(self, pool: Pool | None = None, *, progress: bool = True) -> Summary:
        """Run until a budget is spent or Ctrl-C; ``pool``: workers to use (else made here
        from ``config.workers`` and closed at the end).  Raises WorkersLost (after the
        checkpoint) when the pool's workers cannot be kept alive."""
        start = time.monotonic()
        config = self.config
        spec = WorkerSpec.from_config(config)
        own_pool = pool is None
        if own_pool:
            workers = config.workers
            if workers != 0:
                init_ray(config.address)
                workers = workers if workers is not None else cluster_cpus()
            pool = make_pool(spec, workers, eval_timeout=config.eval_timeout,
                             memory_mb=config.worker_memory_mb)
        else:
            if pool.spec != spec:
                raise ValueError(f"pool evaluators {pool.spec} differ from the campaign's {spec}")
            pool.configure(config.workers, config.eval_timeout)
        warm_up = pool.warm_up_seconds if own_pool else 0.0
        faults_before = _fault_counts(pool)
        n_workers = pool.limit
        clock = time.monotonic()  # the time limit counts from here: workers compiled
        if progress and config.progress_seconds > 0:
            limit = (f"; searching for {config.time_limit:g} s"
                     if config.time_limit is not None else "")
            print(f"discover: {n_workers} worker(s) ready {pool.where} (compiled in "
                  f"{warm_up:.0f} s){limit}", file=sys.stderr, flush=True)
        reporter = Progress(config.progress_seconds if progress else 0.0)
        self._stop = None
        broken = None
        previous = self._install_sigint()
        queue = list(self.pending)
        in_flight: dict[int, Individual] = {}
        stats = {"done": 0, "worker_seconds": 0.0, "worker_cpu": 0.0, "since_checkpoint": 0}
        loop_start = None
        starved = False  # breed() found nothing new: not again before a result is told
        shown_best = None  # the fingerprint of the best program printed last
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
                    starts, held_out_starts = self.evolution.rates(child.parent)
                    pool.submit(Job(child.seq, str(child.program),
                                    self.evolution.funnel_threshold(), starts, held_out_starts,
                                    self.evolution.hurdle(), self.evolution.audits(child.seq)))
                    if loop_start is None:
                        loop_start = time.monotonic()
                    stop = self._stop or self._budget_reason(clock, in_flight)
                if self._stop == "interrupted":
                    break
                if not in_flight and (stop is not None or (starved and not queue)):
                    break
                # else results to wait for, or no idle worker yet: every one is starting (a
                # replacement compiling after a loss or a timeout); pool.wait waits for it
                for job, result in pool.wait(timeout=0.25):
                    starved = False
                    child = in_flight.pop(job.seq)
                    record = LogRecord.from_result(child.seq, str(child.program),
                                                   child.fingerprint, child.parent,
                                                   child.mutation, result, time.time(),
                                                   self._island_of(child))
                    self._finish(child, record, stats)
                    stats["worker_seconds"] += result.seconds
                    stats["worker_cpu"] += result.cpu_seconds
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
                broken = pool.broken
                if broken:
                    self._stop = "workers_lost"
                    break
                best = self.evolution.best
                if best is not None and best.fingerprint != shown_best:
                    shown_best = best.fingerprint
                    reporter.best_program(best.score, found_name(str(best.program.pruned())))
                reporter.update(**self._progress_fields(stats["done"]), **self._budget_fields(
                    clock, in_flight))
            loop_end = time.monotonic()
            if self._stop is None:
                self._stop = self._budget_reason(clock, in_flight) or "exhausted"
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
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
            try:
                self.write_best()  # raises for a broken exporter: the workers still stop
            finally:
                reporter.update(force=True, **self._progress_fields(stats["done"]),
                                max_evals=self.config.max_evals)
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

    def _island_of(self, child: Individual) -> int | None:
        """The island logged for ``child``: None with one island, and for a start program
        (it joins every island)."""
        if self.config.islands == 1 or child.mutation.get("kind") == "start":
            return None
        return child.island

    def _unfinished(self, queue: list, in_flight: dict) -> list[Individual]:
        """Children bred and not logged, by ``seq``: what a checkpoint saves as pending."""
        held = [child for child, _ in self._held.values()]
        return sorted(queue + list(in_flight.values()) + held, key=lambda c: c.seq)

    def _finish(self, child: Individual, record: LogRecord, stats: dict) -> None:
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

    def _log(self, child: Individual, record: LogRecord, stats: dict) -> None:
        self._critical = True  # logged and told, or neither (second Ctrl-C)
        self.files.log.append(record)
        self.evolution.tell(child, record)
        self._unsaved.discard(child.seq)
        self._critical = False
        stats["done"] += 1
        stats["since_checkpoint"] += 1

    def _record_events(self, pool: Pool, progress: bool) -> None:
        for event in pool.take_events():
            self._event(event, progress)

    def _event(self, event: dict, progress: bool) -> None:
        """One line of ``events.jsonl`` and of stderr."""
        event = {"event": event["event"], "time": round(time.time(), 3),
                 "invocation": self.meta["invocations"], "evaluations": self.log.count,
                 **{k: v for k, v in event.items() if k != "event"}}
        self.files.event(event)
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
        pending = self.pending if pending is None else pending
        self.files.checkpoint({
            "fingerprint_version": FINGERPRINT_VERSION,
            "elapsed_seconds": self.meta["elapsed_seconds"] + seconds,
            "invocations": self.meta["invocations"],
            "evolution": self.evolution.state_dict(sorted(pending, key=lambda c: c.seq))},
            self.hall_of_fame())
        self._saved_seq = self.evolution.next_seq  # every child bred so far: saved or logged
        self._unsaved.clear()

    def hall_of_fame(self) -> list[HallEntry]:
        """Best first, each program pruned, with its search and held-out scores."""
        return [HallEntry.from_record(rank, record, self._pruned_text(record.program))
                for rank, record in enumerate(self.evolution.hall_of_fame_records(), start=1)]

    def _pruned_text(self, text: str) -> str:
        if text not in self._pruned:
            self._pruned[text] = str(programs.parse(text).pruned())
        return self._pruned[text]

    def write_best(self) -> None:
        """``best/program.opt`` and the optax, torch and numpy modules of the best program
        (hall of fame first, else best search score).  An exporter that fails is a
        RuntimeError naming the target (after ``program.opt`` is written)."""
        hof = self.hall_of_fame()
        if hof:
            best = hof[0]
            program = programs.parse(best.program)
            provenance = {"search_score": best.search_score,
                          "held_out_score": best.held_out_score,
                          "fingerprint": best.fingerprint}
            interval, rates = best.held_out_interval, best.lr
            promotion_score = best.promotion_score
            if promotion_score is not None:  # the claim rests on the fresh seeds
                interval = best.promotion_interval
        elif self.evolution.best is not None:
            program = self.evolution.best.program.pruned()
            provenance = {"search_score": self.evolution.best.score, "held_out_score": None,
                          "fingerprint": self.evolution.best.fingerprint}
            interval = promotion_score = None
            rates = (self.evolution.cache.get(self.evolution.best.fingerprint) or {}).get("lr")
        else:
            return
        provenance["rates"] = self._rates_beside_adam(rates)
        text, modules = best_files(program, provenance, interval,
                                   campaign=self.config.name or os.path.basename(self.run_dir),
                                   seed=self.config.seed, run_dir=os.path.abspath(self.run_dir),
                                   promotion_score=promotion_score)
        self.files.write_best(text, {})
        self.files.write_best(text, modules(), provenance["rates"])

    def _rates_beside_adam(self, rates: dict | None) -> dict | None:
        """Per search task, [the program's tuned rate, adam's] where both are known (adam's
        from its evaluation as a start program); None when adam was not one."""
        adam = self.evolution.cache.get(programs.BASELINES["adam"].fingerprint())
        adam_rates = (adam or {}).get("lr") or {}
        both = {task: [float(lr), float(adam_rates[task])] for task, lr in (rates or {}).items()
                if lr is not None and adam_rates.get(task) is not None}
        return both or None

    def _budget_fields(self, clock: float, in_flight: dict) -> dict:
        """What the progress line says of the budget: the evaluation budget, the search time
        left, and once a budget stops the search, why and how many evaluations it waits for."""
        c = self.config
        stopping = self._stop or self._budget_reason(clock, in_flight)
        return {"max_evals": c.max_evals,
                "time_left": (None if c.time_limit is None
                              else c.time_limit - (time.monotonic() - clock)),
                "stopping": stopping if in_flight else None, "in_flight": len(in_flight)}

    def _progress_fields(self, done_here: int) -> dict:
        evo = self.evolution
        hof = evo.hall_of_fame_records()
        return {"evaluations": self.log.count, "done_here": done_here,
                "best": evo.best.score if evo.best else None,
                "best_held_out": hof[0].held_out_score if hof else None,
                "hit_rate": evo.cache_hit_rate, "failed": evo.counters["failed"],
                "invalid": evo.counters["invalid"], "restarts": evo.counters["restarts"],
                "rejected": evo.counters["rejected"]}

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
            best_held_out_score=hof[0].held_out_score if hof else None,
            best_held_out_interval=hof[0].held_out_interval if hof else None,
            best_promotion_score=hof[0].promotion_score if hof else None,
            best_promotion_interval=hof[0].promotion_interval if hof else None,
            adam_search_score=adam.get("score"), adam_held_out_score=adam.get("held_out_score"),
            best_program=found_name(hof[0].program if hof else (
                str(evo.best.program.pruned()) if evo.best else None)),
            seconds=seconds, loop_seconds=loop_seconds, worker_seconds=worker_seconds,
            worker_cpu_seconds=worker_cpu,
            warm_up_seconds=warm_up, workers=workers, rejected=evo.counters["rejected"],
            neutral_steps=evo.counters["neutral_steps"], islands=self.config.islands,
            migrations=evo.counters["migrations"], resets=evo.counters["resets"], **faults)

    def close(self) -> None:
        self.files.close()


def _fault_counts(pool: Pool) -> dict[str, int]:
    return {"workers_lost": pool.lost, "requeued": pool.requeued, "timeouts": pool.timeouts}
