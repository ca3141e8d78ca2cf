"""Search power: K independent searches per (target, variant), each judged against its target.

Every search is a real campaign (``discover.experiments.search_power.search``: serial evaluation, no
funnel, ``--budget`` evaluations) in ``<out>/runs/<target>/<variant>/seed<k>``, run in
``--jobs`` processes (one XLA thread each).  A killed benchmark resumes: finished searches
are left alone, unfinished ones resume from their checkpoint, and the judge's runs are cached
in ``<out>/judge_cache.json``.  Then each search is judged with the yardstick
(``discover.experiments.search_power.Judge``: wide-grid tuning, seeds ``--judge-seeds``) and the success
rate with its 95% interval and the median evaluations and CPU seconds to success are printed
and written to ``<out>/table.md`` (with the command), ``runs.csv`` (one row a search),
``curves.csv`` and ``curves.png`` (best search score so far against evaluations: median and
quartiles over seeds; the references drawn at their search scores, as the searches score a
program: one seed, the search's rate grid), ``outcomes.json``.

    .venv/bin/python scripts/bench_search.py [--targets momentum,adam]
        [--variants default,restarts] [--seeds 5] [--budget 300] [--cpu-budget S] [--jobs 2]
        [--tasks a,b] [--judge-tasks B] [--base '{"population_size": 50}'] [--out runs/search_power]

The committed studies (``results/search_power``, ``results/search_power_cpu``,
``results/rediscovery_b``) keep their run directories, judge cache and curves in one archive,
``runs.tar.xz``, kept in git history: unpack it first (``scripts/unpack_runs.py
results/search_power``), then ``--out results/search_power`` resumes and re-judges them without
training a search again.

``--bar-check`` runs no search: it judges each target's exemplars (the baselines of the class a
success belongs to) by the target's rule on the judge's tasks and seeds, prints whether they
meet it, and writes nothing but the judge's cache.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import csv
import io
import json
import multiprocessing
import os
import sys
import time

os.environ.setdefault("XLA_FLAGS",
                      "--xla_cpu_multi_thread_eigen=false")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np

from discover.errors import UserError
from discover.experiments import search_power as sp
from discover.experiments import search_power_tables as tables


def _names(text: str, known: dict, what: str) -> list:
    names = [n for n in text.split(",") if n]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise UserError(f"--{what}: unknown {unknown or 'none given'}; known: {', '.join(known)}")
    return [known[n] for n in names]


def _search(path: str, config_data: dict, cpu_seconds: float | None
            ) -> tuple[str, int, float]:
    from discover.config import CampaignConfig

    started = time.time()
    config = CampaignConfig.from_dict(config_data)
    done = (sp.search(path, config) if cpu_seconds is None
            else sp.search_for_cpu(path, config, cpu_seconds))
    return path, done, time.time() - started


def run_searches(work: list[tuple[str, dict]], jobs: int, cpu_seconds: float | None) -> None:
    started = time.time()
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=context) as pool:
        futures = [pool.submit(_search, path, data, cpu_seconds) for path, data in work]
        for i, future in enumerate(concurrent.futures.as_completed(futures), 1):
            path, done, seconds = future.result()
            print(f"  [{i}/{len(work)}] {os.path.relpath(path)}: {done} evaluations "
                  f"({seconds:.0f} s; {time.time() - started:.0f} s in all)", flush=True)


def csv_text(header: list[str], rows: list[list]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def judged_tasks(text: str | None, config) -> list[str]:
    """``--judge-tasks``: a tier's tasks (``B``, ``C``), named tasks, or the searches'."""
    import tasks
    from discover.resolve import resolve_tasks

    if not text:
        return list(resolve_tasks(config).tasks)
    if text in tasks.TIERS:
        return tasks.names(text)
    names = text.split(",")
    for name in names:
        tasks.get(name)  # a ValueError naming the known tasks
    return names


def limits_sentence(judge, names) -> str:
    """Which of the named baselines' (the references', the exemplars') tuned rates sit at the
    wide grid's limit, task by task: a comparison with one of them is a claim only where its
    rate is inside the grid."""
    import programs

    names = sorted(set(names))
    limited = {n: judge.at_limit(programs.BASELINES[n]) for n in names}
    if not any(limited.values()):
        return (f"No tuned rate of a reference or exemplar ({', '.join(names)}) is at the wide "
                "grid's limit on any judged task.")
    return "Tuned rates at the wide grid's limit: " + "; ".join(
        f"{n} on {', '.join(t)}" for n, t in limited.items() if t) + "."


def open_judge(judge_tasks: list[str], args) -> sp.Judge:
    """The judge of ``--judge-seeds`` on ``judge_tasks``, cached in ``<out>/judge_cache.json``
    (persistent XLA compile cache on)."""
    from discover.scoring import compile_cache

    compile_cache.enable()
    os.makedirs(args.out, exist_ok=True)
    seeds = tuple(int(s) for s in args.judge_seeds.split(","))
    return sp.Judge(judge_tasks, seeds, os.path.join(args.out, sp.JUDGE_CACHE))


def bar_check_only(targets, judge_tasks: list[str], args) -> int:
    """``--bar-check``: the bar check of every target, printed; the judge's runs cached."""
    judge = open_judge(judge_tasks, args)
    print(f"Judged on {', '.join(judge_tasks)} with seeds {args.judge_seeds}.")
    for target in targets:
        print(tables.bar_check(judge, target) or f"{target.name}: no exemplars", flush=True)
        judge.cache.save()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", default="momentum,adam")
    parser.add_argument("--variants", default="default")
    parser.add_argument("--seeds", type=int, default=5, help="searches per (target, variant)")
    parser.add_argument("--budget", type=int, default=300, help="evaluations per search")
    parser.add_argument("--cpu-budget", type=float,
                        help="CPU seconds a search (summed evaluation seconds); --budget "
                             "then caps its evaluations")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--tasks", help="search tasks (default: the search set)")
    parser.add_argument("--judge-tasks",
                        help="the judge's tasks: names, or a tier (B, C); default: the "
                             "searches' tasks")
    parser.add_argument("--judge-seeds", default="1,2,3",
                        help="the judge's training seeds (default: none the searches used)")
    parser.add_argument("--base", default="{}", help="campaign settings for every search (JSON)")
    parser.add_argument("--out", default=os.path.join(ROOT, "runs", "search_power"),
                        help="where the searches, caches and tables go (default runs/"
                             "search_power; the committed studies are in results/, their run "
                             "directories in runs.tar.xz: scripts/unpack_runs.py)")
    parser.add_argument("--bar-check", action="store_true",
                        help="only judge the targets' exemplars by their rule (no search)")
    args = parser.parse_args()
    try:
        targets = _names(args.targets, sp.TARGETS, "targets")
        variants = _names(args.variants, sp.VARIANTS, "variants")
        base = json.loads(args.base)
        task_names = args.tasks.split(",") if args.tasks else None
        configs = {(t.name, v.name, k): sp.campaign_config(t, v, k, args.budget, task_names,
                                                            base)
                   for t in targets for v in variants for k in range(args.seeds)}
        judge_tasks = judged_tasks(args.judge_tasks, next(iter(configs.values())))
        if args.cpu_budget is not None and not args.cpu_budget > 0:
            raise UserError("--cpu-budget must be > 0 seconds")
    except (UserError, ValueError) as err:
        print(f"bench_search: {err}", file=sys.stderr)
        return 2
    if args.bar_check:
        return bar_check_only(targets, judge_tasks, args)
    # variant by variant, so that a benchmark stopped early has whole variants for every target
    order = {v.name: i for i, v in enumerate(variants)}
    work = [(sp.run_path(args.out, *key), config.to_dict())
            for key, config in sorted(configs.items(), key=lambda item: order[item[0][1]])]
    budget = (f"{args.budget} evaluations" if args.cpu_budget is None else
              f"{args.cpu_budget:g} CPU seconds (at most {args.budget} evaluations)")
    print(f"{len(work)} searches of {budget}; {args.jobs} jobs", flush=True)
    run_searches(work, args.jobs, args.cpu_budget)

    from discover import plots
    from discover.atomic import write_bytes_atomic, write_text_atomic

    judge = open_judge(judge_tasks, args)
    judge_seeds = judge.seeds
    outcomes = []
    for (target, variant, seed) in configs:
        outcome = sp.judge_run(sp.run_path(args.out, target, variant, seed),
                               sp.TARGETS[target], variant, seed, judge, args.cpu_budget)
        print(f"  judged {target}/{variant}/seed{seed}: "
              f"{'success at ' + str(outcome.evaluations_to_success) if outcome.success else 'no success'}"
              f" ({outcome.judged} programs judged)", flush=True)
        outcomes.append(outcome)

    summaries = tables.summarize(outcomes)
    command = "python scripts/bench_search.py " + " ".join(sys.argv[1:])
    import programs

    search_seeds = sorted({s for c in configs.values() for s in c.eval_seeds})
    shared = sorted(set(search_seeds) & set(judge_seeds))
    overlap = (f"the searches trained on seed(s) {', '.join(map(str, search_seeds))}: "
               + ("held out from the judge" if not shared else
                  f"seed(s) {', '.join(map(str, shared))} shared, an in-sample judgement"))
    references = {t.name: {name: float(np.median([np.mean(s) for s in
                                                  judge.seed_scores(programs.BASELINES[name])]))
                           for name in t.references} for t in targets}
    parity = tables.parity_table(outcomes, {t.name: t for t in targets})
    parity_lines = [("Searches whose judged program is as good as one of the target's "
                     "exemplars (non-inferior: its interval against the exemplar below "
                     f"+{sp.MIN_EFFECT}), a rediscovery even where the bar is above the "
                     "exemplar (see the bar check):"), "", parity] if parity else []
    lines = [f"# Search power\n\n`{command.strip()}`\n",
             "Targets: " + "; ".join(f"**{t.name}**: {t.description}" for t in targets) + ".",
             f"Judged on {', '.join(judge_tasks)} with seeds {args.judge_seeds} ({overlap}; "
             f"wide-grid tuning, 95% interval, effect beyond {sp.MIN_EFFECT}). Success rate "
             f"interval: "
             f"Clopper-Pearson 95%. Variants: " + "; ".join(f"**{v.name}**: {v.description}"
                                                           for v in variants) + ".", "",
             tables.summary_table(summaries, budget),
             ("What the searches did (medians over a variant's runs; counters of the campaign: "
              "children that were cache hits, twins dropped at the cap, invalid children, "
              "re-mutations of neutral children, hurdle rejections, restarts, island "
              "migrations and resets):"), "", tables.diagnostics_table(outcomes),
             ("Each search's judged program (its first success, or its best eligible program "
              "when none succeeded), simplified, and its median difference from each reference "
              "over the judged tasks with the 95% interval (lower is better):"), "",
             tables.judgements_table(outcomes, {t.name: t for t in targets}),
             *parity_lines,
             *[line for t in targets for line in (tables.bar_check(judge, t), "") if line],
             "Judged search-set scores of the references (median over tasks, 0 = tuned adam): "
             + ", ".join(f"{n} {v:+.3f}" for r in references.values() for n, v in r.items())
             + ". " + limits_sentence(judge, ["adam", *{n for r in references.values() for n in r},
                                              *{n for t in targets for n in t.exemplars}]),
             "", "![best so far](curves.png)", ""]
    table = "\n".join(lines)
    write_text_atomic(os.path.join(args.out, "table.md"), table)
    write_text_atomic(os.path.join(args.out, "outcomes.json"), tables.outcomes_json(outcomes))
    write_text_atomic(os.path.join(args.out, "runs.csv"), csv_text(
        ["target", "variant", "seed", "evaluations", "cpu_seconds", "best_search_score",
         "success", "evaluations_to_success", "cpu_seconds_to_success", "judged", "program"],
        [[o.target, o.variant, o.seed, o.evaluations, f"{o.cpu_seconds:.1f}",
          f"{o.best_search_score:.6g}", int(o.success), o.evaluations_to_success or "",
          "" if o.cpu_seconds_to_success is None else f"{o.cpu_seconds_to_success:.1f}",
          o.judged, (o.program or "").replace("\n", "\\n")] for o in outcomes]))
    curves: dict = {}
    rows = []
    for (target, variant, seed) in configs:
        best = sp.best_so_far(sp.run_path(args.out, target, variant, seed), args.budget,
                              args.cpu_budget)
        curves.setdefault(target, {}).setdefault(variant, []).append(best)
        rows += [[target, variant, seed, i + 1, f"{b:.6g}"] for i, b in enumerate(best)
                 if np.isfinite(b)]
    write_text_atomic(os.path.join(args.out, "curves.csv"), csv_text(
        ["target", "variant", "seed", "evaluation", "best_search_score"], rows))
    levels = {t.name: sp.search_scores(next(c for k, c in configs.items() if k[0] == t.name),
                                       t.references) for t in targets}
    write_bytes_atomic(os.path.join(args.out, "curves.png"),
                       plots.search_power_figure(curves, levels))
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
