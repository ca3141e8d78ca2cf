"""The funnel's precision: of the programs campaigns crowned, how many beat tuned adam on tier C.

A campaign crowns a program by its own fitness: the held-out (tier-B) interval against adam
below ``-MIN_EFFECT`` (``discover.scoring.final_check.crowned``'s rule; a start program is
never counted).  Every record of each run's log that it crowned, not only the hall of fame's
top three, is benched on tier C beside tuned adam with ``discover bench``'s yardstick (each
rate tuned on the wide grid, seeds ``--seeds``, the run's own schedule): one bench per run in
``<out>/<run name>/`` (its ``cache.json``: an interrupted run resumes, a finished one trains
nothing; seed it from other benches with ``scripts/merge_bench_caches.py``).  With
``--promotion`` (``scripts/promote_run.py``'s cache), or for a campaign that promoted as it
ran, each row also says whether promotion keeps the claim, and the precision among the
promoted is reported beside the funnel's.

    .venv/bin/python scripts/funnel_precision.py RUN_DIR [RUN_DIR ...] \\
        --out results/funnel_precision [--promotion results/promotion_replay/cache.json]

Writes ``<out>/table.md`` (a row per crowned program, then the precision per campaign and
over all of them) and ``<out>/results.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "scripts"))


def crowned_rows(run_dir: str, promotion: dict, seeds_key: str) -> tuple[str, object, list]:
    """(run name, its configuration, [(record, promoted claim or None)]) of the programs the
    run's funnel crowned, by seq."""
    import promote_run

    from discover.scoring.stats import beats

    config, records = promote_run.load_run(run_dir)
    name = os.path.basename(os.path.normpath(run_dir))
    rows = []
    for record in promote_run.funnel_crowned(records):
        if record.mutation.get("kind") == "start":
            continue  # a start program is no find
        fresh = promotion.get(f"{name}/{record.seq}/{seeds_key}")
        bounds = fresh["interval"] if fresh is not None else None
        if record.promotion_score is not None:  # promoted as the campaign ran
            fresh, bounds = record.promotion_score, record.promotion_interval
        kept = None if fresh is None else beats(bounds)
        rows.append((record, kept))
    return name, config, rows


def bench_run(name: str, config, rows: list, out: str, tasks: str, seeds: tuple[int, ...]):
    """Tier C (``tasks``) of the crowned programs of one run beside tuned adam: the
    ``BenchResult`` (cached in ``<out>/<name>/``)."""
    import programs
    from discover.api import bench_programs

    contenders = {f"seq{record.seq}": programs.parse(record.program) for record, _ in rows}
    print(f"funnel_precision: {name}: {len(contenders)} crowned program(s) on {tasks} ...",
          file=sys.stderr, flush=True)
    return bench_programs(contenders, tasks, seeds=seeds, out=os.path.join(out, name),
                          baselines=[], schedule=config.schedule, progress=True,
                          command="scripts/funnel_precision.py")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="campaign run directories")
    parser.add_argument("--out", default="runs/funnel_precision")
    parser.add_argument("--tasks", default="C", help="the suite judged on (default tier C)")
    parser.add_argument("--seeds", default="1,2,3", help="bench seeds (default 1,2,3)")
    parser.add_argument("--promotion", help="scripts/promote_run.py's cache.json")
    parser.add_argument("--promotion-seeds", default="3,4,5",
                        help="the promotion seeds of that cache (default 3,4,5)")
    args = parser.parse_args(argv)
    seeds = tuple(int(s) for s in args.seeds.split(","))
    promotion = {}
    if args.promotion:
        with open(args.promotion, encoding="utf-8") as f:
            promotion = json.load(f)
    from discover.atomic import write_text_atomic
    from discover.progress import format_score
    from discover.scoring.stats import format_interval, verdict

    lines = [(f"Every program a campaign's funnel crowned (its tier-B interval against adam below "
             f"-0.005; start programs left out), benched on {args.tasks} beside tuned adam "
             f"(seeds {args.seeds}, the wide grid, the campaign's schedule)."), "",
             (f"| campaign | seq | funnel score | promotion keeps it | {args.tasks} vs tuned adam | "
             "verdict |"),
             "|---|---:|---|---|---|---|"]
    summary, data = [], []
    for run_dir in args.runs:
        name, config, rows = crowned_rows(run_dir, promotion, args.promotion_seeds)
        result = bench_run(name, config, rows, args.out, args.tasks, seeds) if rows else None
        hits = promoted = promoted_hits = 0
        for record, kept in rows:
            key = f"seq{record.seq}"
            bounds = result.interval(key)
            said = verdict(bounds)
            beats = said.startswith("beats")
            hits += beats
            promoted += bool(kept)
            promoted_hits += bool(kept) and beats
            lines.append(
                f"| {name} | {record.seq} | {format_score(record.held_out_score)} "
                f"{format_interval(tuple(record.held_out_interval))} | "
                f"{'-' if kept is None else 'yes' if kept else 'no'} | "
                f"{format_score(result.difference(key, 'adam'))} {format_interval(bounds)} | "
                f"{said} |")
            data.append({"campaign": name, "seq": record.seq, "program": record.program,
                         "funnel_score": record.held_out_score,
                         "funnel_interval": record.held_out_interval, "promoted": kept,
                         "difference": result.difference(key, "adam"),
                         "interval": list(bounds) if bounds else None, "beats": beats})
        summary.append((name, len(rows), hits, promoted, promoted_hits))
    lines += ["", "| campaign | crowned | beat tuned adam | promoted | promoted that beat it |",
              "|---|---:|---:|---:|---:|"]
    for name, n, hits, promoted, promoted_hits in summary:
        lines.append(f"| {name} | {n} | {hits} | {promoted} | {promoted_hits} |")
    totals = [sum(row[i] for row in summary) for i in range(1, 5)]
    lines.append(f"| all ({len(summary)} campaigns) | {totals[0]} | {totals[1]} | "
                 f"{totals[2]} | {totals[3]} |")
    text = "\n".join(lines) + "\n"
    os.makedirs(args.out, exist_ok=True)
    write_text_atomic(os.path.join(args.out, "table.md"), text)
    write_text_atomic(os.path.join(args.out, "results.json"),
                      json.dumps({"tasks": args.tasks, "seeds": list(seeds), "programs": data},
                                 indent=1))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
