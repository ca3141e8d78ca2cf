"""What a campaign tells its user: the summary of an invocation and one line per fault event.

Contract: :class:`Summary` is what one invocation of ``Campaign.run`` did, and
:meth:`Summary.lines` prints it; :func:`describe_event` gives the stderr line of an event of
``events.jsonl``.
"""

from __future__ import annotations

import dataclasses
import json

from discover.progress import format_score
from discover.rundir import EVENTS_FILE
from discover.scoring.stats import format_interval, verdict


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
    best_held_out_interval: list[float] | None
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
    rejected: int = 0          # children stopped at the hurdle (status "rejected")
    neutral_steps: int = 0     # extra mutations of children with their parent's function
    islands: int = 1
    migrations: int = 0
    resets: int = 0            # weaker islands reset from the stronger
    best_promotion_score: float | None = None     # hall of fame #1 on the promotion seeds
    best_promotion_interval: list[float] | None = None

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
               *([f"hurdle: {self.rejected} child(ren) stopped after the first search task"]
                 if self.rejected else []),
               *([f"neutral children mutated again: {self.neutral_steps}"]
                 if self.neutral_steps else []),
               *([(f"islands: {self.islands}; migrations: {self.migrations}; "
                   f"resets: {self.resets}")] if self.islands > 1 else []),
               *([(f"faults: {self.workers_lost} worker(s) lost and replaced, "
                   f"{self.requeued} evaluation(s) re-queued, {self.timeouts} timeout(s) "
                   f"(see {EVENTS_FILE})")]
                 if self.workers_lost or self.requeued or self.timeouts else []),
               (f"best search score: {format_score(self.best_search_score)} (adam "
                f"{format_score(self.adam_search_score)}; 0 = tuned adam, lower is better)"),
               (f"best held-out score: {format_score(self.best_held_out_score)} "
                + (f"(adam {format_score(self.adam_held_out_score)})"
                   if self.adam_held_out_score is not None else "(against tuned adam)")
                + ("" if self.best_held_out_score is None else
                   f": {held_out_claim(self.best_held_out_interval)}")),
               *([(f"promoted (held-out tasks, fresh seeds): "
                   f"{format_score(self.best_promotion_score)}: "
                   f"{held_out_claim(self.best_promotion_interval)}")]
                 if self.best_promotion_score is not None else [])]
        if self.best_program:
            out += ["best program (simplified):"] + ["  " + line for line in
                                                     self.best_program.rstrip().splitlines()]
        return out


def held_out_claim(bounds) -> str:
    """What the held-out interval against adam supports, with the interval."""
    if bounds is None:
        return "no interval (one held-out seed)"
    bounds = (float(bounds[0]), float(bounds[1]))
    return f"{verdict(bounds)} on the held-out tasks, 95% interval {format_interval(bounds)}"


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
