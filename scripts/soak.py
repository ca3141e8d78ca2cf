"""Soak test: a long campaign on 2 Ray actors, watching the memory of the driver and the actors.

Runs one campaign of ``--warm-up`` + ``--evals`` evaluations (cheap tasks: quadratic and
logistic searched, rosenbrock_2d held out) through a pool of ``--workers`` actors, and samples
the resident memory (RSS, from ``/proc/PID/status``) of the driver and of every actor every
``--sample-seconds``.  The baseline is the first sample once ``--warm-up`` evaluations are done
(compiled evaluators, allocator pools and caches of the first programs settled); the end is
taken after the campaign's last checkpoint.  Growth = end / baseline - 1 per process, target
under 10%.  Also printed: what the driver keeps by design and that grows with the campaign
(the fitness cache, one entry per evaluated fingerprint; the logbook; state.json).

    .venv/bin/python scripts/soak.py [--evals 3000] [--warm-up 300] [--workers 2]

Linux only (``/proc``).  The run directory is a temporary one unless ``--out`` is given.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import threading
import time
import tracemalloc

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

MB = 1024 * 1024


def rss_bytes(pid: int) -> int | None:
    """Resident set size of ``pid`` (None when the process is gone)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


class Sampler(threading.Thread):
    """Samples (seconds, evaluations, rss per process) every ``every`` seconds, and once as
    soon as ``warm_up`` evaluations are done (the baseline)."""

    def __init__(self, every: float, pids: dict[str, int], count, warm_up: int, trace: int):
        super().__init__(daemon=True)
        self.every, self.pids, self.count, self.warm_up = every, pids, count, warm_up
        self.trace = trace
        self.rows: list[tuple[float, int, dict[str, int | None]]] = []
        self.baseline: tuple[float, int, dict[str, int | None]] | None = None
        self.start_time = time.monotonic()
        self._stop_event = threading.Event()

    def sample(self) -> tuple[float, int, dict[str, int | None]]:
        row = (time.monotonic() - self.start_time, self.count(),
               {name: rss_bytes(pid) for name, pid in self.pids.items()})
        self.rows.append(row)
        if self.baseline is None and row[1] >= self.warm_up:
            self.baseline = row
            if self.trace:
                tracemalloc.start(self.trace)  # the driver's Python allocations from here on
        return row

    def run(self) -> None:
        last = time.monotonic()
        while not self._stop_event.wait(0.05):
            if time.monotonic() - last >= self.every or (
                    self.baseline is None and self.count() >= self.warm_up):
                self.sample()
                last = time.monotonic()

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def show_python_growth(snapshot, evaluations: int, rss_growth: int) -> None:
    """The driver's Python objects allocated after the warm-up and still alive, by place."""
    stats = snapshot.statistics("traceback")
    total = sum(stat.size for stat in stats)
    per_eval = f"{total / max(1, evaluations):.0f} B/evaluation"
    print(f"driver: Python objects allocated after the warm-up and alive at the end: "
          f"{total / MB:.1f} MB ({per_eval}) of {rss_growth / MB:.1f} MB of RSS growth; "
          f"largest:")
    for stat in stats[:6]:
        frames = [f for f in stat.traceback if "/discover/" in f.filename
                  or "/programs/" in f.filename] or list(stat.traceback)
        where = " < ".join(f"{os.path.basename(f.filename)}:{f.lineno}"
                           for f in reversed(frames[-3:]))  # innermost first
        print(f"  {stat.size / MB:7.2f} MB  {stat.count:8d} blocks  {where}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evals", type=int, default=3000,
                        help="evaluations measured after the warm-up (default 3000)")
    parser.add_argument("--warm-up", type=int, default=300,
                        help="evaluations before the baseline sample (default 300)")
    parser.add_argument("--workers", type=int, default=2, help="actors (default 2)")
    parser.add_argument("--tasks", default="quadratic,logistic", help="search tasks")
    parser.add_argument("--held-out", default="rosenbrock_2d", help="held-out tasks")
    parser.add_argument("--population", type=int, default=50)
    parser.add_argument("--sample-seconds", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="run directory (default: a temporary one)")
    parser.add_argument("--trace", type=int, default=0, metavar="FRAMES",
                        help="trace the driver's Python allocations after the warm-up "
                             "(tracemalloc, FRAMES deep; slower) and show where the growth "
                             "was allocated: RSS growth beyond it is native (Ray, XLA, libc)")
    args = parser.parse_args()
    if not os.path.isdir("/proc/self"):
        print("soak: needs /proc (Linux)", file=sys.stderr)
        return 2

    import ray

    # A fresh local instance ("local"), not one another process on this machine started.
    ray.init(address="local", num_cpus=args.workers, include_dashboard=False,
             logging_level="WARNING")
    from discover import rundir
    from discover.campaign import Campaign
    from discover.config import CampaignConfig, parse_list
    from discover.search.pool import WorkerSpec
    from discover.search.ray_pool import RayPool

    total = args.warm_up + args.evals
    config = CampaignConfig(
        seed=args.seed, max_evals=total, time_limit=None, population_size=args.population,
        tasks=parse_list(args.tasks), held_out_tasks=parse_list(args.held_out),
        held_out_threshold=0.0, lr_grid=2, checkpoint_every=50, progress_seconds=0,
        plateau_evals=1000, workers=args.workers)
    start = time.perf_counter()
    pool = RayPool(WorkerSpec.from_config(config), args.workers)
    infos = ray.get([actor.ready.remote() for actor in pool.actors])
    print(f"soak: {args.workers} actor(s) compiled in {time.perf_counter() - start:.0f} s; "
          f"{total} evaluations ({args.warm_up} warm-up) on {args.tasks} "
          f"(held out: {args.held_out or 'none'}); load average {os.getloadavg()[0]:.1f}",
          flush=True)
    pids = {"driver": os.getpid()} | {info["worker"]: info["pid"] for info in infos}

    tmp = None if args.out else tempfile.TemporaryDirectory()
    run_dir = args.out or os.path.join(tmp.name, "run")
    campaign = Campaign.create(config, run_dir)
    sampler = Sampler(args.sample_seconds, pids, lambda: campaign.log.count, args.warm_up,
                      args.trace)
    sampler.sample()
    sampler.start()
    try:
        summary = campaign.run(pool, progress=False)
    finally:
        sampler.stop()
        campaign.close()
    end = sampler.sample()
    traced = None
    if tracemalloc.is_tracing():
        gc.collect()
        traced = tracemalloc.take_snapshot()
        tracemalloc.stop()
    # A worker lost and replaced comes back under a new name or a new pid.
    restarted = [info["worker"] for info in ray.get([a.ready.remote() for a in pool.actors])
                 if info["pid"] != pids.get(info["worker"])]
    pool.close()
    ray.shutdown()

    evo = campaign.evolution
    baseline = sampler.baseline
    print()
    print(f"{'seconds':>8}  {'evals':>6}  " + "  ".join(f"{name + ' MB':>12}" for name in pids))
    step = max(1, len(sampler.rows) // 25)  # a small table: about 25 rows
    shown = [row for i, row in enumerate(sampler.rows)
             if i % step == 0 or row is baseline or row is end]
    for row in shown:
        seconds, count, sizes = row
        cells = "  ".join(f"{sizes[name] / MB:>12.1f}" if sizes[name] else f"{'gone':>12}"
                          for name in pids)
        mark = "  <- baseline (after warm-up)" if row is baseline else ""
        print(f"{seconds:>8.0f}  {count:>6}  {cells}{mark}")
    print()
    print(f"campaign: {summary.evaluations} evaluations in {summary.loop_seconds:.0f} s "
          f"({summary.evaluations_per_second:.2f}/s), stopped by {summary.stopped}; cache hits "
          f"{summary.cache_hits}, invalid {summary.invalid}, failed {summary.failed}, restarts "
          f"{summary.restarts}; actors restarted: {', '.join(restarted) or 'none'}")
    state_size = os.path.getsize(os.path.join(run_dir, rundir.STATE_FILE))
    log_size = os.path.getsize(os.path.join(run_dir, rundir.LOG_FILE))
    print(f"driver keeps by design: fitness cache {len(evo.cache)} entries, logbook "
          f"{len(evo.logbook)} rows, population {len(evo.population)}, hall of fame "
          f"{len(evo.hall_of_fame)}, waiting {sum(map(len, evo.waiting.values()))}; state.json "
          f"{state_size / 1024:.0f} KiB, evaluations.jsonl {log_size / 1024:.0f} KiB")
    if baseline is None:
        print(f"soak: fewer than {args.warm_up} evaluations: no baseline", file=sys.stderr)
        return 1
    print(f"memory growth from evaluation {baseline[1]} to {end[1]} "
          f"({end[1] - baseline[1]} evaluations):")
    worst = 0.0
    for name in pids:
        before, after = baseline[2][name], end[2][name]
        if not before or not after:
            print(f"  {name:<8} process gone")
            continue
        growth = after / before - 1
        worst = max(worst, growth)
        print(f"  {name:<8} {before / MB:8.1f} MB -> {after / MB:8.1f} MB  {100 * growth:+6.1f}%")
    if traced is not None:
        show_python_growth(traced, end[1] - baseline[1], end[2]["driver"] - baseline[2]["driver"])
    print(f"worst growth {100 * worst:+.1f}% (target < 10%): "
          f"{'PASS' if worst < 0.10 else 'FAIL'}")
    if tmp is not None:
        tmp.cleanup()
    return 0 if worst < 0.10 else 1


if __name__ == "__main__":
    sys.exit(main())
