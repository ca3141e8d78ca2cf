"""docs/tasks.md's task table: every task of the search set and tiers B and C (and ``--extra``),
with its family, parameters, steps, batch, data, measured seconds per run and adam's tuned rate.

* s/run: one window of 3 learning rates x 1 seed through the compile-once engine
  (``tasks.train.Trainer``, XLA on one thread, as in the search's workers) after its compile,
  the median of 3, divided by 3.  A search candidate costs about 1.9 windows per task (the
  walk, ``scripts/bench_eval.py``), so the search set's "s/candidate" is 1.9 x 3 x the sum.
* adam: the rate tuned on the wide grid over seeds 0, 1, 2 (``discover.scoring.bench``, the
  yardstick), with the validation loss before -> after (geometric means over the seeds);
  ``!`` marks a rate at the grid's limit.  The runs are cached where
  ``scripts/proxy_validity.py`` caches them (``--cache``), so its runs are reused and these
  are reused by it.

With ``--write-costs`` the measured seconds per run also go to ``tasks/data/costs.json``
(atomically; tasks not measured in this run keep their old entry), which ``discover tasks``
shows.  Measure on an idle machine.

    .venv/bin/python scripts/task_table.py [--extra] [--tiers search,B,C] [--cache DIR]
                                           [--write-costs]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("XLA_FLAGS",
                      "--xla_cpu_multi_thread_eigen=false")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def data_name(source: str) -> str:
    if "kjv" in source:
        return "KJV Genesis" if source.startswith("Genesis") else "KJV Bible"
    if "digits" in source:
        return "8x8 digits"
    return "synthetic" if "synthetic" in source else "none (analytic)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiers", default="search,B,C")
    parser.add_argument("--extra", action="store_true", help="add the extra tier")
    parser.add_argument("--write-costs", action="store_true",
                        help="also write the seconds per run to tasks/data/costs.json")
    parser.add_argument("--cache", default=os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "results", "proxy", "cache"))
    args = parser.parse_args()

    import jax
    import numpy as np

    import programs
    import tasks
    from discover.scoring import compile_cache
    from discover.scoring.bench import Cache, TaskEngine
    from discover.scoring.tuning import mean_log_loss
    from tasks.train import Trainer

    compile_cache.enable()
    tiers = args.tiers.split(",") + (["extra"] if args.extra else [])
    adam = programs.BASELINES["adam"]
    print("| task | tier | family | parameters | steps | batch | data | s/run | adam rate "
          "| valid loss (adam) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    totals: dict[str, float] = {}
    measured: dict[str, float] = {}
    for tier in tiers:
        for name in tasks.names(tier):
            task = tasks.get(name)
            trainer = Trainer(task, seeds=(0,), lr_grid_size=3)
            encoded = trainer.encode(adam)
            trainer.run(encoded)
            times = []
            for _ in range(3):
                start = time.perf_counter()
                jax.block_until_ready(trainer.run(encoded).valid_losses)
                times.append(time.perf_counter() - start)
            per_run = statistics.median(times) / 3
            totals[tier] = totals.get(tier, 0.0) + per_run
            measured[name] = round(per_run, 4)
            folder = os.path.join(args.cache, name)
            os.makedirs(folder, exist_ok=True)
            engine = TaskEngine(name, (0, 1, 2), 3, 32, 4,
                                Cache(os.path.join(folder, "untrained.json")))
            tuning = engine.tune(adam, Cache(os.path.join(folder, f"{adam.fingerprint()}.json")))
            initial = float(np.exp(mean_log_loss(engine.initial_losses())))
            loss = float(np.exp(mean_log_loss(tuning.best_losses)))
            mark = "!" if tuning.at_limit else ""
            print(f"| `{name}` | {tier} | {task.family} | {trainer.data.size:,} | {task.steps} "
                  f"| {task.batch_size or '-'} | {data_name(task.data_source)} "
                  f"| {per_run:.3f} | {tuning.lr:.3g}{mark} "
                  f"| {initial:.3g} -> {loss:.3g} |", flush=True)
    print()
    for tier, total in totals.items():
        print(f"tier {tier}: {total:.3f} s per run of every task; x3 rates x1.9 windows "
              f"(the search's walk, one seed): {total * 3 * 1.9:.2f} s")
    print(f"jax {jax.__version__}; {os.cpu_count()} CPUs; load average "
          f"{os.getloadavg()[0]:.1f} at the end; {np.__name__} {np.__version__}")
    if args.write_costs:
        write_costs(measured)


def write_costs(measured: dict[str, float]) -> None:
    """Merge ``measured`` into ``tasks/data/costs.json`` with today's date."""
    from discover.atomic import write_json_atomic
    from tasks.data import DATA_DIR, costs

    old = costs()
    data = {**old, "measured": time.strftime("%Y-%m-%d"),
            "seconds_per_run": {**old.get("seconds_per_run", {}), **measured}}
    write_json_atomic(str(DATA_DIR / "costs.json"), data)
    print(f"wrote {DATA_DIR / 'costs.json'}")


if __name__ == "__main__":
    main()
