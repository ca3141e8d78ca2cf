"""discover.reporting.report and ``discover report`` on run directories written by the campaign code.

The run directories come from real campaigns (``Campaign.create`` + ``Campaign.run``: real
evolution, records, hall of fame, checkpoints, ``best/``) whose evaluations are made by a
stand-in pool: scores drawn from each program's fingerprint, learning rates from the
engine's grid (``tasks.train.lr_grid``), some evaluations failed.  That keeps the module fast
and lets it choose what a run holds.  When ``discover.scoring.evaluate`` exists, one more test runs
the real serial path (``--workers 0``).  Tasks: quadratic searched, rosenbrock_2d held out
(the cheapest to train for the curves).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from helpers import StandInPool

import tasks
from discover import rundir
from discover.campaign import Campaign
from discover.cli import main
from discover.config import CampaignConfig
from discover.errors import UserError
from discover.progress import format_score
from discover.reporting.report import write_report
from discover.scoring import tuning
from discover.search.pool import WorkerSpec

CONFIG = CampaignConfig(tasks=("quadratic",), held_out_tasks=("rosenbrock_2d",),
                        population_size=6, lr_grid=2, max_statements=20, time_limit=60.0,
                        held_out_threshold=0.5, checkpoint_every=5, progress_seconds=0,
                        seed=3, workers=0)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def make_run(run_dir, config=CONFIG, **pool_options) -> str:
    campaign = Campaign.create(config, str(run_dir))
    try:
        campaign.run(StandInPool(WorkerSpec.from_config(campaign.config), **pool_options),
                     progress=False)
    finally:
        campaign.close()
    return str(run_dir)


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    run_dir = make_run(tmp_path_factory.mktemp("report") / "run", CONFIG.replace(max_evals=24))
    path = write_report(run_dir, say=lambda line: None)
    return run_dir, Path(path).read_text(encoding="utf-8")


def png_links(run_dir: str, text: str) -> list[str]:
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    for link in links:
        data = Path(run_dir, link).read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 1000, link
    return links


def section(text: str, title: str) -> str:
    return text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_report_has_every_plot_as_a_valid_png(full_run):
    run_dir, text = full_run
    assert png_links(run_dir, text) == ["report/fitness.png", "report/rates.png",
                                        "report/curves.png"]
    assert "## Missing or incomplete" not in text
    assert not [n for n in os.listdir(run_dir) + os.listdir(os.path.join(run_dir, "report"))
                if n.endswith(".tmp")]


def test_hall_of_fame_table_matches_hall_of_fame_json(full_run):
    run_dir, text = full_run
    hof = rundir.read_json(os.path.join(run_dir, rundir.HALL_OF_FAME_FILE))
    assert len(hof) >= 2
    table = section(text, "Hall of fame")
    rows = [line for line in table.splitlines() if re.match(r"\| \d+ \|", line)]
    assert len(rows) == len(hof)
    for row, entry in zip(rows, hof):
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[0] == str(entry["rank"])
        assert cells[1] == f"{entry['held_out_score']:+.4f}"
        bounds = entry.get("held_out_interval")
        assert cells[2] == ("-" if bounds is None else
                            f"[{bounds[0]:+.3f}, {bounds[1]:+.3f}]")
        assert cells[3] == f"{entry['search_score']:+.4f}"
        assert cells[4] == f"{entry['scores']['quadratic']:+.4f} @ {entry['lr']['quadratic']:.3g}"
        held_lr = entry["held_out_lr"]["rosenbrock_2d"]
        assert cells[5] == f"{entry['held_out_scores']['rosenbrock_2d']:+.4f} @ {held_lr:.3g}"
        assert f"```python\n{entry['program'].rstrip()}\n```" in table


def test_cost_section_sums_the_evaluation_log(full_run):
    run_dir, text = full_run
    log = rundir.read_log(os.path.join(run_dir, rundir.LOG_FILE))
    counters = rundir.read_json(os.path.join(run_dir, rundir.STATE_FILE))["evolution"]["counters"]
    cost = dict(re.findall(r"^\| ([^|]+?) \| ([^|]+?) \|$", section(text, "Cost"), re.MULTILINE))
    failed = sum(r["status"] != "ok" for r in log)
    assert len(log) == 24 and failed > 0
    assert cost["evaluations"] == "24"
    assert cost["failed evaluations"] == str(failed)
    assert cost["evaluations also scored on held-out tasks"] == str(
        sum(r["held_out_score"] is not None for r in log))
    assert cost["worker CPU time (sum of the evaluations' seconds)"] == (
        f"{sum(r['seconds'] for r in log):.2f} s")
    for worker in ("w0", "w1"):
        expected = sum(r["seconds"] for r in log if r["worker"] == worker)
        assert cost[worker] == f"{expected:.2f} s"
    assert cost["cache hits (children that reused a known score)"] == str(counters["cache_hits"])
    assert cost["invalid children rejected before evaluation"] == str(counters["invalid"])


def test_mutation_hurdle_and_island_sections_recount_the_log(tmp_path):
    config = CONFIG.replace(tasks=["quadratic", "logistic"], max_evals=40,
                            hurdle_percentile=40.0, hurdle_window=10, hurdle_audit_every=3,
                            islands=2, migration_every=10, reset_every=25)
    run_dir = make_run(tmp_path / "run", config)
    text = Path(write_report(run_dir, say=lambda line: None)).read_text(encoding="utf-8")
    log = [json.loads(line) for line in Path(run_dir, "evaluations.jsonl").read_text()
           .splitlines()]
    first = {}
    for r in sorted(log, key=lambda r: r["seq"]):
        first.setdefault(r["fingerprint"], r["score"] if r["score"] is not None else 2.0)
    kinds = {}
    for r in log:
        if r["mutation"].get("kind") not in (None, "start") and r["parent"] in first:
            mine = r["score"] if r["score"] is not None else 2.0
            n, b = kinds.get(r["mutation"]["kind"], (0, 0))
            kinds[r["mutation"]["kind"]] = (n + 1, b + (mine < first[r["parent"]]))
    rows = section(text, "Mutations")
    for kind, (n, b) in kinds.items():
        assert f"| {kind} | {n} | {b} | {100 * b / n:.1f}% |" in rows
    met = [r for r in log if "hurdle" in r]
    rejected = [r for r in met if r["status"] == "rejected"]
    audits = [r for r in met if r["hurdle"]["audit"] and not r["hurdle"]["passed"]]
    assert rejected and audits
    hurdles = section(text, "Hurdles")
    assert f"| children that met a hurdle | {len(met)} |" in hurdles
    assert f"| stopped at it | {len(rejected)} |" in hurdles
    assert f"| audited children the hurdle would have stopped | {len(audits)} |" in hurdles
    assert f"| children stopped at the hurdle | {len(rejected)} |" in section(text, "Cost")
    islands = section(text, "Islands")
    assert "![islands](report/islands.png)" in islands
    png_links(run_dir, islands)
    for island in (0, 1):
        mine = [r["score"] for r in log if r.get("island") == island and r["status"] == "ok"]
        assert f"| {island} | {len(mine)} | {format_score(min(mine))} |" in islands


def test_curves_compare_the_top_programs_with_tuned_baselines(full_run):
    run_dir, text = full_run
    hof = rundir.read_json(os.path.join(run_dir, rundir.HALL_OF_FAME_FILE))
    rows = re.findall(r"^\| rosenbrock_2d \| (\S+) \| (\S+) \| (\S+) \|", text, re.MULTILINE)
    names = [name for name, _, _ in rows]
    assert names == [f"#{e['rank']}" for e in hof[:3]] + ["adam", "sgd", "lion"]
    for (name, lr, _), entry in zip(rows[:3], hof):
        assert lr == f"{entry['held_out_lr']['rosenbrock_2d']:.3g}"
    # The baselines at the rate the tuning walk finds, on the grid of discover.scoring.tuning.
    default_lr = tasks.get("rosenbrock_2d").default_lr
    grid = {f"{tuning.rate(default_lr, k):.3g}" for k in range(tuning.LIMIT[0],
                                                                tuning.LIMIT[1] + 1)}
    assert all(lr in grid for _, lr, _ in rows[3:])
    # Adam at its tuned lr reaches a low loss on Rosenbrock (from 14.1 untrained).
    adam_valid = float(next(v for name, _, v in rows if name == "adam"))
    assert adam_valid < 1.0


def test_config_section_is_the_saved_configuration(full_run):
    run_dir, text = full_run
    block = section(text, "Configuration").split("```json\n", 1)[1].split("```", 1)[0]
    assert json.loads(block) == rundir.read_json(os.path.join(run_dir, rundir.CONFIG_FILE))


def test_fresh_run_with_no_evaluation(tmp_path):
    campaign = Campaign.create(CONFIG, str(tmp_path / "run"))
    campaign.close()
    text = Path(write_report(str(tmp_path / "run"), say=print)).read_text()
    missing = section(text, "Missing or incomplete")
    assert "No evaluation has finished yet" in missing and "`best/`" in missing
    assert "No scored program yet" in missing
    assert png_links(str(tmp_path / "run"), text) == []


def test_one_evaluation_without_held_out_scores_or_best(tmp_path):
    config = CONFIG.replace(max_evals=1, held_out_threshold=-5.0)
    run_dir = make_run(tmp_path / "run", config, fail_every=0)
    shutil.rmtree(os.path.join(run_dir, "best"))
    text = Path(write_report(run_dir, curves=False, say=print)).read_text()
    missing = section(text, "Missing or incomplete")
    assert "No program has a held-out score yet" in missing and "`best/`" in missing
    assert png_links(run_dir, text) == ["report/fitness.png", "report/rates.png"]
    record = rundir.read_log(os.path.join(run_dir, rundir.LOG_FILE))[0]
    assert f"| 1 | - | - | {record['score']:+.4f} |" in section(text, "Hall of fame")


def test_missing_state_and_corrupt_hall_of_fame_rank_from_the_log(tmp_path):
    run_dir = make_run(tmp_path / "run", CONFIG.replace(max_evals=8))
    os.unlink(os.path.join(run_dir, rundir.STATE_FILE))
    Path(run_dir, rundir.HALL_OF_FAME_FILE).write_text("[{torn")
    text = Path(write_report(run_dir, curves=False, say=print)).read_text()
    assert "`state.json` is missing" in text and "`hall_of_fame.json` is unreadable" in text
    assert "From `evaluations.jsonl`, by held-out score" in text
    assert "| cache hits (children that reused a known score) | - |" in text


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "absent", "no such run directory"),
    (lambda p: (p / "file").write_text("x") and p / "file", "is not a directory"),
    (lambda p: p, "not a campaign run directory (no config.json)"),
    (lambda p: (p / "config.json").write_text("{oops") and p, "config.json: unreadable"),
])
def test_not_a_run_directory_is_a_one_line_error(tmp_path, capsys, make, message):
    path = make(tmp_path)
    assert main(["report", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("discover: error:") and message in err
    with pytest.raises(UserError, match=re.escape(message)):
        rundir.load(str(path))


def test_command_writes_the_report(tmp_path, capsys):
    run_dir = make_run(tmp_path / "run", CONFIG.replace(max_evals=4))
    assert main(["report", run_dir, "--no-curves"]) == 0
    assert capsys.readouterr().out.strip().endswith(os.path.join(run_dir, "report.md"))
    assert os.path.isfile(os.path.join(run_dir, "report.md"))


def test_real_serial_campaign(tmp_path):
    run_dir = str(tmp_path / "run")
    # A loose funnel, so that six evaluations put programs in the hall of fame (by default
    # only a program that beats tuned adam on the search tasks earns the held-out tasks).
    config = tmp_path / "loose.toml"
    config.write_text("held_out_threshold = 0.5\n")
    assert main(["run", "--out", run_dir, "--workers", "0", "--max-evals", "6", "--quiet",
                 "--config", str(config), "--tasks", "quadratic", "--held-out", "rosenbrock_2d",
                 "--population", "4"]) == 0
    assert main(["report", run_dir, "--top", "1"]) == 0
    text = Path(run_dir, "report.md").read_text()
    assert len(png_links(run_dir, text)) == 3
    hof = rundir.read_json(os.path.join(run_dir, rundir.HALL_OF_FAME_FILE))
    assert hof[0]["program"].rstrip() in text
