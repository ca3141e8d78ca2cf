"""Benchmark: campaign throughput with 1 and 2 (or more) Ray actors, and the driver's overhead.

For each worker count it compiles a pool of actors (not timed) and measures:

* campaign: a campaign of ``--evals`` evaluations through the pool: evaluations per second
  (from the first job submitted to the last result) and the overhead, the share of the
  actors' time not spent evaluating, ``1 - sum(worker seconds) / (wall seconds x actors)``:
  what the driver (breeding, checks, fingerprints, logging, checkpoints) and Ray (scheduling,
  transfer) add (target < 10%).  Searches with different worker counts diverge (results
  arrive in another order), so their candidates, and what they cost, differ;
* fixed work: the programs the first campaign evaluated, evaluated again through the pool,
  the same work for every worker count: evaluations per second and the speedup over one
  actor (target >= 1.8x with 2 actors on 2 cores).

    .venv/bin/python scripts/bench_campaign.py [--workers 1,2] [--evals 60] [--tasks ...]

The numbers depend on the machine being otherwise idle: the load average is printed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2", help="worker counts to compare")
    parser.add_argument("--evals", type=int, default=60, help="evaluations per measurement")
    parser.add_argument("--tasks", default="logistic,digits_mlp",
                        help="search tasks")
    parser.add_argument("--held-out", default="", help="held-out tasks (default none)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]

    import ray

    ray.init(num_cpus=max(counts), include_dashboard=False, logging_level="WARNING")
    from discover.campaign import Campaign
    from discover.config import CampaignConfig, parse_list
    from discover.rundir import LOG_FILE
    from discover.rundir.files import read_log
    from discover.search.pool import WorkerSpec
    from discover.search.ray_pool import RayPool

    config = CampaignConfig(
        seed=args.seed, max_evals=args.evals, time_limit=None, population_size=20,
        tasks=parse_list(args.tasks), held_out_tasks=parse_list(args.held_out),
        checkpoint_every=20, progress_seconds=0)
    rows = []
    work: list[str] = []
    for n in counts:
        spec = WorkerSpec.from_config(config)
        start = time.perf_counter()
        pool = RayPool(spec, n)
        compile_s = time.perf_counter() - start
        with tempfile.TemporaryDirectory() as tmp:
            run_dir = os.path.join(tmp, "run")
            campaign = Campaign.create(config.replace(workers=n), run_dir)
            summary = campaign.run(pool, progress=False)
            campaign.close()
            if not work:
                work = [r["program"] for r in read_log(os.path.join(run_dir, LOG_FILE))]
        fixed = replay(pool, work)
        pool.close()
        rows.append((n, summary, fixed))
        print(f"{n} actor(s): campaign {summary.evaluations_here} evals in "
              f"{summary.loop_seconds:.1f} s = {summary.evaluations_per_second:.2f} evals/s, "
              f"overhead {100 * summary.overhead_fraction:.1f}% (cache hits "
              f"{summary.cache_hits}, invalid {summary.invalid}); fixed work "
              f"{len(work) / fixed:.2f} evals/s; actors got {100 * cpu_share(summary):.0f}% "
              f"of a core while evaluating; compile {compile_s:.1f} s; load average "
              f"{os.getloadavg()[0]:.1f}", flush=True)
    print()
    print(f"{'actors':>6}  {'campaign evals/s':>16}  {'overhead':>8}  {'fixed evals/s':>13}  "
          f"{'speedup':>7}  {'core share':>10}")
    for n, summary, fixed in rows:
        print(f"{n:>6}  {summary.evaluations_per_second:>16.2f}  "
              f"{100 * summary.overhead_fraction:>7.1f}%  {len(work) / fixed:>13.2f}  "
              f"{rows[0][2] / fixed:>6.2f}x  {100 * cpu_share(summary):>9.0f}%")
    ray.shutdown()
    return 0


def cpu_share(summary) -> float:
    """CPU time over wall time of the actors while evaluating: 1 when each had its core."""
    return summary.worker_cpu_seconds / summary.worker_seconds if summary.worker_seconds else 0


def replay(pool, texts: list[str]) -> float:
    """Seconds to evaluate ``texts`` through ``pool``, every actor kept busy."""
    from discover.search.pool import Job

    start = time.perf_counter()
    queue = list(enumerate(texts))
    done = 0
    while done < len(texts):
        while queue and pool.idle() > 0:
            seq, text = queue.pop(0)
            pool.submit(Job(seq, text))
        done += len(pool.wait(timeout=1.0))
    return time.perf_counter() - start


if __name__ == "__main__":
    sys.exit(main())
