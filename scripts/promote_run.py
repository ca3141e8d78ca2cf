"""Promotion after the fact: the hall of fame a finished campaign would have with
``promotion_seeds``.

Promotion changes no child a search breeds (selection reads the search score only): it adds a
score to the records whose held-out interval would crown them and reorders the hall of fame.
So it replays exactly on a run's log: each such record is scored on the campaign's held-out
tasks over the fresh seeds, its rates walked from its held-out ones, by the evaluator a
worker of that campaign would build (``discover.search.pool.EvaluationWorker``: same tasks,
grid, bucket and schedule), and ranked as ``discover.search.individual.Ranked`` ranks.

    .venv/bin/python scripts/promote_run.py RUN_DIR [RUN_DIR ...] --seeds 3,4,5 \\
        --out results/promotion_replay

Writes ``<out>/cache.json`` (one promotion per run name and seq: an interrupted replay
resumes, a finished one trains nothing) and ``<out>/table.md``: every record the funnel would
crown, its funnel score and interval, its promotion score and interval, and whether the
campaign's claim survives.  One process, one XLA thread (``--threads``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def load_run(run_dir: str):
    """(configuration with its task lists resolved, log records) of a run directory."""
    from discover.atomic import read_json
    from discover.config import CampaignConfig
    from discover.resolve import resolve_tasks
    from discover.rundir import CONFIG_FILE, LOG_FILE
    from discover.rundir.files import read_records

    config = CampaignConfig.from_saved(read_json(os.path.join(run_dir, CONFIG_FILE)),
                                       source=os.path.join(run_dir, CONFIG_FILE))
    records = read_records(os.path.join(run_dir, LOG_FILE))
    return resolve_tasks(config), records


def funnel_crowned(records) -> list:
    """The records whose held-out evaluation would have been promoted (``pool.promotes``'s
    rule on the logged interval), by seq."""
    from discover.scoring.stats import beats

    return sorted((r for r in records
                   if r.held_out_status is None and beats(r.held_out_interval)),
                  key=lambda r: r.seq)


def promote(config, record, seeds: tuple[int, ...]) -> dict:
    """``record``'s promotion as a worker of ``config`` with ``promotion_seeds = seeds``
    computes it: JSON-ready (score, interval, per-task scores and rates)."""
    import programs
    from discover.scoring.evaluate import cached_evaluator

    evaluator = cached_evaluator(list(config.held_out_tasks), seeds=seeds,
                                 lr_grid=config.lr_grid, max_statements=config.max_statements,
                                 max_slots=config.max_slots, schedule=config.schedule)
    result = evaluator.evaluate(programs.parse(record.program), starts=record.held_out_lr)
    return {"score": float(result.aggregate), "status": result.status,
            "interval": list(result.interval) if result.interval is not None else None,
            "scores": {s.task: s.score for s in result.scores},
            "lr": {s.task: s.lr for s in result.scores}}


def table(rows: list[dict], seeds) -> str:
    from discover.progress import format_score
    from discover.scoring.stats import MIN_EFFECT, beats, format_interval

    lines = [(f"Promotion replayed (held-out tasks again over seeds "
             f"{', '.join(map(str, seeds))}, rates walked from the held-out ones) on every "
             f"record the funnel would crown (held-out interval below -{MIN_EFFECT})."), "",
             ("| run | seq | program | funnel score (seeds of the funnel) | promotion score "
             "(fresh seeds) | claim after promotion | rank in the promoted hall |"),
             "|---|---:|---|---|---|---|---:|"]
    for row in rows:
        fresh = row["promotion"]
        bounds = tuple(fresh["interval"]) if fresh["interval"] else None
        kept = beats(bounds)
        claim = ("start program, not a find" if row["start"] else
                 "crowned" if kept else "not crowned (within noise or worse)")
        lines.append(
            f"| {row['run']} | {row['seq']} | {row['what']} | {format_score(row['funnel'])} "
            f"{format_interval(tuple(row['funnel_interval']))} | "
            f"{format_score(fresh['score'])} {format_interval(bounds) or '-'} | {claim} | "
            f"{row['rank']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="campaign run directories")
    parser.add_argument("--seeds", default="3,4,5", help="promotion seeds (default 3,4,5)")
    parser.add_argument("--out", default="runs/promotion_replay")
    parser.add_argument("--threads", type=int, default=1, help="XLA threads (default 1)")
    args = parser.parse_args(argv)
    if args.threads == 1:
        os.environ.setdefault(
            "XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")
    seeds = tuple(int(s) for s in args.seeds.split(","))
    from discover.atomic import write_text_atomic
    from discover.scoring import compile_cache

    compile_cache.enable()
    os.makedirs(args.out, exist_ok=True)
    cache_path = os.path.join(args.out, "cache.json")
    cache = {}
    if os.path.exists(cache_path):
        with open(cache_path, encoding="utf-8") as f:
            cache = json.load(f)
    key_seeds = ",".join(map(str, seeds))
    rows = []
    for run_dir in args.runs:
        config, records = load_run(run_dir)
        if set(seeds) & set(config.held_out_seeds):
            parser.error(f"{run_dir}: --seeds must not share a seed with its held_out_seeds "
                         f"{list(config.held_out_seeds)}")
        name = os.path.basename(os.path.normpath(run_dir))
        candidates = funnel_crowned(records)
        for i, record in enumerate(candidates, start=1):
            key = f"{name}/{record.seq}/{key_seeds}"
            if key not in cache:
                print(f"promote_run: {name} seq {record.seq} ({i}/{len(candidates)}) ...",
                      file=sys.stderr, flush=True)
                cache[key] = promote(config, record, seeds)
                write_text_atomic(cache_path, json.dumps(cache, indent=1, sort_keys=True))
            start = record.mutation.get("kind") == "start"
            rows.append({"run": name, "seq": record.seq, "funnel": record.held_out_score,
                         "funnel_interval": record.held_out_interval, "start": start,
                         "what": (f"start program {record.mutation.get('detail')}" if start
                                  else f"{record.mutation.get('kind')} mutation"),
                         "promotion": cache[key]})
        # The promoted hall: promoted first by their fresh score (Ranked's order); the
        # records the funnel did not crown come after every one of these.
        mine = [r for r in rows if r["run"] == name]
        for rank, row in enumerate(sorted(mine, key=lambda r: r["promotion"]["score"]), 1):
            row["rank"] = rank
    text = table(rows, seeds)
    write_text_atomic(os.path.join(args.out, "table.md"), text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
