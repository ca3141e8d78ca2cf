"""discover.campaign on the local Ray instance: a short real campaign with 2 actors, its run
directory, resume (after a clean stop, a Ctrl-C and a crash) with no evaluation lost or
repeated, determinism, and the run / resume / eval commands (serial path).

The cheapest tasks: quadratic searched, rosenbrock_2d held out.  One pool of 2 actors,
compiled once, serves every Ray campaign of this module.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal

import pytest

import programs
from discover import rundir
from discover.campaign import Campaign
from discover.cli import main
from discover.config import CampaignConfig
from discover.progress import Progress
from discover.records import TIMING_FIELDS
from discover.search.pool import WorkerSpec
from discover.search.ray_pool import RayPool

CONFIG = CampaignConfig(tasks=("quadratic",), held_out_tasks=("rosenbrock_2d",),
                        population_size=8, lr_grid=2, max_statements=20, time_limit=60.0,
                        held_out_threshold=0.5, checkpoint_every=4, progress_seconds=0, seed=7)


@pytest.fixture(scope="module")
def pool(ray_session):
    pool = RayPool(WorkerSpec.from_config(CONFIG), 2)
    yield pool
    pool.close()


def run(run_dir, pool, *, create=None, **budget) -> Campaign:
    if create is not None:
        campaign = Campaign.create(create, str(run_dir))
    else:
        campaign = Campaign.open(str(run_dir), **budget)
    try:
        campaign.summary = campaign.run(pool, progress=False)
    finally:
        campaign.close()
    return campaign


def seqs(run_dir) -> list[int]:
    return [r["seq"] for r in rundir.read_log(os.path.join(run_dir, rundir.LOG_FILE))]


def test_campaign_on_two_actors_then_resume(tmp_path, pool):
    run_dir = tmp_path / "run"
    first = run(run_dir, pool, create=CONFIG.replace(max_evals=10))
    assert first.summary.stopped == "max_evals" and first.summary.workers == 2
    assert sorted(os.listdir(run_dir)) == ["best", "config.json", "evaluations.jsonl",
                                           "hall_of_fame.json", "state.json"]
    config = json.loads((run_dir / "config.json").read_text())
    assert config["tasks"] == ["quadratic"] and config["held_out_tasks"] == ["rosenbrock_2d"]

    log = rundir.read_log(str(run_dir / "evaluations.jsonl"))
    assert sorted(r["seq"] for r in log) == list(range(10))
    starts = [r for r in log if r["mutation"]["kind"] == "start"]
    assert {r["mutation"]["detail"] for r in starts} == {"adam", "sgd", "lion"}
    adam = next(r for r in starts if r["mutation"]["detail"] == "adam")
    assert adam["score"] == pytest.approx(0.0, abs=0.05)  # 0 is tuned adam, by definition
    assert adam["held_out_score"] is not None  # passed the funnel
    # held-out seeds 0, 1, 2: an interval against adam, paired by seed (adam's own: a point)
    assert adam["held_out_interval"] == pytest.approx([0.0, 0.0], abs=1e-12)
    claim = next(line for line in first.summary.lines() if line.startswith("best held-out"))
    assert "on the held-out tasks, 95% interval [" in claim
    for r in log:
        assert programs.parse(r["program"]).fingerprint() == r["fingerprint"]
        assert set(r["scores"]) == set(r["lr"]) == {"quadratic"}
        assert r["status"] in ("ok", "failed") and r["worker"].startswith("actor-")
        assert r["parent"] is None or r["mutation"]["kind"] != "start"
    assert len({r["worker"] for r in log}) == 2

    hof = json.loads((run_dir / "hall_of_fame.json").read_text())
    assert hof, "adam at least passes the funnel"
    held = [e["held_out_score"] for e in hof]
    assert held == sorted(held)
    for entry in hof:
        assert {"program", "fingerprint", "search_score", "held_out_score", "scores",
                "lr"} <= set(entry)
        simplified = programs.parse(entry["program"])
        assert simplified.simplify() == simplified
        assert simplified.fingerprint() == entry["fingerprint"]
    best = programs.load(str(run_dir / "best" / "program.opt"))
    assert best.fingerprint() == hof[0]["fingerprint"]

    state = json.loads((run_dir / "state.json").read_text())
    assert state["log_count"] == 10 and state["evolution"]["pending"] == []

    second = run(run_dir, pool, max_evals=18)
    assert second.summary.evaluations == 18 and second.summary.evaluations_here == 8
    assert sorted(seqs(run_dir)) == list(range(18))


def test_ctrl_c_keeps_jobs_in_flight_for_resume(tmp_path, pool, monkeypatch):
    run_dir = tmp_path / "run"
    # No evaluation budget: the campaign is surely running (up to its 60 s time limit) when
    # the Ctrl-C comes.  It comes from the campaign's own thread, between two waits for
    # results, once results are being logged and a child is in flight on each worker: a
    # signal from another thread could be handled after both evaluations (tiny tasks) had
    # come back, leaving nothing in flight.
    campaign = Campaign.create(CONFIG.replace(max_evals=None), str(run_dir))
    log_path = str(run_dir / rundir.LOG_FILE)
    real_wait = pool.wait
    sent = []

    def wait_or_interrupt(timeout=None):
        if not sent and pool.busy() == 2 and len(rundir.read_log(log_path)) >= 3:
            sent.append(True)
            os.kill(os.getpid(), signal.SIGINT)  # handled before os.kill returns to us
            return []
        return real_wait(timeout=timeout)

    monkeypatch.setattr(pool, "wait", wait_or_interrupt)
    try:
        summary = campaign.run(pool, progress=False)
    finally:
        campaign.close()
        monkeypatch.undo()
    assert sent
    assert summary.stopped == "interrupted"
    state = json.loads((run_dir / "state.json").read_text())
    pending = [c["seq"] for c in state["evolution"]["pending"]]
    done = seqs(run_dir)
    assert pending and not set(pending) & set(done)
    assert sorted(done + pending) == list(range(len(done) + len(pending)))

    resumed = run(run_dir, pool, max_evals=len(done) + len(pending) + 4)
    assert sorted(seqs(run_dir)) == list(range(resumed.summary.evaluations))
    assert set(pending) <= set(seqs(run_dir))


def test_resume_after_a_crash_reads_back_results_logged_after_the_checkpoint(tmp_path, pool):
    run_dir = tmp_path / "run"
    run(run_dir, pool, create=CONFIG.replace(max_evals=6))
    shutil.copy(run_dir / "state.json", tmp_path / "state-6.json")
    run(run_dir, pool, max_evals=12)
    # A crash after 6 more evaluations were logged, before any checkpoint counted them:
    shutil.copy(tmp_path / "state-6.json", run_dir / "state.json")
    with open(run_dir / "evaluations.jsonl", "a") as f:
        f.write('{"seq": 99, "torn')  # and a line half written
    campaign = Campaign.open(str(run_dir), max_evals=15)
    assert campaign.log.count == 12 and campaign.evolution.counters["evaluations"] == 12
    campaign.summary = campaign.run(pool, progress=False)
    campaign.close()
    assert campaign.summary.evaluations_here == 3
    assert sorted(seqs(run_dir)) == list(range(15))


def strip_timing(run_dir) -> list[dict]:
    """Evaluation records without the fields that depend on timing and placement:
    ``seconds`` (measured), ``worker`` (which actor) and ``time`` (a timestamp)."""
    assert TIMING_FIELDS == ("seconds", "worker", "time")
    return [{k: v for k, v in r.items() if k not in TIMING_FIELDS}
            for r in rundir.read_log(os.path.join(run_dir, rundir.LOG_FILE))]


def test_one_worker_is_deterministic_and_resume_continues_exactly(tmp_path, pool):
    config = CONFIG.replace(workers=1, max_evals=12, seed=11)
    run(tmp_path / "a", pool, create=config)
    run(tmp_path / "b", pool, create=config)
    assert strip_timing(tmp_path / "a") == strip_timing(tmp_path / "b")
    assert [r["seq"] for r in strip_timing(tmp_path / "a")] == list(range(12))
    # Stopped at 6 and resumed to 12: the same campaign as one run of 12.
    run(tmp_path / "c", pool, create=config.replace(max_evals=6))
    run(tmp_path / "c", pool, max_evals=12)
    assert strip_timing(tmp_path / "c") == strip_timing(tmp_path / "a")


def test_hurdles_islands_and_the_new_mutations_resume_exactly(tmp_path):
    """Hurdles (with audits), islands (migration, resets), ``mutate_until_changed``,
    resampling, wired slots and adaptive mutation weights on the serial pool: a
    campaign stopped and resumed logs what one uninterrupted run logs, and every hurdle is the
    percentile of the first-task scores told before it (a reference computation)."""
    import numpy as np

    from discover.resolve import resolve_tasks
    from discover.search.pool import SerialPool

    config = resolve_tasks(CampaignConfig(
        tasks=("quadratic", "rosenbrock_2d"), held_out_tasks=(), population_size=8, lr_grid=2,
        max_statements=20, time_limit=120.0, checkpoint_every=4, progress_seconds=0, seed=13,
        workers=0, max_evals=40, hurdle_percentile=50.0, hurdle_window=6,
        hurdle_audit_every=4, mutate_until_changed=True,
        mutation_weights={"resample": 1.0, "constant": 1.0, "slot": 1.0},
        wired_slot_probability=1.0, islands=2, migration_every=5, reset_every=13, adaptive_mutation_window=10))
    serial = SerialPool(WorkerSpec.from_config(config))
    whole = run(tmp_path / "whole", serial, create=config)
    run(tmp_path / "stopped", serial, create=config.replace(max_evals=17))
    run(tmp_path / "stopped", serial, max_evals=40)
    log = strip_timing(tmp_path / "whole")
    assert strip_timing(tmp_path / "stopped") == log

    log.sort(key=lambda r: r["seq"])
    firsts: list[float] = []
    rejected = audited = 0
    for r in log:
        expected = float(np.percentile(firsts[-6:], 50.0)) if len(firsts) >= 6 else None
        met = r.get("hurdle")
        assert (met is None) == (expected is None), r["seq"]
        if met is not None:
            assert met["threshold"] == pytest.approx(expected, rel=1e-12)
            assert met["passed"] == (met["score"] <= met["threshold"])
            assert met["audit"] == (r["seq"] % 4 == 3)
            if not met["passed"] and not met["audit"]:
                rejected += 1
                assert r["status"] == "rejected" and r["score"] == 1.0
                assert list(r["scores"]) == ["quadratic"]
            else:
                assert sorted(r["scores"]) == ["quadratic", "rosenbrock_2d"]
            audited += met["audit"] and not met["passed"]
        firsts.append(r["scores"]["quadratic"])
    assert rejected > 0 and audited > 0
    line = Progress(1.0, io.StringIO()).line(**whole._progress_fields(0))  # what stderr shows
    assert "40 evals" in line and f"  rejected {rejected}" in line
    assert any(r["mutation"]["kind"] == "resample" for r in log)
    assert any(", read by" in r["mutation"]["detail"] for r in log
               if "slot" in r["mutation"]["kind"])
    bred = [r["island"] for r in log if r["mutation"]["kind"] != "start"]
    assert set(bred) == {0, 1} and all("island" not in r for r in log
                                       if r["mutation"]["kind"] == "start")
    state = json.loads((tmp_path / "whole" / "state.json").read_text())["evolution"]
    assert state["counters"]["migrations"] >= 7 and state["counters"]["resets"] >= 2


def test_held_out_margin_keeps_the_funnel_to_the_front_of_the_search(tmp_path, pool):
    """With one worker each job is submitted after the previous result is told, so the funnel
    of every candidate is known: held-out tasks exactly when the search score is within the
    margin of the best search score told before it (and under the threshold)."""
    config = CONFIG.replace(workers=1, max_evals=14, seed=5, held_out_threshold=2.0,
                            held_out_margin=0.0)
    run(tmp_path / "m", pool, create=config)
    log = sorted(strip_timing(tmp_path / "m"), key=lambda r: r["seq"])
    best, funnelled = None, 0
    for r in log:
        expected = best is None or r["score"] <= best
        assert (r["held_out_score"] is not None) == expected, r["seq"]
        funnelled += expected
        best = r["score"] if best is None else min(best, r["score"])
    assert 0 < funnelled < len(log)  # both branches were taken


def test_run_resume_and_eval_commands_serial(tmp_path, capsys):
    out = tmp_path / "cli"
    flags = ["--tasks", "quadratic", "--held-out", "", "--population", "6", "--quiet",
             "--workers", "0", "--seed", "2"]
    assert main(["run", "--out", str(out), "--max-evals", "5"] + flags) == 0
    printed = capsys.readouterr().out
    assert f"run directory: {out}" in printed and "evaluations: 5" in printed
    assert main(["run", "--out", str(out), "--max-evals", "5"] + flags) == 2  # not empty
    assert "not empty" in capsys.readouterr().err
    assert main(["resume", str(out), "--max-evals", "8", "--quiet"]) == 0
    assert "evaluations: 8 (3 in this run" in capsys.readouterr().out
    assert sorted(seqs(out)) == list(range(8))
    assert main(["resume", str(out), "--quiet"]) == 2
    assert "budget of 8 evaluations is spent" in capsys.readouterr().err

    assert main(["eval", str(out / "best" / "program.opt"), "--tasks", "quadratic",
                 "--baselines", "adam", "--lr-grid", "2"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["task", "program", "adam"]
    assert table[1].split()[0] == "quadratic" and float(table[1].split()[2]) == \
        pytest.approx(0.0, abs=0.05)
