"""The campaign driver alone: how many evaluations a second it can feed, with simulated workers.

A campaign of ``--evals`` evaluations with the default configuration (the search set, tier B
held out, hurdles, the funnel; ``--config`` to change it) is driven with
``discover.search.simulated_pool.SimulatedPool``: ``--workers`` simulated workers that answer at
once (or after ``--seconds`` x Exp(1)), so every CPU second measured is the driver's:
breeding (mutation, check, fingerprint probe), logging, telling, checkpoints.  Prints, and
with ``--json`` writes:

* driver CPU ms per logged evaluation over the whole campaign, its first tenth and its last
  tenth, and the evaluations per second that makes;
* the driver's peak memory, ``state.json``'s size and the time of the last checkpoint;
* with ``--profile N``: the N functions with the most cumulative time (cProfile);
* with ``--resume``: the seconds ``discover resume`` takes to reopen the finished campaign
  (``Campaign.open``: the checkpoint read, the log read back, the fitness cache rebuilt, the
  replay; nothing is evaluated) and the memory it takes.

``--ray`` drives the campaign with the real ``RayPool`` instead, its ``--workers`` actors
``SleepingWorker``s (no CPU reserved, no JAX run: each sleeps ``--seconds`` a job and returns a
made-up result), on a local Ray instance: then it prints, besides the driver's figures, the
share of the actors' time spent busy over the search (jobs x seconds / (actors x wall)) and
the overhead per job (driver, Ray and the gaps between jobs: actors x wall / jobs - seconds).

    .venv/bin/python scripts/bench_driver.py --workers 256 --evals 3000 [--profile 25]
    .venv/bin/python scripts/bench_driver.py --ray --workers 64 --seconds 1 --evals 2000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


class Sampler:
    """Wraps a pool: after each ``wait``, the evaluations returned so far and the process's
    CPU time, so the CPU per evaluation of any stretch of the campaign can be read off."""

    def __init__(self, pool):
        self.pool = pool
        self.samples = [(0, time.process_time())]
        self.returned = 0

    def __getattr__(self, name):
        return getattr(self.pool, name)

    def wait(self, timeout=None):
        done = self.pool.wait(timeout)
        self.returned += len(done)
        self.samples.append((self.returned, time.process_time()))
        return done

    def cpu_per_eval(self, start: float, end: float) -> float:
        """CPU seconds per evaluation between the fractions ``start`` and ``end`` of the
        evaluations returned."""
        total = self.returned
        first = next(s for s in self.samples if s[0] >= start * total)
        last = next(s for s in self.samples if s[0] >= end * total)
        return (last[1] - first[1]) / max(1, last[0] - first[0])


def sleeping_ray_pool(spec, workers: int, seconds: float):
    """The real ``RayPool`` with ``workers`` sleeping actors (no CPU each)."""
    from discover.search.ray_pool import RayPool
    from discover.search.simulated_pool import SleepingWorker

    return RayPool(spec, workers, worker=SleepingWorker, worker_cpus=0, worker_args=(seconds,))


def measure(workers: int, evals: int, seconds: float, config_data: dict, profile: int = 0,
            ray_actors: bool = False, resume: bool = False) -> dict:
    """Drive one campaign (see the module docstring); ``ray_actors``: through ``RayPool``
    with sleeping actors (Ray must be initialised) instead of ``SimulatedPool``; ``resume``:
    then time reopening it."""
    from discover.campaign import Campaign
    from discover.config import CampaignConfig
    from discover.search.pool import WorkerSpec
    from discover.search.simulated_pool import SimulatedPool

    config = CampaignConfig.from_dict({**config_data, "max_evals": evals, "time_limit": None,
                                       "workers": None, "progress_seconds": 0,
                                       "final_check": 0})
    with tempfile.TemporaryDirectory(prefix="bench-driver-") as tmp:
        run_dir = os.path.join(tmp, "run")
        campaign = Campaign.create(config, run_dir)
        spec = WorkerSpec.from_config(campaign.config)
        if ray_actors:
            real = sleeping_ray_pool(spec, workers, seconds)
        else:
            real = SimulatedPool(spec, workers, seconds=seconds)
        pool = Sampler(real)
        checkpoint_seconds = []
        original = campaign.checkpoint

        def timed_checkpoint(*args, **kwargs):
            started = time.perf_counter()
            original(*args, **kwargs)
            checkpoint_seconds.append(time.perf_counter() - started)

        campaign.checkpoint = timed_checkpoint
        profiler = None
        if profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        started, cpu = time.perf_counter(), time.process_time()
        try:
            summary = campaign.run(pool, progress=False)
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu
            actors = actor_figures(real, workers, wall, seconds) if ray_actors else {}
        finally:
            campaign.close()
            if ray_actors:
                real.close()
        if profiler is not None:
            profiler.disable()
        state_bytes = os.path.getsize(os.path.join(run_dir, "state.json"))
        reopened = reopen_figures(run_dir, evals) if resume else {}
        result = {
            "workers": workers, "evaluations": summary.evaluations,
            "driver_cpu_ms_per_eval": 1000 * cpu / max(1, summary.evaluations),
            "first_tenth_ms": 1000 * pool.cpu_per_eval(0.0, 0.1),
            "last_tenth_ms": 1000 * pool.cpu_per_eval(0.9, 1.0),
            "evals_per_second": summary.evaluations / wall,
            "wall_seconds": wall, "cache_hit_rate": summary.cache_hit_rate,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "state_json_mb": state_bytes / 2**20,
            "last_checkpoint_ms": 1000 * checkpoint_seconds[-1] if checkpoint_seconds else None,
            "checkpoints": len(checkpoint_seconds),
            **actors, **reopened,
        }
    if profiler is not None:
        import io
        import pstats

        buffer = io.StringIO()
        pstats.Stats(profiler, stream=buffer).sort_stats("cumulative").print_stats(profile)
        result["profile"] = buffer.getvalue()
    return result


def reopen_figures(run_dir: str, evals: int) -> dict:
    """Seconds and memory growth of reopening the campaign in ``run_dir`` to go on."""
    from discover.campaign import Campaign

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    campaign = Campaign.open(run_dir, max_evals=evals + 1)
    seconds = time.perf_counter() - started
    count = campaign.log.count
    campaign.close()
    return {"resume_open_seconds": seconds, "resume_evaluations": count,
            "resume_peak_rss_growth_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            / 1024 - rss}


def actor_figures(pool, workers: int, wall: float, seconds: float) -> dict:
    """The sleeping actors' jobs and busy time, read from the actors themselves."""
    import ray

    stats = ray.get([w.handle.stats.remote() for w in pool.workers])
    jobs = sum(s["jobs"] for s in stats)
    busy = sum(s["busy_seconds"] for s in stats)
    return {"actor_jobs": jobs, "actor_busy_seconds": busy,
            "actor_busy_share": busy / (workers * wall),
            "overhead_ms_per_job": 1000 * (workers * wall / max(1, jobs) - seconds)}


def compare_probe_memo(workers: int, evals: int, config_data: dict, rounds: int = 3) -> None:
    """Driver CPU per evaluation with the probe memo (``AgingEvolution._screen``) and without
    it (a memo of size 0), alternating; the same campaign either way (the memo changes no
    result)."""
    from discover.search.evolution import AgingEvolution

    size = AgingEvolution.PROBE_MEMO_SIZE
    figures = {"memo": [], "no memo": []}
    for _ in range(rounds):
        for label, memo in (("no memo", 0), ("memo", size)):
            AgingEvolution.PROBE_MEMO_SIZE = memo
            figures[label].append(measure(workers, evals, 0.0, config_data)
                                  ["driver_cpu_ms_per_eval"])
    AgingEvolution.PROBE_MEMO_SIZE = size
    for label, values in figures.items():
        print(f"{label}: driver CPU ms per evaluation {', '.join(f'{v:.2f}' for v in values)}")
    ratio = sorted(a / b for a, b in zip(figures["no memo"], figures["memo"]))
    print(f"no memo / memo: median {ratio[len(ratio) // 2]:.2f} (min {ratio[0]:.2f}, max "
          f"{ratio[-1]:.2f})")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=256)
    parser.add_argument("--evals", type=int, default=3000)
    parser.add_argument("--seconds", type=float, default=0.0,
                        help="mean simulated seconds a job takes (default 0: at once)")
    parser.add_argument("--config", help="a campaign configuration file (default: defaults)")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="print the N functions with the most cumulative time")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    parser.add_argument("--resume", action="store_true",
                        help="then time reopening the campaign as discover resume does")
    parser.add_argument("--ray", action="store_true",
                        help="the real RayPool with --workers sleeping actors (--seconds a job)")
    parser.add_argument("--compare-probe-memo", action="store_true",
                        help="measure with and without the probe memo, alternating, 3 rounds")
    args = parser.parse_args(argv)
    config_data = {}
    if args.config:
        from discover.config import load_config

        config_data = load_config(args.config).to_dict()
    if args.ray:
        import ray  # before the driver's JAX work (the probe)

        ray.init(include_dashboard=False, logging_level="WARNING")
    from discover.scoring import compile_cache

    compile_cache.enable()  # the driver's probe compiles once per machine
    if args.compare_probe_memo:
        compare_probe_memo(args.workers, args.evals, config_data)
        return 0
    result = measure(args.workers, args.evals, args.seconds, config_data, args.profile,
                     ray_actors=args.ray, resume=args.resume)
    for key, value in result.items():
        if key != "profile":
            print(f"{key}: {value:.4g}" if isinstance(value, float) else f"{key}: {value}")
    if "profile" in result:
        print(result["profile"])
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
