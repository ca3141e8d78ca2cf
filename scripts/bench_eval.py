"""Benchmark: seconds per candidate of the compile-once engine, the naive per-program jit path
and the optax.adam floor, on the default search tasks with the same lr grid and budget.

* naive: per program and task, ``jax.jit`` of the whole training run over the grid built from
  ``programs.as_optax`` (``tasks.train.OptaxTrainer``): compile + run, as a search without
  the engine would pay for every candidate;
* engine: ``discover.scoring.evaluate.Evaluator`` (``programs.vm`` + ``tasks.train.Trainer``): the
  one-time compile (``warm_up``), then each candidate's ``evaluate`` (no compile), its rates
  tuned by the walk from its parent's (``discover.scoring.tuning``), against what the search paid per
  candidate before the wide-grid yardstick (one window of 3 rates per task), interleaved;
* floor: ``optax.adam`` in the same training loop compiled once (``OptaxTrainer``), steady
  state.  ``engine/floor`` compares like with like: adam run by the engine against optax.adam;
  the mutated candidates' own times are printed too (they differ in length, and a candidate
  that diverges everywhere stops early).

Candidates: ``--programs`` distinct programs, each 1-3 ``programs.mutate`` mutations away
from a baseline that fits the bucket (fixed RNG).  The naive path compiles for minutes, so it
runs on the first ``--naive`` of them.  XLA runs on one thread (as in the search's Ray actors,
one per CPU), set before JAX is imported; steady-state times are the median of ``--repeats``
runs, engine and floor interleaved so that both see the same machine load.

    .venv/bin/python scripts/bench_eval.py [--tasks a,b] [--programs 20] [--naive 3]
    .venv/bin/python scripts/bench_eval.py --startup [--held-out a,b]

``--startup`` measures instead what a campaign's worker pays before its first evaluation
(``discover.search.pool.EvaluationWorker``: compiling every search and tier-B task and tuning adam on
each), in a fresh process, twice: cold (empty compilation and baseline caches) and warm (the
caches the first start filled).  ``--startup --workers N`` starts N worker processes at once on
empty caches, as a node of a campaign does (each its own share of the task list), twice per
``--repeats``, interleaved: with the warm-up claims (``discover.search.warm_claims``) and with
the claims off (every worker compiles what it reaches, as before them); it prints the wall time
until the last is ready and the CPU seconds of all of them.

    .venv/bin/python scripts/bench_eval.py --startup --workers 2 --tasks digits_mlp_s,kjv_cooccurrence_s --held-out digits_mlp
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time

os.environ.setdefault("XLA_FLAGS",
                      "--xla_cpu_multi_thread_eigen=false")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np


def candidates(n: int, seed: int, max_statements: int) -> tuple[list, list]:
    """``n`` mutated programs and the baseline each descends from."""
    import programs
    from programs.mutate import mutate

    rng = np.random.default_rng(seed)
    parents = [p for p in programs.BASELINES.values()
               if len(p.body) <= max_statements and len(p.slots) <= 4]
    found: list = []
    origins: list = []
    while len(found) < n:
        origin = program = parents[rng.integers(len(parents))]
        for _ in range(rng.integers(1, 4)):
            child = mutate(program, rng).program
            program = child if child is not None else program
        if (len(program.body) <= max_statements and program not in found
                and program not in programs.BASELINES.values()):
            found.append(program)
            origins.append(origin)
    return found, origins


def block(result):
    import jax
    return jax.block_until_ready(result)


class Clock:
    """Wall-clock and CPU seconds of a ``with`` block (CPU time of this process is what a
    single-threaded XLA run costs even when other processes load the machine)."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


def timed(fn) -> Clock:
    with Clock() as clock:
        block(fn())
    return clock


def median(clocks: list) -> tuple[float, float]:
    return (statistics.median(c.wall for c in clocks), statistics.median(c.cpu for c in clocks))


STARTUP = """
import json, sys, time
start = time.perf_counter()
from discover.search import warm_claims
from discover.search.pool import EvaluationWorker, WorkerSpec
share = (int(sys.argv[3]), int(sys.argv[4])) if len(sys.argv) > 3 else (0, 1)
if len(sys.argv) > 5 and sys.argv[5] == "off":  # the alternative: no claims
    claimed = warm_claims.warm_in_turn
    warm_claims.warm_in_turn = lambda items, key, warm, directory, **kw: claimed(
        items, key, warm, None, **kw)
spec = WorkerSpec(tuple(sys.argv[1].split(",")), held_out_tasks=tuple(sys.argv[2].split(",")))
worker = EvaluationWorker(spec, share=share)
print(json.dumps({"warm_up": worker.warm_up_seconds, "total": time.perf_counter() - start}))
"""


def startup_together(names: list[str], held_out: list[str], workers: int, repeats: int) -> int:
    """Print the cold start of ``workers`` processes at once, claims on and off, interleaved."""
    import resource
    import subprocess
    import tempfile

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    print(f"{workers} workers starting together on empty caches: {len(names)} search tasks, "
          f"tier B {', '.join(held_out)}; load average {os.getloadavg()[0]:.1f}")
    results: dict[str, list[tuple[float, float]]] = {"claims": [], "no claims": []}
    for _ in range(repeats):
        for kind, runs in results.items():
            with tempfile.TemporaryDirectory() as folder:
                env = dict(os.environ, DISCOVER_COMPILE_CACHE=os.path.join(folder, "xla"),
                           DISCOVER_BASELINE_CACHE=os.path.join(folder, "baselines"))
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                wall = time.perf_counter()
                started = [subprocess.Popen(
                    [sys.executable, "-c", STARTUP, ",".join(names), ",".join(held_out), str(i),
                     str(workers), "on" if kind == "claims" else "off"],
                    env=env, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    for i in range(workers)]
                if any(p.wait() != 0 for p in started):
                    raise SystemExit("a worker failed to start")
                wall = time.perf_counter() - wall
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
                runs.append((wall, cpu))
                print(f"  {kind:9s}: all ready in {wall:6.1f} s wall, {cpu:6.1f} s CPU",
                      flush=True)
    on, off = ([statistics.median(x[j] for x in results[k]) for j in (0, 1)]
               for k in ("claims", "no claims"))
    print(f"median: claims {on[0]:.1f} s wall / {on[1]:.1f} s CPU; no claims {off[0]:.1f} s "
          f"wall / {off[1]:.1f} s CPU; claims / no claims: wall {on[0] / off[0]:.2f}, "
          f"CPU {on[1] / off[1]:.2f}")
    return 0


def startup(names: list[str], held_out: list[str]) -> int:
    """Print a worker's start-up, cold then warm, each in a fresh process."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        env = dict(os.environ, DISCOVER_COMPILE_CACHE=os.path.join(folder, "xla"),
                   DISCOVER_BASELINE_CACHE=os.path.join(folder, "baselines"))
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        print(f"worker start-up: {len(names)} search tasks, tier B {', '.join(held_out)}; "
              f"load average {os.getloadavg()[0]:.1f}")
        for kind in ("cold", "warm"):
            out = subprocess.run([sys.executable, "-c", STARTUP, ",".join(names),
                                  ",".join(held_out)], env=env, cwd=root, check=True,
                                 capture_output=True, text=True)
            numbers = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"  {kind}: EvaluationWorker.__init__ {numbers['warm_up']:.1f} s "
                  f"(process {numbers['total']:.1f} s with imports)", flush=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", help="comma-separated tasks (default: tasks.search_names())")
    parser.add_argument("--programs", type=int, default=20, help="mutated candidates")
    parser.add_argument("--naive", type=int, default=3, help="candidates timed on the naive path")
    parser.add_argument("--repeats", type=int, default=5, help="runs per steady-state time")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the numbers to this file")
    parser.add_argument("--startup", action="store_true",
                        help="measure a worker's start-up, cold and warm, instead")
    parser.add_argument("--held-out", help="tier-B tasks for --startup (default: tier B)")
    parser.add_argument("--workers", type=int, default=0,
                        help="with --startup: start this many workers together, claims on/off")
    args = parser.parse_args()
    if args.startup and args.workers:
        import tasks

        return startup_together(
            args.tasks.split(",") if args.tasks else tasks.search_names(),
            args.held_out.split(",") if args.held_out else tasks.held_out_names(),
            args.workers, args.repeats)
    if args.startup:
        import tasks

        return startup(args.tasks.split(",") if args.tasks else tasks.search_names(),
                       args.held_out.split(",") if args.held_out else tasks.held_out_names())

    import jax
    import optax

    import programs
    import tasks
    from discover.scoring.evaluate import Evaluator
    from programs.vm import scalar_registers
    from tasks.train import OptaxTrainer

    names = args.tasks.split(",") if args.tasks else tasks.search_names()
    cands, origins = candidates(args.programs, args.seed, 32)
    print(f"jax {jax.__version__}, {os.cpu_count()} CPUs, XLA_FLAGS={os.environ['XLA_FLAGS']!r}")
    print(f"tasks: {', '.join(names)}; {len(cands)} candidates, lr grid 3, seed 0\n")

    # (b) engine: one-time compile, then candidates.
    with Clock() as compile_clock:
        evaluator = Evaluator(names).warm_up()
    evaluator.evaluate(cands[0])
    # The search's cost per candidate, interleaved: before the wide-grid yardstick, one window
    # of 3 rates around each task's default (``old``); now, the tuning walk from the parent's
    # tuned rates (``walk``), which runs a second window when the best rate is at an edge.
    parent_rates = {}
    for origin in origins:
        if origin.name not in parent_rates:
            parent_rates[origin.name] = {s.task: s.lr for s in evaluator.evaluate(origin).scores}
    old_search, per_candidate, windows = [], [], []
    for p, origin in zip(cands, origins):
        old_search.append(timed(lambda p=p: [evaluator.trainer(n).run(p) for n in names]))
        per_candidate.append(timed(lambda p=p, o=origin: windows.append(
            sum(s.windows for s in evaluator.evaluate(p, starts=parent_rates[o.name]).scores))))

    # (c) floor against adam in the engine, task by task, interleaved.
    adam = programs.BASELINES["adam"]
    rows = []
    for name in names:
        trainer = evaluator.trainer(name)
        enc = trainer.encode(adam)
        floor = OptaxTrainer(trainer.task, optax.adam)
        args_floor = (floor.lrs, floor.data.w0, floor.data.batches, floor.data.valid)
        block(floor.compiled(*args_floor))

        def engine_run(enc=enc, trainer=trainer):
            sc = scalar_registers(enc, trainer.lrs, trainer.padded_steps,
                                  np.float32(trainer.task.steps))
            return trainer.compiled(enc, sc, trainer.data.w0, trainer.data.batches,
                                    trainer.data.valid, trainer.layout)

        def floor_run(floor=floor, args_floor=args_floor):
            return floor.compiled(*args_floor)

        engine_times, floor_times = [], []
        for _ in range(args.repeats):
            engine_times.append(timed(engine_run))
            floor_times.append(timed(floor_run))
        rows.append((name, median(engine_times), median(floor_times)))

    # (a) naive: compile + run per program and task.
    naive = []
    for program in cands[: args.naive]:
        with Clock() as clock:
            for name in names:
                task = tasks.resolve(name)
                trainer = OptaxTrainer(task, lambda lr, p=program, s=task.steps:
                                       programs.as_optax(p, lr, total_steps=s))
                block(trainer.compiled(trainer.lrs, trainer.data.w0, trainer.data.batches,
                                       trainer.data.valid))
        naive.append(clock)

    print(f"{'task':<20} {'engine(adam) ms':>16} {'floor ms':>10} {'ratio':>7}"
          f"   (wall; CPU in brackets)")
    for name, e, f in rows:
        print(f"{name:<20} {e[0] * 1e3:>16.2f} {f[0] * 1e3:>10.2f} {e[0] / f[0]:>7.2f}"
              f"   [{e[1] * 1e3:.2f} / {f[1] * 1e3:.2f} = {e[1] / f[1]:.2f}]")
    result = {}
    for i, kind in enumerate(("wall", "cpu")):
        result[kind] = {
            "naive": statistics.mean(getattr(c, kind) for c in naive) if naive else math.nan,
            "engine_candidates": statistics.mean(getattr(c, kind) for c in per_candidate),
            "engine_adam": sum(e[i] for _, e, _ in rows),
            "floor": sum(f[i] for _, _, f in rows),
            "compile": getattr(compile_clock, kind)}
    w, c = result["wall"], result["cpu"]
    print()
    print(f"seconds per candidate (sum over the {len(names)} tasks)      wall      CPU")
    print(f"  naive (jit per program, compile + run):  {w['naive']:8.3f} {c['naive']:8.3f}"
          f"   (mean of {len(naive)})")
    print(f"  engine, mutated candidates:              {w['engine_candidates']:8.3f} "
          f"{c['engine_candidates']:8.3f}   (mean of {len(per_candidate)})")
    print(f"  engine, adam:                            {w['engine_adam']:8.3f} "
          f"{c['engine_adam']:8.3f}")
    print(f"  floor, optax.adam compiled once:         {w['floor']:8.3f} {c['floor']:8.3f}")
    print(f"  engine one-time compile (warm_up):       {w['compile']:8.3f} {c['compile']:8.3f}")
    old = {kind: statistics.mean(getattr(c, kind) for c in old_search) for kind in ("wall", "cpu")}
    print(f"  search before (one 3-rate window/task):  {old['wall']:8.3f} {old['cpu']:8.3f}")
    print(f"  search now (walk from the parent's rate): {w['engine_candidates']:7.3f} "
          f"{c['engine_candidates']:8.3f}   ({statistics.mean(windows) / len(names):.2f} "
          f"windows per task)")
    for kind in ("wall", "cpu"):
        print(f"  {kind:>4}: search now / before {result[kind]['engine_candidates'] / old[kind]:5.2f}"
              f" (target <= 1.5)   naive / engine on one window (as naive runs) "
              f"{result[kind]['naive'] / old[kind]:5.1f}")
        result[kind]["search_before"] = old[kind]
    for kind in ("wall", "cpu"):
        r = result[kind]
        print(f"  {kind:>4}: naive / engine {r['naive'] / r['engine_candidates']:6.1f} "
              f"(target >= 10)   engine / floor {r['engine_adam'] / r['floor']:5.2f} "
              f"(adam in both; target <= 1.5)")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"tasks": names, "programs": [str(p) for p in cands],
                       "per_task": [{"task": n, "engine_adam": e, "floor": fl}
                                    for n, e, fl in rows], **result}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
