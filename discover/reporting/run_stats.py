"""What ``report.md`` says of a run, computed from its files (``discover.rundir.load``).

Contract: every number comes from the files: the cost sums ``evaluations.jsonl``; cache hits,
invalid children and restarts are the counters of ``state.json``; the hall of fame is
``hall_of_fame.json`` (ranked from the log when that file is missing or still empty).
Anything missing is added to ``run.notes``, never raised.
"""

from __future__ import annotations

import statistics

from discover.records import OK, REJECTED, HallEntry
from discover.reporting.best import found_name
from discover.rundir import HALL_OF_FAME_FILE, LOG_FILE, RunFiles


def _pruned(text: str) -> str:
    """The program pruned and named ``discovered`` (as in ``best/`` and the summary, whatever
    baseline it descends from), or its text as logged when it does not parse (a log edited
    by hand); the report shows what there is."""
    import programs

    try:
        return found_name(str(programs.parse(text).pruned()))
    except programs.ProgramError:
        return text


def cost(run: RunFiles) -> dict:
    """Evaluations, failures and worker seconds summed from the log; the search's counters."""
    per_worker: dict[str, float] = {}
    for record in run.log:
        per_worker[record.worker] = per_worker.get(record.worker, 0.0) + record.seconds
    counters = run.counters
    hits, evaluated = counters.get("cache_hits"), counters.get("evaluations")
    return {
        "evaluations": len(run.log),
        "failed": sum(r.status not in (OK, REJECTED) for r in run.log),
        "rejected": sum(r.status == REJECTED for r in run.log),
        "held_out": sum(r.held_out_score is not None for r in run.log),
        "worker_seconds": sum(per_worker.values()),
        "per_worker": dict(sorted(per_worker.items())),
        "cache_hits": hits,
        "cache_hit_rate": (hits / (hits + evaluated) if isinstance(hits, int)
                           and isinstance(evaluated, int) and hits + evaluated else None),
        "invalid": counters.get("invalid"),
        "restarts": counters.get("restarts"),
        "elapsed_seconds": (run.state or {}).get("elapsed_seconds"),
        "invocations": (run.state or {}).get("invocations"),
    }


def hurdle_outcomes(run: RunFiles) -> dict | None:
    """What the hurdles did (None when no record met one): children ``met``, ``rejected``;
    the worker seconds a rejected child took against a full evaluation (means) and the
    ``saved_seconds`` estimate (rejected x the difference); ``audits`` that the hurdle would
    have rejected, and of those the ``false_rejections``: a full search score at most the
    median full score of the children that passed."""
    met = [r for r in run.log if r.hurdle is not None]
    if not met:
        return None
    rejected = [r for r in met if r.status == REJECTED]
    full = [r for r in run.log if r.status != REJECTED and r.scores]
    passed = [r.search_score for r in met if r.hurdle["passed"] and r.status == OK]
    audited = [r for r in met if r.hurdle.get("audit") and not r.hurdle["passed"]
               and r.status == OK]
    typical = statistics.median(passed) if passed else None
    false = [r for r in audited if typical is not None and r.search_score <= typical]
    full_seconds = statistics.fmean(r.seconds for r in full) if full else None
    rejected_seconds = statistics.fmean(r.seconds for r in rejected) if rejected else None
    saved = (len(rejected) * (full_seconds - rejected_seconds)
             if full_seconds is not None and rejected_seconds is not None else None)
    return {"met": len(met), "rejected": len(rejected), "full_seconds": full_seconds,
            "rejected_seconds": rejected_seconds, "saved_seconds": saved,
            "audits": len(audited), "false_rejections": len(false),
            "passed_median": typical}


def island_progress(run: RunFiles) -> dict[int, tuple[list[int], list[float]]]:
    """With islands: per island, the evaluation numbers (log order) of its children and its
    best search score so far at each; empty for a campaign of one island."""
    out: dict[int, tuple[list[int], list[float]]] = {}
    best: dict[int, float] = {}
    for n, record in enumerate(run.log, 1):
        if record.island is None or record.status != OK:
            continue
        best[record.island] = min(best.get(record.island, record.search_score),
                                  record.search_score)
        xs, ys = out.setdefault(record.island, ([], []))
        xs.append(n)
        ys.append(best[record.island])
    return dict(sorted(out.items()))


def mutation_success(run: RunFiles) -> list[tuple[str, int, int]]:
    """Per mutation kind (chains as ``a+b``): ``(kind, children evaluated, children better
    than their parent)``, the parent's search score taken from its own record in the log;
    most children first.  Children whose parent has no record (or starts) are left out."""
    first: dict[str, float] = {}
    for record in sorted(run.log, key=lambda r: r.seq):
        first.setdefault(record.fingerprint, record.search_score)
    counts: dict[str, list[int]] = {}
    for record in run.log:
        kind = (record.mutation or {}).get("kind")
        if kind in (None, "start") or record.parent not in first:
            continue
        tally = counts.setdefault(kind, [0, 0])
        tally[0] += 1
        tally[1] += record.search_score < first[record.parent]
    return sorted(((k, n, b) for k, (n, b) in counts.items()), key=lambda t: (-t[1], t[0]))


def ranked_programs(run: RunFiles) -> tuple[list[HallEntry], str]:
    """The hall of fame (best first) and where it came from: ``hall_of_fame.json``, else
    ranked from the log (held-out score, else search score)."""
    if run.hall:
        return run.hall, f"`{HALL_OF_FAME_FILE}`"
    best: dict[str, object] = {}
    for record in run.log:
        if record.status == OK and record.score is not None:
            best.setdefault(record.fingerprint, record)
    held = [r for r in best.values() if r.held_out_score is not None]
    if held:
        ranked, source = sorted(held, key=lambda r: r.held_out_score), "held-out score"
    else:
        ranked, source = sorted(best.values(), key=lambda r: r.score), "search score"
        if run.hall is not None and run.log:
            threshold = run.config.get("held_out_threshold")
            run.notes.append("No program has a held-out score yet (the funnel passes search "
                             f"scores <= {threshold}): programs are ranked by search score.")
    size = int(run.config.get("hall_of_fame_size") or 20)
    return ([HallEntry.from_record(i, r, _pruned(r.program))
             for i, r in enumerate(ranked[:size], 1)], f"`{LOG_FILE}`, by {source}")


def curve_tasks(run: RunFiles) -> tuple[list[str], str]:
    """The held-out tasks of the campaign (their learning-rate key), else its search tasks."""
    import tasks

    held = run.config.get("held_out_tasks")
    if held is None:
        held = tasks.held_out_names()
    if held:
        return list(held), "held_out_lr"
    run.notes.append("The campaign has no held-out tasks: curves are on its search tasks.")
    return list(run.config.get("tasks") or tasks.search_names()), "lr"
