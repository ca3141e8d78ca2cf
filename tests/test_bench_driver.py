"""The driver's benchmark (``scripts/bench_driver.py``) and what it measures with: simulated
workers (``discover.search.simulated_pool``), and the probe memo, which must change no result."""

from __future__ import annotations

import json
import os
import sys

from helpers import ROOT, wait_until

from discover.campaign import Campaign
from discover.config import CampaignConfig
from discover.search.evolution import AgingEvolution
from discover.search.pool import WorkerSpec
from discover.search.simulated_pool import SimulatedPool

sys.path.insert(0, os.path.join(ROOT, "scripts"))
import bench_driver

CONFIG = CampaignConfig(population_size=20, max_evals=150, time_limit=None, seed=5,
                        progress_seconds=0, final_check=0, checkpoint_every=25)


def run_log(run_dir, workers: int = 8, make_pool=None) -> list[dict]:
    """The campaign's log through ``SimulatedPool(workers)`` (or ``make_pool(spec)``), without
    the fields that say when and where a job ran."""
    campaign = Campaign.create(CONFIG, str(run_dir))
    spec = WorkerSpec.from_config(campaign.config)
    pool = make_pool(spec) if make_pool else SimulatedPool(spec, workers)
    try:
        campaign.run(pool, progress=False)
    finally:
        campaign.close()
        pool.close()
    lines = (run_dir / "evaluations.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in ("time", "seconds", "worker")}
            for line in lines]


def test_the_probe_memo_changes_no_result(tmp_path, monkeypatch):
    """The same campaign with the memo and without it (size 0): the same log, line by line;
    and the memo did spare probes."""
    probes = []
    from programs import fingerprint

    real = fingerprint.probe
    monkeypatch.setattr("discover.search.evolution.probe", lambda p: probes.append(1) or real(p))
    with_memo = run_log(tmp_path / "memo")
    spared = len(probes)
    monkeypatch.setattr(AgingEvolution, "PROBE_MEMO_SIZE", 0)
    probes.clear()
    without = run_log(tmp_path / "none")
    assert len(with_memo) == 150 and with_memo == without
    assert spared < len(probes)


def test_the_simulated_pool_acts_as_the_workers_do(tmp_path):
    """Hurdles stop children, the funnel scores the passers on the held-out tasks, a program
    always scores the same."""
    records = run_log(tmp_path / "run")
    statuses = {r["status"] for r in records}
    assert "rejected" in statuses and "ok" in statuses
    funnelled = [r for r in records if r.get("held_out_score") is not None]
    assert funnelled and all(r["score"] <= CONFIG.held_out_threshold for r in funnelled)
    by_program = {}
    for r in records:
        if r["status"] == "ok":
            assert by_program.setdefault(r["program"], r["score"]) == r["score"]


def test_bench_driver_measures_a_campaign():
    result = bench_driver.measure(16, 120, 0.0, {"population_size": 20}, resume=True)
    assert result["resume_evaluations"] == 120  # reopened with every evaluation it logged
    assert result["evaluations"] == 120
    assert 0 < result["first_tenth_ms"] and 0 < result["last_tenth_ms"]
    # The whole campaign's CPU per evaluation includes its start (the probe's compile).
    assert result["driver_cpu_ms_per_eval"] > 0 and result["evals_per_second"] > 0
    assert result["state_json_mb"] > 0 and result["checkpoints"] >= 120 // 50
    assert result["peak_rss_mb"] > 0


def test_a_sleeping_actor_on_the_real_ray_pool_runs_the_same_campaign(ray_session, tmp_path):
    """``RayPool`` with one ``SleepingWorker`` actor (through Ray: placement, transport,
    results) logs the campaign that the in-process stand-in with one worker logs."""
    from discover.search.ray_pool import RayPool
    from discover.search.simulated_pool import SleepingWorker

    expected = run_log(tmp_path / "simulated", workers=1)
    got = run_log(tmp_path / "ray", make_pool=lambda spec: RayPool(
        spec, 1, worker=SleepingWorker, worker_cpus=0, worker_args=(0.0,)))
    assert len(got) == CONFIG.max_evals and got == expected


def test_bench_driver_measures_sleeping_actors_on_ray(ray_session):
    """Four sleeping actors on a Ray instance of two CPUs (they reserve none): every
    evaluation ran on one of them, each slept its time."""
    seconds = 0.02
    result = bench_driver.measure(4, 40, seconds, {"population_size": 20}, ray_actors=True)
    assert result["evaluations"] == 40 and result["actor_jobs"] == 40
    assert 0 < result["actor_busy_share"] <= 1
    # the actors' own busy time: no job is shorter than its sleep
    assert result["actor_busy_seconds"] >= 40 * seconds


def test_a_campaign_started_while_every_worker_restarts_waits_for_them(ray_session, tmp_path):
    """A pool whose only actor is a replacement still starting (as after a lost worker, or a
    runaway evaluation killed) has no idle worker for a few seconds: the campaign waits for it
    and spends its budget, instead of taking 'no idle worker, nothing in flight' for 'done'."""
    import ray

    from discover.search.pool import Job
    from discover.search.ray_pool import RayPool
    from discover.search.simulated_pool import SleepingWorker

    config = CONFIG.replace(max_evals=12)
    campaign = Campaign.create(config, str(tmp_path / "run"))
    spec = WorkerSpec.from_config(campaign.config)
    pool = RayPool(spec, 1, worker=SleepingWorker, worker_cpus=0, worker_args=(0.0, 1.0))
    try:
        ray.kill(pool.workers[0].handle)
        pool.submit(Job(0, "def sgd(g, lr):\n    return g\n"))  # to the dead actor
        wait_until(lambda: (pool.wait(timeout=0.5), pool.lost)[1] == 1, 60, "the loss noticed")
        pool.drop_pending()
        assert pool.workers[0].ready_ref is not None and pool.idle() == 0  # still starting
        summary = campaign.run(pool, progress=False)
    finally:
        campaign.close()
        pool.close()
    assert summary.stopped == "max_evals" and summary.evaluations == 12
