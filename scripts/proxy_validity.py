"""Proxy validity: does the search set rank optimizers the way the tier-C tasks do?

A fixed panel of programs (15 baselines, three rescaled and seven perturbed baselines,
the found programs in ``results/*/best``, and random mutants of the baselines that still
train) is scored with the yardstick (``discover.scoring.bench``: every rate tuned on the wide grid,
seeds 0, 1, 2, scores against tuned adam, the median over tasks) on the search set and on
tier C.  Printed and written to ``<out>/table.md``: Spearman's rank correlation between the
search-set median and the tier-C median over the panel, with a percentile bootstrap interval
(programs resampled), and the same for each search task alone (which tasks predict, which
mislead), and for tier B when asked.

Every validation loss is cached per (task, program) in ``<out>/cache/<task>/<fingerprint>.json``
(``discover.scoring.bench.Cache``), written after each window of rates, so a killed run resumes where
it stopped and a rerun trains nothing.  Work runs in ``--jobs`` processes (one XLA thread
each), a chunk of programs on one task at a time.  Mutants are screened on the search set
first: one whose median search score is 1 or worse (no better than the untrained model on
half the tasks) does not train and is left out of the panel before tier C.

    .venv/bin/python scripts/proxy_validity.py [--out runs/proxy] [--jobs 2]
        [--tiers search,C] [--seeds 0,1,2] [--mutants 14] [--found GLOB]

``--out results/proxy`` reruns the committed table from its cache (nothing trains).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import glob
import multiprocessing
import os
import sys
import time

os.environ.setdefault("XLA_FLAGS",
                      "--xla_cpu_multi_thread_eigen=false")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PANEL_BASELINES = ("adadelta", "adagrad", "adam", "adam_warmup_cosine", "adamw", "lion",
                   "lookahead", "momentum", "nadam", "nesterov", "radam", "ranger", "rmsprop",
                   "sgd", "signsgd")
"""The panel's baselines, and the parents of its mutants: the library as it was when the
committed table was made (later additions to ``programs.BASELINES``, such as ademamix and
cautious_adam, would change the panel and the mutants drawn, and the table would no longer
rebuild from its cache)."""
RESCALED = (("adam", 0.01), ("lion", 100.0), ("sgd", 0.01))
PERTURBED = ("adam", "lion", "momentum", "nesterov", "rmsprop", "radam", "adamw")
BUCKETS, MAX_SLOTS = (32, 64), 4
"""Statement buckets: a program runs in the smallest that holds it (the VM's cost grows with
the bucket, and only a few baselines need more than 32 statements)."""
CHUNK = 4
FOUND = os.path.join("results", "*", "best", "program.opt")
"""The found programs of the committed panel (``--found``)."""
RESAMPLES = 2000
GOOD = 0.25
"""The panel's good programs, within this of tuned adam on the target tier: ranking them is
the hard part (a program that does not train is easy to rank last)."""
SUBSET_MIN, SPLITS, TOP_SUBSETS = 3, 500, 8
"""Task subsets considered (at least 3 tasks), random halves for the out-of-sample check, and
subsets listed."""


# -- the panel -------------------------------------------------------------------------------

def rescaled(name: str, factor: float):
    """Baseline ``name`` with its update multiplied by ``factor``."""
    import programs

    base = programs.BASELINES[name]
    lines = str(base).rstrip().splitlines()
    out = lines[-1].strip().removeprefix("return ").split(",")[0].strip()
    lines.insert(len(lines) - 1, f"    {out} = {factor!r} * {out}")
    return programs.parse("\n".join(lines).replace(f"def {base.name}(", f"def {base.name}_x(", 1))


def fits(program) -> bool:
    return len(program.body) <= BUCKETS[0] and len(program.slots) <= MAX_SLOTS


def panel(mutants: int, seed: int = 2026, found: str = FOUND
          ) -> list[tuple[str, str, object]]:
    """``(name, kind, program)`` for every program of the panel, in a fixed order; ``found``:
    a glob (relative to the repository) of ``RUN/best/program.opt`` files."""
    import programs
    from programs.mutate import mutate, perturb_constant

    rng = np.random.default_rng(seed)
    rows = [(name, "baseline", programs.BASELINES[name]) for name in PANEL_BASELINES]
    for path in sorted(glob.glob(os.path.join(ROOT, found))):
        rows.append((f"found:{path.split(os.sep)[-3]}", "found", programs.load(path)))
    rows += [(f"{n} x{f:g}", "rescaled", rescaled(n, f)) for n, f in RESCALED]
    seen = {p.fingerprint() for _, _, p in rows}
    for name in PERTURBED:
        for _ in range(20):
            child = perturb_constant(programs.BASELINES[name], rng).program
            if child is not None and child.fingerprint() not in seen:
                rows.append((f"{name}~const", "perturbed", child))
                seen.add(child.fingerprint())
                break
    parents = [n for n in PANEL_BASELINES if fits(programs.BASELINES[n])]
    made = 0
    while made < mutants:
        origin = parents[int(rng.integers(len(parents)))]
        program = programs.BASELINES[origin]
        for _ in range(int(rng.integers(1, 4))):
            child = mutate(program, rng).program
            program = child if child is not None else program
        if fits(program) and program.fingerprint() not in seen:
            made += 1
            rows.append((f"mutant{made:02d}<{origin}", "mutant", program))
            seen.add(program.fingerprint())
    return rows


# -- the work: a chunk of programs tuned on one task, in a worker process -------------------

_ENGINES: dict = {}


def tune_chunk(task_name: str, texts: list[str], seeds: tuple[int, ...], cache_dir: str) -> dict:
    """Wide tunings of the programs (as text) on one task: ``{"initial": [...], "tunings":
    {fingerprint: {...}}}``, every run cached under ``cache_dir``."""
    import programs
    from discover.scoring.bench import Cache, TaskEngine

    os.makedirs(cache_dir, exist_ok=True)

    def engine_for(program) -> TaskEngine:
        bucket = next(b for b in BUCKETS if len(program.body) <= b)
        if (task_name, bucket) not in _ENGINES:
            untrained = Cache(os.path.join(cache_dir, "untrained.json"))
            _ENGINES[task_name, bucket] = TaskEngine(task_name, seeds, 3, bucket, MAX_SLOTS,
                                                     untrained)
        return _ENGINES[task_name, bucket]

    out = {"initial": engine_for(programs.BASELINES["sgd"]).initial_losses().tolist(),
           "tunings": {}}
    for text in texts:
        program = programs.parse(text)
        fingerprint = program.fingerprint()
        engine = engine_for(program)
        t = engine.tune(program, Cache(os.path.join(cache_dir, f"{fingerprint}.json")))
        out["tunings"][fingerprint] = t.to_json()
    return out


def _tuning(data: dict):
    from discover.scoring.tuning import Tuning

    return Tuning.from_json(data)


def score(rows, task_names, seeds, out_dir, jobs) -> dict[str, dict[str, object]]:
    """``{task: {program name: TaskScore}}`` for every row on every task."""
    from discover.scoring.bench import task_scores

    work = []
    for task in task_names:
        texts = [str(p) for _, _, p in rows]
        for i in range(0, len(texts), CHUNK):
            work.append((task, texts[i:i + CHUNK]))
    results: dict[str, dict] = {t: {"tunings": {}} for t in task_names}
    started = time.time()
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=context) as pool:
        futures = {pool.submit(tune_chunk, task, texts, tuple(seeds),
                               os.path.join(out_dir, "cache", task)): (task, texts)
                   for task, texts in work}
        for done, future in enumerate(concurrent.futures.as_completed(futures), 1):
            task, _ = futures[future]
            answer = future.result()
            results[task]["initial"] = answer["initial"]
            results[task]["tunings"].update(answer["tunings"])
            print(f"  [{done}/{len(work)}] {task}: {time.time() - started:.0f} s", flush=True)
    scores = {}
    for task in task_names:
        tunings = {name: _tuning(results[task]["tunings"][p.fingerprint()]) for name, _, p in rows}
        scores[task] = task_scores(task, tunings, np.array(results[task]["initial"]))
    return scores


# -- the statistics ---------------------------------------------------------------------------

def spearman(x, y) -> float:
    from scipy import stats

    return float(stats.spearmanr(x, y).statistic)


def spearman_interval(x, y) -> tuple[float, float]:
    """Percentile bootstrap interval of Spearman's rho, programs resampled in pairs."""
    from scipy import stats

    result = stats.bootstrap((np.asarray(x), np.asarray(y)), lambda a, b: spearman(a, b),
                             paired=True, vectorized=False, n_resamples=RESAMPLES,
                             method="percentile", rng=np.random.default_rng(0))
    low, high = result.confidence_interval
    return float(low), float(high)


def medians(scores, rows, task_names) -> np.ndarray:
    from discover.scoring.stats import aggregate

    return np.array([aggregate(scores[t][name].score for t in task_names) for name, _, _ in rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=os.path.join(ROOT, "runs", "proxy"),
                        help="tables and cache (results/proxy: the committed panel, cached)")
    parser.add_argument("--found", default=FOUND,
                        help="glob of found programs for the panel (default: %(default)s)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--tiers", default="search,C",
                        help="search and the target tier last; B in between adds a B column")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--mutants", type=int, default=14)
    args = parser.parse_args()

    import tasks

    seeds = tuple(int(s) for s in args.seeds.split(","))
    tiers = args.tiers.split(",")
    if tiers[0] != "search" or len(tiers) < 2:
        parser.error("--tiers starts with search and names a target tier")
    tier_tasks = {tier: tasks.names(tier) for tier in tiers}
    rows = panel(args.mutants, found=args.found)
    print(f"{len(rows)} programs; tiers {', '.join(f'{t} ({len(n)} tasks)' for t, n in tier_tasks.items())}; "
          f"seeds {seeds}; {args.jobs} jobs", flush=True)
    print("stage 1: the search set", flush=True)
    search_scores = score(rows, tier_tasks["search"], seeds, args.out, args.jobs)
    search_median = medians(search_scores, rows, tier_tasks["search"])
    dropped = [name for (name, kind, _), m in zip(rows, search_median)
               if kind == "mutant" and not m < 1.0]
    kept = [r for r, m in zip(rows, search_median) if r[0] not in dropped]
    print(f"{len(kept)} programs in the panel ({len(dropped)} mutants do not train: "
          f"{', '.join(dropped) or 'none'})", flush=True)
    target_scores = {}
    for tier in tiers[1:]:
        print(f"stage 2: tier {tier}", flush=True)
        target_scores[tier] = score(kept, tier_tasks[tier], seeds, args.out, args.jobs)
    write_tables(args, kept, dropped, tiers, tier_tasks, search_scores, target_scores)


def choose_tasks(search_scores, rows, task_names, y, target) -> tuple[list[str], dict]:
    """The search-task subsets that rank the panel most like the target tier, and whether
    choosing one beats keeping every task out of sample (``discover.experiments.task_selection``)."""
    from discover.experiments.task_selection import split_half_selection, subset_correlations

    x = np.array([[search_scores[t][name].score for t in task_names] for name, _, _ in rows])
    chosen, rhos = subset_correlations(x, y, SUBSET_MIN)
    order = np.argsort(-rhos, kind="stable")
    full = chosen.index(tuple(range(len(task_names))))
    halves = split_half_selection(x, y, SUBSET_MIN, SPLITS, np.random.default_rng(0))
    gain_low, gain_high = np.percentile(halves.gain, [2.5, 97.5])

    def names(c):
        return ", ".join(task_names[i] for i in c)

    lines = [(f"Subsets of at least {SUBSET_MIN} search tasks, by Spearman rho of their median "
             f"with the tier-{target} median (all {len(task_names)} tasks: "
             f"{rhos[full]:+.3f}, rank {int(np.where(order == full)[0][0]) + 1} of "
             f"{len(chosen)}):"), "", "| subset | tasks | rho |", "|---|---|---|"]
    lines += [f"| {len(chosen[i])} tasks | {names(chosen[i])} | {rhos[i]:+.3f} |"
              for i in order[:TOP_SUBSETS]]
    lines += ["", (f"Out of sample ({SPLITS} random halves of the panel: the best subset chosen "
              f"on one half, measured on the other): chosen subset rho median "
              f"{np.median(halves.selected):+.3f}, all tasks {np.median(halves.full):+.3f}; "
              f"gain median {np.median(halves.gain):+.3f}, 95% of splits in "
              f"[{gain_low:+.3f}, {gain_high:+.3f}], positive in "
              f"{np.mean(halves.gain > 0):.0%}.")]
    selection = {"subsets": [{"tasks": [task_names[i] for i in chosen[j]],
                              "rho": float(rhos[j])} for j in order[:TOP_SUBSETS]],
                 "all_tasks_rho": float(rhos[full]),
                 "split_half": {"selected_median": float(np.median(halves.selected)),
                                "full_median": float(np.median(halves.full)),
                                "gain_median": float(np.median(halves.gain)),
                                "gain_95": [float(gain_low), float(gain_high)],
                                "gain_positive": float(np.mean(halves.gain > 0))}}
    return lines, selection


def write_tables(args, rows, dropped, tiers, tier_tasks, search_scores, target_scores) -> None:
    from discover.atomic import write_json_atomic, write_text_atomic
    from discover.scoring.stats import signed

    target = tiers[-1]
    y = medians(target_scores[target], rows, tier_tasks[target])
    good = y < GOOD
    panel_line = (f"Panel: {len(rows)} programs ({', '.join(sorted({k for _, k, _ in rows}))}); "
                  f"mutants left out because they do not train: {len(dropped)}. Seeds "
                  f"{args.seeds}; every rate tuned on the wide grid; score 0 = tuned adam.")
    lines = [panel_line, "",
             (f"| predictor | Spearman vs tier-{target} median | 95% interval | among the "
              f"{int(good.sum())} within {GOOD} of tuned adam on tier {target} | 95% interval |"),
             "|---|---|---|---|---|"]
    predictors = [(f"search set median ({len(tier_tasks['search'])} tasks)",
                   medians(search_scores, rows, tier_tasks["search"]))]
    for tier in tiers[1:-1]:
        predictors.append((f"tier {tier} median", medians(target_scores[tier], rows,
                                                           tier_tasks[tier])))
    for task in tier_tasks["search"]:
        predictors.append((f"{task} alone",
                           np.array([search_scores[task][name].score for name, _, _ in rows])))
    summary = {}
    for label, x in predictors:
        rho, (low, high) = spearman(x, y), spearman_interval(x, y)
        rho_good, (low_good, high_good) = (spearman(x[good], y[good]),
                                           spearman_interval(x[good], y[good]))
        summary[label] = {"rho": rho, "interval": [low, high], "rho_good": rho_good,
                          "interval_good": [low_good, high_good]}
        lines.append(f"| {label} | {rho:+.3f} | [{low:+.3f}, {high:+.3f}] | {rho_good:+.3f} | "
                     f"[{low_good:+.3f}, {high_good:+.3f}] |")
    selection_lines, selection = choose_tasks(search_scores, rows, tier_tasks["search"], y,
                                              target)
    lines += ["", *selection_lines]
    lines += ["", f"| program | kind | search median | tier-{target} median |", "|---|---|---|---|"]
    x = predictors[0][1]
    for (name, kind, _), a, b in sorted(zip(rows, x, y), key=lambda r: r[2]):
        lines.append(f"| {name} | {kind} | {signed(a, 3)} | {signed(b, 3)} |")
    command = "python scripts/proxy_validity.py " + " ".join(sys.argv[1:])
    text = f"# Proxy validity\n\n`{command.strip()}`\n\n" + "\n".join(lines) + "\n"
    write_text_atomic(os.path.join(args.out, "table.md"), text)
    programs_json = [{"name": name, "kind": kind, "program": str(p),
                      "scores": {t: search_scores[t][name].score for t in tier_tasks["search"]}
                      | {t: target_scores[tier][t][name].score for tier in tiers[1:]
                         for t in tier_tasks[tier]}} for name, kind, p in rows]
    write_json_atomic(os.path.join(args.out, "results.json"),
                      {"seeds": args.seeds, "tiers": tier_tasks, "correlations": summary,
                       "dropped": dropped, "selection": selection, "programs": programs_json})
    print(text)


if __name__ == "__main__":
    main()
