"""Promotion (``promotion_seeds``): a candidate the funnel would crown is scored again on the
held-out tasks over fresh seeds before it ranks in the hall of fame; promoted programs rank
first by that score, the campaign's claim rests on its interval, and a stopped campaign
resumed promotes as one that ran through.  Real training: a serial worker, small tasks on
which nesterov, nadam and lookahead beat tuned adam by the held-out interval (measured)."""

from __future__ import annotations

import json
import os
import sys

import pytest
from helpers import ROOT

import programs
from discover.campaign import Campaign
from discover.config import CampaignConfig
from discover.errors import UserError
from discover.records import TIMING_FIELDS, HallEntry, LogRecord
from discover.reporting.report import write_report
from discover.scoring import final_check
from discover.scoring.evaluate import Evaluator
from discover.scoring.stats import MIN_EFFECT

CONFIG = CampaignConfig(tasks=("logistic",), held_out_tasks=("quadratic",),
                        start=("adam", "nesterov", "lookahead", "sgd", "nadam"),
                        promotion_seeds=(3, 4, 5), held_out_threshold=1.0,  # funnel every one
                        population_size=10, max_evals=12, time_limit=None, workers=0,
                        lr_grid=2, max_statements=40, progress_seconds=0, final_check=0,
                        checkpoint_every=3, seed=1)


def records_of(run_dir) -> list[dict]:
    with open(run_dir / "evaluations.jsonl", encoding="utf-8") as f:
        return [{k: v for k, v in json.loads(line).items() if k not in TIMING_FIELDS}
                for line in f]


@pytest.fixture(scope="module")
def promoted_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("promotion") / "run"
    campaign = Campaign.create(CONFIG, str(run_dir))
    try:
        summary = campaign.run(progress=False)
    finally:
        campaign.close()
    return run_dir, summary


@pytest.mark.parametrize("change, words", [
    ({"promotion_seeds": (2, 3)}, "none of held_out_seeds"),
    ({"promotion_seeds": (3,)}, "at least two seeds"),
    ({"promotion_seeds": (3, 3)}, "none twice"),
    ({"held_out_tasks": ()}, "needs held-out tasks"),
])
def test_promotion_seeds_are_checked(change, words):
    with pytest.raises(UserError, match="promotion_seeds") as info:
        CONFIG.replace(**change)
    assert words in str(info.value)


def test_a_candidate_is_promoted_exactly_when_its_held_out_interval_would_crown_it(
        promoted_run):
    run_dir, _ = promoted_run
    records = [LogRecord.from_json(r | {k: 0 if k != "worker" else "w" for k in TIMING_FIELDS})
               for r in records_of(run_dir)]
    funnelled = [r for r in records if r.held_out_interval is not None]
    promoted = [r for r in funnelled if r.promotion_score is not None]
    for r in funnelled:
        assert (r.promotion_score is not None) == (r.held_out_interval[1] < -MIN_EFFECT), r.seq
    assert promoted and len(promoted) < len(funnelled)  # both kinds occur here
    assert all(r.promotion_score is None for r in records if r.held_out_interval is None)
    # The promotion is the held-out tasks over the promotion seeds, walked from the held-out
    # rates: what an evaluator of its own (compiled apart) gives; fresh seeds, other numbers.
    fresh = Evaluator(list(CONFIG.held_out_tasks), seeds=CONFIG.promotion_seeds,
                      lr_grid=CONFIG.lr_grid, max_statements=CONFIG.max_statements,
                      max_slots=CONFIG.max_slots)
    for r in promoted:
        again = fresh.evaluate(programs.parse(r.program), starts=r.held_out_lr)
        assert r.promotion_score == pytest.approx(again.aggregate, abs=1e-6)
        assert r.promotion_interval == pytest.approx(list(again.interval), abs=1e-6)
        assert r.promotion_score != pytest.approx(r.held_out_score, abs=1e-4)


def test_the_hall_ranks_promoted_programs_first_by_their_fresh_score(promoted_run):
    run_dir, summary = promoted_run
    hall = [HallEntry.from_json(e)
            for e in json.loads((run_dir / "hall_of_fame.json").read_text())]
    promoted = [e for e in hall if e.promotion_score is not None]
    assert promoted and hall[:len(promoted)] == promoted  # first
    assert [e.promotion_score for e in promoted] == sorted(e.promotion_score for e in promoted)
    rest = [e.held_out_score for e in hall[len(promoted):]]
    assert rest == sorted(rest)
    # The campaign's claim for a promoted program is its fresh interval, not the funnel's.
    for e in promoted:
        assert final_check.crowned(e) == (e.promotion_interval[1] < -MIN_EFFECT
                                          and e.mutation.get("kind") != "start")
    assert summary.best_promotion_score == hall[0].promotion_score
    assert any("promoted (held-out tasks, fresh seeds)" in line for line in summary.lines())
    header = (run_dir / "best" / "program.opt").read_text().splitlines()[1]
    assert "promoted on fresh seeds" in header
    report = write_report(str(run_dir), curves=False, say=lambda line: None)
    with open(report, encoding="utf-8") as f:
        text = f.read()
    assert "| promoted (fresh seeds) |" in text


def test_a_stopped_campaign_resumed_promotes_as_one_that_ran_through(promoted_run, tmp_path):
    run_dir, _ = promoted_run
    resumed = tmp_path / "run"
    campaign = Campaign.create(CONFIG.replace(max_evals=7), str(resumed))
    try:
        campaign.run(progress=False)
    finally:
        campaign.close()
    campaign = Campaign.open(str(resumed), max_evals=CONFIG.max_evals)
    try:
        campaign.run(progress=False)
    finally:
        campaign.close()
    assert records_of(resumed) == records_of(run_dir)
    assert (json.loads((resumed / "hall_of_fame.json").read_text())
            == json.loads((run_dir / "hall_of_fame.json").read_text()))


def test_promotion_replayed_on_a_run_without_it_gives_the_same_scores_and_order(
        promoted_run, tmp_path):
    """``scripts/promote_run.py`` on the same campaign run without promotion (promotion
    changes no child the search breeds): the same promotions, seq for seq, the same order."""
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    import promote_run

    run_dir, _ = promoted_run
    plain = tmp_path / "plain"
    campaign = Campaign.create(CONFIG.replace(promotion_seeds=()), str(plain))
    try:
        campaign.run(progress=False)
    finally:
        campaign.close()
    promoted = {r["seq"]: r for r in records_of(run_dir) if "promotion_score" in r}
    without = records_of(plain)
    assert all("promotion_score" not in r for r in without)
    strip = ("promotion_score", "promotion_scores", "promotion_lr", "promotion_interval")
    assert [{k: v for k, v in r.items() if k not in strip} for r in records_of(run_dir)] == without

    out = tmp_path / "replay"
    assert promote_run.main([str(plain), "--seeds", "3,4,5", "--out", str(out),
                             "--threads", "2"]) == 0
    cache = json.loads((out / "cache.json").read_text())
    assert {int(key.split("/")[1]) for key in cache} == set(promoted)
    for key, replayed in cache.items():
        record = promoted[int(key.split("/")[1])]
        assert replayed["score"] == pytest.approx(record["promotion_score"], abs=1e-9)
        assert replayed["interval"] == pytest.approx(record["promotion_interval"], abs=1e-9)
    hall = [e for e in json.loads((run_dir / "hall_of_fame.json").read_text())
            if e["promotion_score"] is not None]
    table = (out / "table.md").read_text()
    rows = [line.split("|") for line in table.splitlines() if line.startswith("| plain |")]
    by_rank = sorted(rows, key=lambda cells: int(cells[7]))
    assert [int(cells[2]) for cells in by_rank] == [e["seq"] for e in hall]


def test_funnel_precision_benches_every_crowned_find_and_counts_them(promoted_run, tmp_path):
    """``scripts/funnel_precision.py`` on the promoting run: a row for every find the funnel
    crowned (start programs left out), whether promotion kept it (from the run's own
    promotion, replayed), its bench verdict, and counts that add up; a rerun trains nothing."""
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    import funnel_precision
    import promote_run

    run_dir, _ = promoted_run
    replay = tmp_path / "replay"
    assert promote_run.main([str(run_dir), "--out", str(replay), "--threads", "2"]) == 0
    out = tmp_path / "precision"
    argv = [str(run_dir), "--out", str(out), "--tasks", "logistic", "--seeds", "1,2",
            "--promotion", str(replay / "cache.json")]
    assert funnel_precision.main(argv) == 0
    finds = [r for r in records_of(run_dir) if r.get("held_out_interval")
             and r["held_out_interval"][1] < -MIN_EFFECT and r["mutation"]["kind"] != "start"]
    data = json.loads((out / "results.json").read_text())["programs"]
    assert finds and [p["seq"] for p in data] == [r["seq"] for r in finds]
    for p, r in zip(data, finds):
        kept = r["promotion_interval"][1] < -MIN_EFFECT
        assert p["promoted"] == kept and p["funnel_score"] == r["held_out_score"]
        assert p["beats"] == (p["interval"] is not None and p["interval"][1] < -MIN_EFFECT)
    table = (out / "table.md").read_text()
    name = run_dir.name
    row = next(line for line in table.splitlines() if line.startswith(f"| {name} | {len(finds)} |"))
    assert row == (f"| {name} | {len(finds)} | {sum(p['beats'] for p in data)} | "
                   f"{sum(bool(p['promoted']) for p in data)} | "
                   f"{sum(bool(p['promoted']) and p['beats'] for p in data)} |")
    cache = out / name / "cache.json"
    before = cache.read_bytes()
    assert funnel_precision.main(argv) == 0 and cache.read_bytes() == before  # cached
