"""The driver's benchmark (``scripts/bench_driver.py``) and what it measures with: simulated
workers (``discover.search.simulated_pool``), and the probe memo, which must change no result."""

from __future__ import annotations

import json
import os
import sys

from helpers import ROOT

from discover.campaign import Campaign
from discover.config import CampaignConfig
from discover.search.evolution import AgingEvolution
from discover.search.pool import WorkerSpec
from discover.search.simulated_pool import SimulatedPool

sys.path.insert(0, os.path.join(ROOT, "scripts"))
import bench_driver

CONFIG = CampaignConfig(population_size=20, max_evals=150, time_limit=None, seed=5,
                        progress_seconds=0, final_check=0, checkpoint_every=25)


def run_log(run_dir, workers: int = 8) -> list[dict]:
    campaign = Campaign.create(CONFIG, str(run_dir))
    try:
        campaign.run(SimulatedPool(WorkerSpec.from_config(campaign.config), workers),
                     progress=False)
    finally:
        campaign.close()
    lines = (run_dir / "evaluations.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "time"} for line in lines]


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
    result = bench_driver.measure(16, 120, 0.0, {"population_size": 20})
    assert result["evaluations"] == 120
    assert 0 < result["first_tenth_ms"] and 0 < result["last_tenth_ms"]
    # The whole campaign's CPU per evaluation includes its start (the probe's compile).
    assert result["driver_cpu_ms_per_eval"] > 0 and result["evals_per_second"] > 0
    assert result["state_json_mb"] > 0 and result["checkpoints"] >= 120 // 50
    assert result["peak_rss_mb"] > 0
