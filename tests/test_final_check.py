"""The final check of a campaign (``discover.scoring.final_check``): its top programs benched with the
bench's yardstick on tasks it never searched on, the funnel's precision, in the report."""

from __future__ import annotations

import dataclasses
import json

import pytest
from helpers import StandInPool

import programs
from discover.campaign import Campaign
from discover.config import CampaignConfig
from discover.records import HallEntry
from discover.reporting.report import write_report
from discover.scoring import bench, final_check
from discover.search.pool import WorkerSpec

CONFIG = CampaignConfig(tasks=("quadratic",), held_out_tasks=("rosenbrock_2d",),
                        population_size=6, lr_grid=2, held_out_threshold=0.5,
                        checkpoint_every=5, progress_seconds=0, seed=3, workers=0, max_evals=12,
                        final_check=2, final_check_min_evals=10)
CHECK_TASKS = ("logistic",)


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("final") / "run"
    campaign = Campaign.create(CONFIG, str(run_dir))
    try:
        campaign.run(StandInPool(WorkerSpec.from_config(campaign.config)), progress=False)
    finally:
        campaign.close()
    check = final_check.run_check(str(run_dir), campaign.config, task_names=CHECK_TASKS,
                                  seeds=(1, 2))
    return run_dir, check


def test_the_check_benches_the_hall_of_fames_leaders_on_other_tasks(checked):
    run_dir, check = checked
    hall = [HallEntry.from_json(e) for e in json.loads((run_dir / "hall_of_fame.json")
                                                      .read_text())]
    assert [p.rank for p in check.programs] == [1, 2]
    assert check.tasks == CHECK_TASKS and check.seeds == (1, 2)
    data = json.loads((run_dir / "final_check" / "results.json").read_text())
    benched = {c["name"]: c for c in data["contenders"]}
    assert set(benched) == {"adam", "rank1", "rank2"}
    for entry, p in zip(hall, check.programs):
        assert programs.parse(benched[f"rank{entry.rank}"]["program"]) == programs.parse(
            entry.program)
        assert p.crowned == final_check.crowned(entry)
    # The saved check reads back, and the second run trains nothing (the bench's cache).
    assert final_check.load(str(run_dir)) == check
    cache = bench.Cache(str(run_dir / "final_check" / bench.CACHE_FILE))
    before = len(cache.losses)
    again = final_check.run_check(str(run_dir), CONFIG, task_names=CHECK_TASKS, seeds=(1, 2))
    assert again == check
    assert len(bench.Cache(str(run_dir / "final_check" / bench.CACHE_FILE)).losses) == before


def test_the_report_shows_the_check(checked):
    run_dir, check = checked
    write_report(str(run_dir), curves=False)
    report = (run_dir / "report.md").read_text()
    assert "- Final check: final check (logistic; seeds 1,2;" in report
    assert all(line.strip() in report for line in check.lines()[1:])  # each program's line


def test_precision_counts_crowned_programs_that_beat_adam_only():
    rows = (final_check.Checked(1, True, -0.02, (-0.03, -0.01), "beats adam"),
            final_check.Checked(2, True, 0.0, (-0.01, 0.01), "within noise of adam"),
            final_check.Checked(3, False, -0.02, (-0.03, -0.01), "beats adam"))
    check = final_check.FinalCheck(("a",), (1, 2), "constant", rows)
    assert check.precision == (1, 2)
    assert "of the 2 crowned program(s) among the top 3, 1 beat tuned adam" in check.lines()[0]


def test_crowned_means_the_campaigns_own_interval_excludes_zero():
    def entry(held, interval, search=-0.1):
        return HallEntry(1, "p", "p", "f", search, held, {}, None, {}, None, 0, None, {},
                         interval)

    assert final_check.crowned(entry(-0.02, [-0.03, -0.01]))
    assert not final_check.crowned(entry(-0.02, [-0.03, 0.001]))
    assert not final_check.crowned(entry(-0.02, None))          # one held-out seed
    assert final_check.crowned(entry(None, None, search=-0.01))  # no funnel: search score
    assert not final_check.crowned(entry(None, None, search=-0.004))


def test_a_start_program_is_checked_but_never_crowned():
    """A baseline the search began from, unchanged (as rmsprop led the second transfer
    campaign's hall of fame under the schedule), is no find: not crowned whatever its interval,
    and the check's line says what it is."""
    start = HallEntry(1, "p", "p", "f", -0.01, -0.04, {}, None, {}, None, 3, None,
                      {"kind": "start", "detail": "rmsprop"}, [-0.043, -0.011])
    found = dataclasses.replace(start, mutation={"kind": "constant", "detail": "c"})
    assert final_check.start_name(start) == "rmsprop" and not final_check.crowned(start)
    assert final_check.start_name(found) is None and final_check.crowned(found)
    rows = (final_check.Checked(1, False, -0.02, (-0.03, -0.01), "beats adam", "rmsprop"),
            final_check.Checked(2, True, -0.02, (-0.03, -0.01), "beats adam"))
    check = final_check.FinalCheck(("a",), (1, 2), "constant", rows)
    assert check.precision == (1, 1)
    assert check.lines()[1].startswith("  rank 1 (start program rmsprop, not a find): -0.0200")
    assert check.lines()[2].startswith("  rank 2 (crowned): -0.0200")


def test_due_follows_the_configuration():
    assert final_check.due(CONFIG, 10) and not final_check.due(CONFIG, 9)
    assert not final_check.due(CONFIG.replace(final_check=0), 10**6)
    assert not final_check.due(CampaignConfig(), 200)  # the default two-minute run: skipped
