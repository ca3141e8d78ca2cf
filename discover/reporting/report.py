"""``discover report``: a campaign's run directory as ``report.md`` with plots in ``report/``.

Contract:

* :func:`write_report` reads a run directory (``discover.rundir.load``: the records of
  ``discover.records``) and writes
  ``RUN_DIR/report/*.png`` and then ``RUN_DIR/report.md``, each atomically (temporary file +
  rename).  It returns the path of ``report.md``.
* A path that does not exist, is not a directory, has no ``config.json`` or an unreadable one
  is a :class:`~discover.errors.UserError`.  Anything else that is missing or incomplete (no
  ``state.json``, an empty log, a record of another schema, no held-out score yet, no
  ``best/``, no matplotlib, a curve that cannot be trained) is said in the report's "Missing
  or incomplete" list; the report is written all the same.
* Numbers come from the files: the cost section sums ``evaluations.jsonl``; cache hits,
  invalid children and restarts are the counters of ``state.json``; the hall of fame is
  ``hall_of_fame.json`` (ranked from the log when that file is missing or still empty).
* Training curves (the top programs and the tuned baselines, on each held-out task) come from
  the engine itself (``discover.scoring.evaluate.Evaluator.run``: the compile-once VM over a window
  of rates and the campaign's seeds, one compile per task): a program's curve is the run at
  the learning rate it chose (``held_out_lr`` of its record), a baseline's the run at the
  rate the tuning walk finds from adam's (``discover.scoring.tuning``).  Losses are averaged over
  the seeds.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable

from discover.atomic import write_bytes_atomic
from discover.errors import UserError
from discover.progress import format_score
from discover.records import OK, REJECTED, HallEntry
from discover.reporting.run_stats import (
    cost,
    curve_tasks,
    hurdle_outcomes,
    island_progress,
    mutation_success,
    ranked_programs,
)
from discover.reporting.summary import held_out_claim
from discover.rundir import BEST_DIR, LOG_FILE, STATE_FILE, RunFiles, load
from discover.scoring.stats import format_interval

REPORT_FILE = "report.md"
FIGURE_DIR = "report"
CURVE_BASELINES = ("adam", "sgd", "lion")


def training_curves(run: RunFiles, entries: list[HallEntry], top: int,
                    say: Callable[[str], None]) -> dict[str, list[dict]]:
    """Per task: curves (``name``, ``label``, ``lr``, ``losses``, ``valid``) of the first
    ``top`` entries and the tuned baselines, from the engine's grid runs."""
    import programs
    import tasks
    from discover.scoring.evaluate import Evaluator

    names, lr_key = curve_tasks(run)
    candidates = []
    for name, text, chosen in ([(f"#{e.rank}", e.program, getattr(e, lr_key) or {})
                                for e in entries[:top]]
                               + [(n, str(programs.BASELINES[n]), None)
                                  for n in CURVE_BASELINES]):
        try:
            candidates.append((name, programs.parse(text), chosen))
        except programs.ProgramError as err:
            run.notes.append(f"No curves for {name}: {err}")
    # One compiled bucket per task that fits every candidate: no compile per program.
    bucket = {"max_statements": max([int(run.config.get("max_statements") or 20)]
                                    + [len(p.body) for _, p, _ in candidates]),
              "max_slots": max([int(run.config.get("max_slots") or 4)]
                               + [len(p.slots) for _, p, _ in candidates])}
    seeds = tuple(int(s) for s in run.config.get("eval_seeds") or (0,))
    out: dict[str, list[dict]] = {}
    started = time.monotonic()
    for i, task_name in enumerate(names):
        try:
            task = tasks.resolve(task_name)
        except ValueError as err:
            run.notes.append(f"No curves on task {task_name}: {err}")
            continue
        elapsed = time.monotonic() - started
        left = f"; about {elapsed / i * (len(names) - i):.0f} s left" if i else ""
        say(f"discover report: training curves on {task_name} ({i + 1}/{len(names)}, "
            f"{len(candidates)} programs, {elapsed:.0f} s{left}; --no-curves skips them) ...")
        evaluator = Evaluator([task], seeds=seeds, lr_grid=int(run.config.get("lr_grid") or 3),
                              schedule=run.config.get("schedule") or "constant", **bucket)
        curves = []
        for name, program, chosen in candidates:
            lr = None if chosen is None else chosen.get(task_name)
            try:
                curve = _curve(evaluator, program, task, lr, baseline=chosen is None)
            except Exception as err:  # noqa: BLE001 (a curve that cannot be trained is a note)
                run.notes.append(f"No curve for {name} on {task_name}: "
                                 f"{type(err).__name__}: {err}")
                continue
            curves.append(dict(curve, name=name, label=f"{name} ({curve['how']})"))
        if curves:
            out[task_name] = curves
    return out


def _curve(evaluator, program, task, lr: float | None, *, baseline: bool) -> dict:
    """The run at ``lr`` (the rate a program chose) or, without one, at the rate the walk of
    ``discover.scoring.tuning`` finds from adam's (a baseline: "tuned"); losses averaged over seeds."""
    import numpy as np

    from discover.scoring.tuning import STEP, rate

    offsets = [i - (evaluator.lr_grid - 1) // 2 for i in range(evaluator.lr_grid)]
    if lr is not None and np.isfinite(lr) and lr > 0:  # exactly the rate it chose
        lrs, how = [lr * STEP ** o for o in offsets], "chosen"
    else:
        tuning = evaluator.tune(program, task.name)
        k = tuning.exponents[tuning.best] if tuning.best is not None else 0
        lrs = [rate(task.default_lr, k + o) for o in offsets]
        how = "tuned" if baseline else "best of grid"
    result = evaluator.run(program, task.name, lrs=np.array(lrs, np.float32))
    i = offsets.index(0)
    losses = np.asarray(result.train_losses[i], float).mean(axis=0)
    diverged = "; diverged" if not np.all(np.isfinite(losses)) else ""
    if not np.isfinite(result.valid_losses).any():
        diverged = "; diverged at every lr"
    lrs = np.asarray(result.lrs, float)
    return {"lr": float(lrs[i]), "losses": losses,
            "valid": float(np.mean(result.valid_losses[i])),
            "how": f"lr {lrs[i]:.3g}, {how}{diverged}"}


# -- writing ---------------------------------------------------------------------------------
def write_report(run_dir: str, *, curves: bool = True, top: int = 3,
                 say: Callable[[str], None] | None = None) -> str:
    """Write ``report/*.png`` and ``report.md`` in ``run_dir``; returns the report's path."""
    say = say or (lambda line: print(line, file=sys.stderr))
    run = load(run_dir)
    entries, source = ranked_programs(run)
    figures = _Figures(run)
    search = [r.score if r.status in (OK, REJECTED) else None for r in run.log]
    if run.log:
        held = [(i, r.held_out_score) for i, r in enumerate(run.log, 1)
                if r.held_out_score is not None]
        medians = [(row["evaluations"], row["median"]) for row in run.logbook
                   if "median" in row and "evaluations" in row]
        figures.draw("fitness", "fitness_figure", search, held, medians,
                     [r.status == REJECTED for r in run.log])
        rows = [row for row in run.logbook
                if all(k in row for k in ("evaluations", "cache_hits", "invalid"))]
        figures.draw("rates", "rates_figure", [r.status not in (OK, REJECTED) for r in run.log],
                     rows)
        islands = island_progress(run)
        if islands:
            figures.draw("islands", "islands_figure", islands)
    curve_data: dict[str, list[dict]] = {}
    if not curves:
        run.notes.append("Training curves were not computed (--no-curves).")
    elif not entries:
        run.notes.append("No scored program yet: no training curves.")
    else:
        curve_data = training_curves(run, entries, top, say)
        if curve_data:
            figures.draw("curves", "curves_figure", curve_data)
    text = render(run, entries, source, figures.paths, curve_data)
    path = os.path.join(run_dir, REPORT_FILE)
    _write_atomic(path, text.encode("utf-8"))
    return path


class _Figures:
    """Draws figures into ``RUN_DIR/report/``; a figure that fails becomes a note."""

    def __init__(self, run: RunFiles):
        self.run = run
        self.paths: dict[str, str] = {}
        try:
            from discover import plots
        except ImportError:
            plots = None
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            plots = None
            run.notes.append("matplotlib is not installed: no plots (pip install matplotlib).")
        self.plots = plots

    def draw(self, name: str, function: str, *args) -> None:
        if self.plots is None:
            return
        try:
            png = getattr(self.plots, function)(*args)
        except Exception as err:  # noqa: BLE001 (a failed figure must not lose the report)
            self.run.notes.append(f"The {name} plot failed: {type(err).__name__}: {err}")
            return
        _write_atomic(os.path.join(self.run.path, FIGURE_DIR, f"{name}.png"), png)
        self.paths[name] = f"{FIGURE_DIR}/{name}.png"


def _write_atomic(path: str, data: bytes) -> None:
    """Temporary file in the same directory, then rename: readers see old or new, never half.
    A file that cannot be written is a UserError (a read-only run directory, a full disk)."""
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        write_bytes_atomic(path, data)
    except OSError as err:
        raise UserError(f"cannot write {path}: {err.strerror or err}") from None


# -- markdown --------------------------------------------------------------------------------
def render(run: RunFiles, entries: list[HallEntry], source: str, figures: dict[str, str],
           curves: dict[str, list[dict]]) -> str:
    name = run.config.get("name") or os.path.basename(os.path.abspath(run.path))
    lines = [f"# Campaign report: {name}", "",
             (f"Run directory `{run.path}`, report written {time.strftime('%Y-%m-%d %H:%M')}. "
              "Scores: 0 = tuned adam, 1 = the untrained model, lower is better (log-loss "
              "scale, clipped to ±2; a failed evaluation scores 2)."), ""]
    lines += _summary(run, entries)
    lines += ["## Fitness over the search", ""]
    lines += _figure(figures, "fitness", "Search score of each evaluation with the best so far "
                     "and a trailing median; right: held-out scores of candidates that passed "
                     "the funnel.")
    lines += ["## Cache hits and failures", ""]
    lines += _figure(figures, "rates", "Cumulative rates: failures from the log; cache hits and "
                     "invalid children from the checkpoint counters (one point per checkpoint).")
    lines += _curves_section(curves, figures)
    lines += _hall_of_fame(run, entries, source)
    lines += ["## Configuration", "", "```json", json.dumps(run.config, indent=1), "```", ""]
    lines += _cost_section(cost(run))
    lines += _search_section(run, figures)
    if run.notes:
        lines += ["## Missing or incomplete", ""] + [f"- {note}" for note in run.notes] + [""]
    return "\n".join(lines)


def _summary(run: RunFiles, entries: list[HallEntry]) -> list[str]:
    c = cost(run)
    ok = [(r.score, r) for r in run.log if r.status == OK and r.score is not None]
    lines = ["## Summary", "",
             (f"- Evaluations: {c['evaluations']} ({c['failed']} failed, {c['held_out']} also "
              "scored on the held-out tasks).")]
    if ok:
        score, record = min(ok, key=lambda pair: pair[0])
        lines.append(f"- Best search score: {format_score(score)} (evaluation seq "
                     f"{record.seq}).")
    if entries:
        claim = ("" if entries[0].held_out_score is None
                 else f": {held_out_claim(entries[0].held_out_interval)}")
        lines.append(f"- Best held-out score: {format_score(entries[0].held_out_score)} "
                     f"(hall of fame #1){claim}.")
    adam = next((r for r in run.log if r.mutation.get("kind") == "start"
                 and r.mutation.get("detail") == "adam"), None)
    if adam:
        held = (format_score(adam.held_out_score) if adam.held_out_score is not None else
                "not scored (the funnel scores only candidates that beat it on the search "
                "tasks; the held-out scores are against tuned adam, so its own is 0)")
        lines.append(f"- adam as evaluated in this run: search {format_score(adam.score)}, "
                     f"held-out {held}.")
    from discover.scoring import final_check

    check = final_check.load(run.path)
    if check is not None:
        first, *rest = check.lines()
        lines.append(f"- Final check: {first} ([table]({final_check.DIRECTORY}/table.md)):")
        lines += ["  - " + line.strip() for line in rest]
    best_dir = os.path.join(run.path, BEST_DIR)
    if os.path.isdir(best_dir) and os.listdir(best_dir):
        names = sorted(n for n in os.listdir(best_dir) if not n.startswith("."))
        lines.append("- Best program: " + ", ".join(f"[`{BEST_DIR}/{n}`]"
                                                    f"({BEST_DIR}/{n})" for n in names))
    else:
        run.notes.append(f"`{BEST_DIR}/` is missing or empty (it is written when a "
                         "campaign invocation ends).")
    return lines + ["", "Anything missing is listed at the end."
                    if run.notes else "Nothing is missing from the run directory.", ""]


def _figure(figures: dict[str, str], name: str, caption: str) -> list[str]:
    if name not in figures:
        return ["No plot (see \"Missing or incomplete\").", ""]
    return [f"![{name}]({figures[name]})", "", caption, ""]


def _curves_section(curves: dict[str, list[dict]], figures: dict[str, str]) -> list[str]:
    import numpy as np

    lines = ["## Training curves", ""]
    if not curves:
        return lines + ["No training curves (see \"Missing or incomplete\").", ""]
    lines += _figure(figures, "curves", "Training loss (moving average) of the top hall-of-fame "
                     "programs at the learning rate each chose, against baselines at their "
                     "tuned learning rate (the search's walk from adam's rate), averaged over the "
                     "evaluation seeds; computed by the search's own engine.")
    lines += ["| task | optimizer | lr | final validation loss | final training loss |",
              "|---|---|---|---|---|"]
    for task, task_curves in curves.items():
        for curve in task_curves:
            losses = np.asarray(curve["losses"], float)
            tail = losses[-max(1, len(losses) // 20):]
            lines.append(f"| {task} | {curve['name']} | {curve['lr']:.3g} | "
                         f"{curve['valid']:.4g} | {float(np.mean(tail)):.4g} |")
    return lines + [""]


def _hall_of_fame(run: RunFiles, entries: list[HallEntry], source: str) -> list[str]:
    lines = ["## Hall of fame", ""]
    if not entries:
        return lines + ["No program has been scored yet.", ""]
    search_tasks = list(run.config.get("tasks") or [])
    held_tasks = list(run.config.get("held_out_tasks") or [])
    for entry in entries:  # tasks a record has that the configuration does not list
        search_tasks += [t for t in entry.scores if t not in search_tasks]
        held_tasks += [t for t in entry.held_out_scores or {} if t not in held_tasks]
    columns = ([(t, "scores", "lr", t) for t in search_tasks]
               + [(t, "held_out_scores", "held_out_lr", f"{t} (held out)") for t in held_tasks])
    promoted = any(e.promotion_score is not None for e in entries)
    promotion_header = "promoted (fresh seeds) | " if promoted else ""
    lines += [f"From {source}. Each task cell: score @ the learning rate chosen."
              + (" Promoted programs (scored again on the held-out tasks over the promotion "
                 "seeds, because the held-out interval would have crowned them) rank first, "
                 "by that score." if promoted else ""), "",
              f"| # | {promotion_header}held-out score | 95% interval vs adam | search score | "
              + " | ".join(c[3] for c in columns) + " | seq |",
              "|---" * (len(columns) + 5 + promoted) + "|"]
    for entry in entries:
        cells = []
        for task, score_key, lr_key, _ in columns:
            score = (getattr(entry, score_key) or {}).get(task)
            lr = (getattr(entry, lr_key) or {}).get(task)
            cells.append("-" if score is None else format_score(score)
                         + ("" if lr is None else f" @ {lr:.3g}"))
        bounds = entry.held_out_interval
        promotion = ""
        if promoted and entry.promotion_score is None:
            promotion = "- | "
        elif promoted:
            fresh = entry.promotion_interval
            promotion = (f"{format_score(entry.promotion_score)} "
                         f"{format_interval(fresh and tuple(fresh)) or ''} | ")
        lines.append(f"| {entry.rank} | {promotion}{format_score(entry.held_out_score)} | "
                     f"{format_interval(bounds and tuple(bounds)) or '-'} | "
                     f"{format_score(entry.search_score)} | " + " | ".join(cells)
                     + f" | {entry.seq} |")
    lines += ["", "Programs (simplified, without state slots that never reach the update):", ""]
    for entry in entries:
        lines += [(f"#{entry.rank} (fingerprint `{entry.fingerprint}`, "
                   f"mutation {entry.mutation.get('kind', '-')}):"), "",
                  "```python", entry.program.rstrip(), "```", ""]
    return lines


def _search_section(run: RunFiles, figures: dict[str, str]) -> list[str]:
    """Mutation kinds' success rates and, when the campaign had hurdles, what they did."""
    lines = ["## Mutations", "", ("Children better than their parent (search score), by the "
             "mutation that made them:"), "", ("| mutation | children | better than parent | "
             "rate |"), "|---|---:|---:|---:|"]
    rows = mutation_success(run)
    lines += [f"| {k} | {n} | {b} | {100 * b / n:.1f}% |" for k, n, b in rows] or \
        ["| - | 0 | 0 | - |"]
    lines.append("")
    islands = island_progress(run)
    if islands:
        counters = run.counters
        lines += ["## Islands", ""]
        lines += _figure(figures, "islands", "Best search score so far of each island's "
                         "children (evaluations in log order).")
        lines += ["| island | children scored | best search score |", "|---:|---:|---:|"]
        lines += [f"| {i} | {len(xs)} | {format_score(ys[-1])} |"
                  for i, (xs, ys) in islands.items()]
        lines += ["", (f"Migrations: {counters.get('migrations', '-')}; resets of the weaker "
                  f"half: {counters.get('resets', '-')} (`{STATE_FILE}`)."), ""]
    h = hurdle_outcomes(run)
    if h is None:
        return lines
    saved = ("-" if h["saved_seconds"] is None else
             f"{h['saved_seconds']:.0f} s ({h['rejected_seconds']:.2f} s a rejected child "
             f"against {h['full_seconds']:.2f} s a full evaluation)")
    lines += ["## Hurdles", "", "| quantity | value |", "|---|---|",
              f"| children that met a hurdle | {h['met']} |",
              f"| stopped at it | {h['rejected']} |",
              f"| worker time saved (estimate) | {saved} |",
              f"| audited children the hurdle would have stopped | {h['audits']} |",
              (f"| of those, false rejections (full search score at most the median of the "
               f"children that passed) | {h['false_rejections']} |"), ""]
    return lines


def _cost_section(c: dict) -> list[str]:
    def count(value) -> str:
        return "-" if value is None else str(value)

    def seconds(value) -> str:
        return "-" if value is None else f"{value:.2f} s"

    rate = c["cache_hit_rate"]
    lines = ["## Cost", "", "| quantity | value |", "|---|---|",
             f"| evaluations | {c['evaluations']} |",
             f"| failed evaluations | {c['failed']} |",
             f"| children stopped at the hurdle | {c['rejected']} |",
             f"| evaluations also scored on held-out tasks | {c['held_out']} |",
             f"| cache hits (children that reused a known score) | {count(c['cache_hits'])} |",
             f"| cache hit rate | {'-' if rate is None else f'{100 * rate:.1f}%'} |",
             f"| invalid children rejected before evaluation | {count(c['invalid'])} |",
             f"| restarts | {count(c['restarts'])} |",
             (f"| worker CPU time (sum of the evaluations' seconds) | "
              f"{seconds(c['worker_seconds'])} |"),
             f"| wall-clock time of the campaign | {seconds(c['elapsed_seconds'])} |",
             f"| invocations (run + resumes) | {count(c['invocations'])} |", "",
             "Worker CPU time by worker:", "", "| worker | evaluations' seconds |", "|---|---|"]
    lines += [f"| {w} | {s:.2f} s |" for w, s in c["per_worker"].items()] or ["| - | - |"]
    return lines + ["", (f"Cache hits, invalid children, restarts and wall-clock time come from "
                         f"`{STATE_FILE}` (last checkpoint); the rest from "
                         f"`{LOG_FILE}`."), ""]
