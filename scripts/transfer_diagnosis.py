"""Why the search's wins vanish on larger tasks: one factor moved at a time, scored by the bench.

Every contender (the crowned programs given, plus ``--baselines``) is benched with
``discover bench``'s yardstick (each rate tuned on the wide grid per task, seeds ``--seeds``,
score = normalised validation loss against tuned adam, median over tasks, 95% bootstrap
interval paired by seed) on the search set, then on the same eight models and data with one
factor changed (``tasks.registry.variant``; ``tasks/schedule.py``):

* ``horizon`` : steps x2, x4, x8 (same model, batch and data);
* ``width``   : hidden units / channels / embedding size x2, x4;
* ``batch``   : batch size x4, x16;
* ``schedule``: every contender under warmup + cosine decay of its rate (x1 and x4 steps);
* ``seeds``   : the search's own training seed 0 alone (the seed every campaign's fitness
  trains on: the winner's curse shows as a gap between it and the fresh seeds);
* ``tier``    : tiers B and C themselves, to rank every condition against (Spearman's rho
  over the contenders: which changed search set orders adam's neighbours as the tiers do).

The tier conditions use the seeds of the committed benches of the crowned programs; seed their
caches from those benches first and they train only the programs that are new:

    .venv/bin/python scripts/merge_bench_caches.py results/transfer_diagnosis/tierB/cache.json \
        results/bench/adam_searches/b/cache.json results/warm_start_b/bench_b/cache.json
    .venv/bin/python scripts/merge_bench_caches.py results/transfer_diagnosis/tierC/cache.json \
        results/bench/adam_searches/c/cache.json results/warm_start_b/bench_c/cache.json

Each condition is one bench in ``<out>/<condition>/`` (``cache.json``: an interrupted run
resumes, a finished one trains nothing; ``table.md`` per condition).  The summary,
``<out>/table.md`` (programs x conditions: median difference from tuned adam with its
interval, the verdict), ``summary.csv`` and ``factors.png`` (score against adam per factor
level), is rewritten after every condition.

    .venv/bin/python scripts/transfer_diagnosis.py --out results/transfer_diagnosis
        [--conditions base,seed0,...] [--programs a.opt,b.opt] [--seeds 1,2,3]

Runs in one process, one XLA thread (``--threads`` to change), so it can run beside other
work; conditions are run cheapest first.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

CROWNED = (
    "results/bench/adam_searches/programs/adam_default_seed0.opt",
    "results/bench/adam_searches/programs/adam_default_seed1.opt",
    "results/bench/adam_searches/programs/adam_default_seed2.opt",
    "results/bench/adam_searches/programs/adam_default_seed3.opt",
    "results/bench/adam_searches/programs/adam_default_seed4.opt",
    "results/warm_start_b/run/best/program.opt",
)
BASELINES = ("adam", "lookahead", "nadam", "adam_warmup_cosine", "lion")


@dataclasses.dataclass(frozen=True)
class Condition:
    """One bench: the search set with ``steps``/``width``/``batch`` factors, a schedule, and
    the seeds (None: the run's ``--seeds``)."""

    name: str
    factor: str
    level: float
    steps: float = 1
    width: float = 1
    batch: float = 1
    schedule: str = "constant"
    seeds: tuple[int, ...] | None = None
    tier: str | None = None


CONDITIONS = (
    # The tiers the crowned programs failed on, with the seeds of the committed benches
    # (results/bench/adam_searches, results/warm_start_b): their caches seed these.
    Condition("tierB", "tier", 10, tier="B", seeds=(1, 2, 3)),
    Condition("tierC", "tier", 100, tier="C", seeds=(0, 1, 2)),
    Condition("base", "base", 1),
    Condition("seed0", "seeds", 0, seeds=(0,)),
    Condition("schedule", "schedule", 1, schedule="warmup_cosine"),
    Condition("batch4x", "batch", 4, batch=4),
    Condition("width2x", "width", 2, width=2),
    Condition("horizon2x", "horizon", 2, steps=2),
    Condition("horizon4x", "horizon", 4, steps=4),
    Condition("schedule_horizon4x", "schedule", 4, steps=4, schedule="warmup_cosine"),
    Condition("batch16x", "batch", 16, batch=16),
    Condition("width4x", "width", 4, width=4),
    Condition("horizon8x", "horizon", 8, steps=8),
)


def condition_tasks(condition: Condition, base: list[str] | None = None) -> list[str]:
    """The tasks ``base`` (default the search set) as changed by ``condition``: variant
    names, which ``tasks.resolve`` builds (``"kjv_gru_s.steps4x"``); a tier condition's
    tier."""
    import tasks

    if condition.tier is not None:
        return tasks.names(condition.tier)
    return [tasks.variant(name, steps=condition.steps, width=condition.width,
                          batch=condition.batch).name
            for name in (base or tasks.search_names())]


def contenders(paths: list[str], baselines: list[str]):
    import programs
    from discover.scoring.bench import Contender

    found = []
    for path in paths:
        name = os.path.splitext(os.path.basename(path))[0]
        if name in ("program", "best"):  # a run directory's best program: the run's name
            name = os.path.basename(os.path.dirname(os.path.dirname(os.path.abspath(path))))
            if name == "run":
                name = os.path.basename(os.path.dirname(os.path.dirname(os.path.dirname(
                    os.path.abspath(path)))))
        found.append(Contender(name, programs.load(path), user=True))
    return found + [Contender(b, programs.BASELINES[b]) for b in baselines]


def summary_rows(results: dict) -> list[dict]:
    """One row per (condition, contender): the median difference from tuned adam, its
    interval (None with one seed), whether adam's or the contender's rate hit the grid's
    limit on some task."""
    from discover.scoring.stats import verdict

    rows = []
    for cname, (condition, result) in results.items():
        adam_limit = any(result.scores["adam"][t].at_limit for t in result.tasks)
        for c in result.contenders:
            if c.name == "adam":
                continue
            bounds = result.interval(c.name)
            rows.append({"condition": cname, "factor": condition.factor,
                         "level": condition.level, "program": c.name, "crowned": c.user,
                         "difference": result.difference(c.name, "adam"),
                         "low": None if bounds is None else bounds[0],
                         "high": None if bounds is None else bounds[1],
                         "verdict": verdict(bounds).replace(" adam", ""),
                         "at_limit": any(result.scores[c.name][t].at_limit
                                         for t in result.tasks),
                         "adam_at_limit": adam_limit})
    return rows


def markdown(rows: list[dict], conditions: list[str], command: str) -> str:
    from discover.scoring.stats import MIN_EFFECT

    programs_ = list(dict.fromkeys(r["program"] for r in rows))
    cell = {(r["program"], r["condition"]): r for r in rows}
    lines = ["# Transfer diagnosis", "", f"`{command}`", "",
             ("Each cell: the program's score minus tuned adam's on the eight search-set models "
             "with one factor changed (median over tasks of the mean paired difference over "
             "seeds; negative is better), its 95% bootstrap interval, and the verdict: `beats` "
             f"/ `worse` where the interval excludes 0 by at least {MIN_EFFECT}, else `noise`. "
             "Every rate tuned per task on the wide grid; `!` a rate at the grid's limit on "
             "some task. `seed0` is the search's own training seed alone (no interval); "
             "`tierB` and `tierC` are the held-out tiers themselves (seeds 1-3 and 0-2, as "
             "the committed benches of these programs)."), "",
             "| program | " + " | ".join(conditions) + " |",
             "|---|" + "---:|" * len(conditions)]
    for p in programs_:
        cells = []
        for c in conditions:
            r = cell.get((p, c))
            if r is None:
                cells.append("")
                continue
            text = f"{r['difference']:+.3f}"
            if r["low"] is not None:
                text += f" [{r['low']:+.3f}, {r['high']:+.3f}]"
            short = {"beats": "beats", "worse than": "worse"}.get(r["verdict"], "noise")
            text += f" {short if r['low'] is not None else ''}".rstrip()
            cells.append(text + ("!" if r["at_limit"] else ""))
        crowned = next(r["crowned"] for r in rows if r["program"] == p)
        lines.append(f"| {p}{' (crowned)' if crowned else ''} | " + " | ".join(cells) + " |")
    limits = sorted({r["condition"] for r in rows if r["adam_at_limit"]})
    lines += ["", "Tuned adam's rate at the grid's limit on some task in: "
              + (", ".join(limits) if limits else "no condition") + "."]
    counts = []
    for c in conditions:
        crowned = [r for r in rows if r["condition"] == c and r["crowned"]]
        if crowned:
            wins = sum(r["verdict"] == "beats" for r in crowned)
            counts.append(f"{c} {wins}/{len(crowned)}")
    lines += ["", "Crowned programs that beat tuned adam, per condition: " + ", ".join(counts)
              + "."]
    agreement = rank_agreement(rows)
    if agreement:
        tiers = sorted({t for by in agreement.values() for t in by})
        lines += ["", ("How each condition ranks the contenders against the tiers: Spearman's "
                  "rho between a condition's differences from adam and a tier's, over the "
                  "contenders both scored (adam's neighbours, as a warm-started search breeds "
                  "them), with its two-sided p-value."), "",
                  "| condition | " + " | ".join(f"rho vs tier {t}" for t in tiers) + " |",
                  "|---|" + "---:|" * len(tiers)]
        for c, by in agreement.items():
            lines.append(f"| {c} | " + " | ".join(
                f"{by[t][0]:+.2f} (p {by[t][1]:.2f}, n {by[t][2]})" if t in by else ""
                for t in tiers) + " |")
    return "\n".join(lines) + "\n"


def rank_agreement(rows: list[dict]) -> dict[str, dict[str, tuple[float, float, int]]]:
    """Per condition that is not a tier, per tier condition: (Spearman rho, p, n) of the
    contenders' differences from adam."""
    from scipy import stats

    by = {}
    for r in rows:
        by.setdefault(r["condition"], {})[r["program"]] = r["difference"]
    tiers = {r["condition"]: r["condition"].removeprefix("tier") for r in rows
             if r["factor"] == "tier"}
    out = {}
    for c, diffs in by.items():
        if c in tiers:
            continue
        for tc, label in tiers.items():
            common = sorted(set(diffs) & set(by[tc]))
            if len(common) >= 4:
                rho, p = stats.spearmanr([diffs[n] for n in common],
                                         [by[tc][n] for n in common])
                out.setdefault(c, {})[label] = (float(rho), float(p), len(common))
    return out


def write_summary(out: str, results: dict, command: str) -> None:
    import csv
    import io

    from discover import plots
    from discover.atomic import write_bytes_atomic, write_text_atomic

    rows = summary_rows(results)
    write_text_atomic(os.path.join(out, "table.md"), markdown(rows, list(results), command))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(os.path.join(out, "summary.csv"), buffer.getvalue())
    write_bytes_atomic(os.path.join(out, "factors.png"), plots.factor_figure(rows))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/transfer_diagnosis")
    parser.add_argument("--conditions", default=",".join(c.name for c in CONDITIONS))
    parser.add_argument("--programs", default=",".join(CROWNED),
                        help="the crowned programs (.opt files), comma-separated")
    parser.add_argument("--baselines", default=",".join(BASELINES))
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--threads", type=int, default=1, help="XLA threads (default 1)")
    parser.add_argument("--tasks", default="",
                        help="the tasks whose factors are changed (default: the search set)")
    args = parser.parse_args(argv)
    if args.threads == 1:
        os.environ.setdefault(
            "XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")
    known = {c.name: c for c in CONDITIONS}
    chosen = [c for c in args.conditions.split(",") if c]
    unknown = [c for c in chosen if c not in known]
    if unknown or not chosen:
        parser.error(f"--conditions: unknown {unknown or 'none'}; known: {', '.join(known)}")
    import programs
    from discover.scoring import bench, compile_cache

    unknown = [b for b in args.baselines.split(",") if b and b not in programs.BASELINES]
    if unknown:
        parser.error(f"--baselines: unknown {unknown}; known: {', '.join(programs.BASELINES)}")
    paths = [os.path.join(ROOT, p) if not os.path.isabs(p) and not os.path.exists(p) else p
             for p in args.programs.split(",") if p]
    field = contenders(paths, [b for b in args.baselines.split(",") if b])
    seeds = tuple(int(s) for s in args.seeds.split(","))
    compile_cache.enable()
    os.makedirs(args.out, exist_ok=True)
    command = "python scripts/transfer_diagnosis.py " + " ".join(sys.argv[1:] if argv is None
                                                                   else argv)
    results = {}
    started = time.time()
    for name in chosen:
        condition = known[name]
        task_names = condition_tasks(condition, [t for t in args.tasks.split(",") if t])
        print(f"[{time.time() - started:6.0f} s] {name}: {len(field)} contenders on "
              f"{len(task_names)} tasks", flush=True)
        result = bench.run(field, task_names, condition.seeds or seeds,
                           os.path.join(args.out, name), schedule=condition.schedule,
                           progress=bench.progress_bar())
        bench.write_outputs(result, os.path.join(args.out, name))
        results[name] = (condition, result)
        write_summary(args.out, results, command)
        print(f"[{time.time() - started:6.0f} s] {name}: {result.trained_windows} windows "
              f"trained, {result.cached_windows} cached", flush=True)
    with open(os.path.join(args.out, "table.md")) as f:
        print(f.read())
    return 0


if __name__ == "__main__":
    sys.exit(main())
