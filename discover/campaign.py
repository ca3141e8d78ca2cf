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
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
import threading
import time

import programs
from discover import state as files
from discover.config import CampaignConfig, check_names
from discover.errors import UserError
from discover.evolution import AgingEvolution, Individual, start_programs
from discover.progress import Progress, format_score
from discover.workers import WorkerSpec, check_spec, cluster_cpus, init_ray, make_pool

STATE_VERSION = 1
EXPORT_TARGETS = ("optax", "torch", "numpy")


@dataclasses.dataclass
class Summary:
    """What one invocation of a campaign did."""

    run_dir: str
    stopped: str               # "max_evals", "time_limit", "interrupted" or "exhausted"
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
        os.makedirs(run_dir, exist_ok=True)
        evolution = AgingEvolution(config, funnel=bool(config.held_out_tasks))
        pending = evolution.initial_children(start_programs(config.start))
        files.write_json_atomic(os.path.join(run_dir, files.CONFIG_FILE), config.to_dict())
        log = files.EvaluationLog(os.path.join(run_dir, files.LOG_FILE))
        campaign = cls(run_dir, config, evolution, pending, log,
                       {"elapsed_seconds": 0.0, "invocations": 0})
        campaign.checkpoint()
        return campaign

    @classmethod
    def open(cls, run_dir: str, *, max_evals: int | None = None,
             time_limit: float | None = None) -> Campaign:
        """Reopen ``run_dir`` to go on; ``max_evals`` / ``time_limit`` replace the saved ones."""
        config_path = os.path.join(run_dir, files.CONFIG_FILE)
        state_path = os.path.join(run_dir, files.STATE_FILE)
        for path in (config_path, state_path):
            if not os.path.isfile(path):
                raise UserError(f"{run_dir} is not a campaign run directory (no "
                                f"{os.path.basename(path)})")
        try:
            data, saved = files.read_json(config_path), files.read_json(state_path)
        except ValueError as err:
            raise UserError(f"{run_dir}: corrupt JSON: {err}") from None
        config = CampaignConfig.from_dict(data, source=config_path)
        changes = {}
        if max_evals is not None:
            changes["max_evals"] = max_evals
        if time_limit is not None:
            changes["time_limit"] = time_limit
        if changes:
            config = config.replace(**changes)
            files.write_json_atomic(config_path, config.to_dict())
        if saved.get("version") != STATE_VERSION:
            raise UserError(f"{state_path}: unsupported state version {saved.get('version')!r}")
        evolution = AgingEvolution(config, funnel=bool(config.held_out_tasks))
        pending = evolution.load_state_dict(saved["evolution"])
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
        from ``config.workers`` and closed at the end)."""
        start = time.monotonic()
        config = self.config
        spec = WorkerSpec.from_config(config)
        own_pool = pool is None
        warm_up = 0.0
        if own_pool:
            workers = config.workers
            if workers != 0:
                init_ray(config.address)
                workers = workers if workers is not None else cluster_cpus()
            pool = make_pool(spec, workers)
            warm_up = pool.warm_up_seconds
        else:
            check_spec(pool, spec)
            pool.limit = pool.size if config.workers is None else max(1, min(config.workers,
                                                                           pool.size))
        n_workers = pool.limit
        clock = time.monotonic()  # the time limit counts from here: workers compiled
        if progress and config.progress_seconds > 0:
            limit = (f"; searching for {config.time_limit:g} s"
                     if config.time_limit is not None else "")
            print(f"discover: {n_workers} worker(s) ready (compiled in {warm_up:.0f} s){limit}",
                  file=sys.stderr, flush=True)
        reporter = Progress(config.progress_seconds if progress else 0.0)
        self._stop = None
        previous = self._install_sigint()
        queue = list(self.pending)
        in_flight: dict[int, Individual] = {}
        done_here = 0
        worker_seconds = worker_cpu = 0.0
        loop_start = None
        since_checkpoint = 0
        try:
            while True:
                stop = self._stop or self._budget_reason(clock, in_flight)
                while pool.idle() > 0 and stop is None:
                    child = queue.pop(0) if queue else self.evolution.breed()
                    if child is None:
                        break
                    in_flight[child.seq] = child
                    pool.submit({"seq": child.seq, "program": str(child.program),
                                 "threshold": config.held_out_threshold})
                    if loop_start is None:
                        loop_start = time.monotonic()
                    stop = self._stop or self._budget_reason(clock, in_flight)
                if not in_flight or self._stop == "interrupted":
                    break
                for job, result in pool.wait(timeout=0.25):
                    self._critical = True  # logged and told, or neither (second Ctrl-C)
                    child = in_flight[job["seq"]]
                    record = make_record(child, result)
                    self.log.append(record)
                    self.evolution.tell(child, record)
                    del in_flight[job["seq"]]
                    self._critical = False
                    done_here += 1
                    worker_seconds += result["seconds"]
                    worker_cpu += result.get("cpu_seconds", 0.0)
                    since_checkpoint += 1
                    if since_checkpoint >= config.checkpoint_every:
                        since_checkpoint = 0
                        self.evolution.record()
                        self.checkpoint(queue + list(in_flight.values()),
                                        time.monotonic() - start)
                reporter.update(**self._progress_fields(done_here))
            loop_end = time.monotonic()
            if self._stop is None:
                self._stop = self._budget_reason(clock, in_flight) or "exhausted"
        finally:
            signal_restore(previous)
            pool.drop_pending()
            self.pending = sorted(queue + list(in_flight.values()), key=lambda c: c.seq)
            self.evolution.record()
            self.meta["invocations"] += 1
            self.checkpoint(self.pending, time.monotonic() - start)
            self.meta["elapsed_seconds"] += time.monotonic() - start
            self.write_best()
            reporter.update(force=True, **self._progress_fields(done_here))
            reporter.close()
            if own_pool:
                pool.close()
        return self._summary(done_here, time.monotonic() - start,
                             (loop_end - loop_start) if loop_start else 0.0, worker_seconds,
                             worker_cpu, warm_up, n_workers)

    def _budget_reason(self, start: float, in_flight: dict) -> str | None:
        c = self.config
        if c.max_evals is not None and self.log.count + len(in_flight) >= c.max_evals:
            return "max_evals"
        if c.time_limit is not None and time.monotonic() - start >= c.time_limit:
            return "time_limit"
        return None

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
        """``state.json`` and ``hall_of_fame.json``, atomically, after the log is on disk."""
        self.log.sync()
        pending = self.pending if pending is None else pending
        data = {"version": STATE_VERSION, "log_count": self.log.count,
                "elapsed_seconds": self.meta["elapsed_seconds"] + seconds,
                "invocations": self.meta["invocations"],
                "evolution": self.evolution.state_dict(sorted(pending, key=lambda c: c.seq))}
        files.write_json_atomic(os.path.join(self.run_dir, files.STATE_FILE), data)
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

    def write_best(self) -> None:
        """``best/program.opt`` and, when ``programs.export`` supports them, the optax, torch
        and numpy modules of the best program (hall of fame first, else best search score)."""
        hof = self.hall_of_fame()
        if hof:
            best = hof[0]
            program, provenance = programs.parse(best["program"]), {
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
                 workers) -> Summary:
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
            warm_up_seconds=warm_up, workers=workers)

    def close(self) -> None:
        self.log.close()


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
        return program.simplify()
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

