"""The Python API (``discover/api.py``): the README's example runs as written, on real tasks and
real Ray workers, and its results agree with the run directory and the engine; bad input is
refused before anything starts."""

from __future__ import annotations

import json
import math
import os
import re

import pytest
from helpers import ROOT

import discover
import programs
from discover.errors import UserError


def readme_example() -> str:
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    match = re.search(r"<!-- api-example -->\n```python\n(.*?)```", text, re.DOTALL)
    assert match, "README.md lost its API example"
    return match.group(1)


def test_the_readme_example_runs_as_written(ray_session, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(readme_example(), "README.md (API example)", "exec"), scope)  # noqa: S102
    result, best = scope["result"], scope["best"]
    printed = capsys.readouterr().out
    run_dir = tmp_path / "runs" / "notebook"
    assert result.run_dir == "runs/notebook" and run_dir.is_dir()
    assert result.summary.evaluations == 40 and result.summary.stopped == "max_evals"
    assert result.final_check is None  # 40 evaluations: below final_check_min_evals
    assert "run directory: runs/notebook" in printed and "evaluations: 40" in printed
    # the best program is the one the run directory names, and the hall of fame's first
    on_disk = programs.load(str(run_dir / "best" / "program.opt"))
    assert best.fingerprint() == on_disk.fingerprint()
    hall = json.loads((run_dir / "hall_of_fame.json").read_text())
    assert result.hall_of_fame[0].fingerprint == hall[0]["fingerprint"] == best.fingerprint()
    # it printed a score on fresh seeds: a number, no better than the untrained model's 1
    # would be absurd for a program that won the search
    score = float(printed.strip().splitlines()[-1])
    assert math.isfinite(score) and score < 1.0
    # the exported module computes what the run's own module does (the same code after the
    # docstring, which holds the provenance), and exporting the run directory gives the
    # module `discover export` writes
    def code(source: str) -> str:
        return source.split('"""', 2)[2]

    written = (run_dir / "best" / "discovered_torch.py").read_text()
    assert code(scope["module"]) == code(written)
    from discover.cli import main

    assert main(["export", str(run_dir), "--to", "numpy", "-o", str(tmp_path / "m.py")]) == 0
    assert discover.export(str(run_dir), "numpy") == (tmp_path / "m.py").read_text()


def test_bad_input_is_refused_before_anything_starts(tmp_path):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "mine.txt").write_text("kept")
    with pytest.raises(UserError, match="not empty"):
        discover.run_campaign(discover.CampaignConfig(workers=0), str(taken))
    assert os.listdir(taken) == ["mine.txt"]
    with pytest.raises(UserError, match="unknown name 'no_such_task'"):
        discover.run_campaign(discover.CampaignConfig(tasks=["no_such_task"], workers=0),
                              str(tmp_path / "new"))
    assert not (tmp_path / "new").exists()
    with pytest.raises(UserError, match="CampaignConfig"):
        discover.run_campaign({"max_evals": 3}, str(tmp_path / "new"))
    with pytest.raises(UserError, match="unknown baseline 'nope'"):
        discover.bench_programs({}, "quadratic", baselines=["nope"], out=str(tmp_path / "b"))
    with pytest.raises(UserError, match="as a baseline"):
        discover.bench_programs({"adam": programs.BASELINES["sgd"]}, "quadratic",
                                out=str(tmp_path / "b"))
    assert not (tmp_path / "b").exists()
    with pytest.raises(programs.ProgramError):
        discover.score("def p(g, lr):\n    u = g ** lr ** \n    return u\n", ["quadratic"])


def test_bench_programs_matches_the_bench_command(tmp_path, capsys):
    """The API and ``discover bench`` are one path: the same cache, the same table."""
    from discover.cli import main
    from discover.scoring import bench as bench_module

    sgd_file = tmp_path / "mine.opt"
    sgd_file.write_text(str(programs.BASELINES["sgd"]))
    out = tmp_path / "api"
    result = discover.bench_programs({"mine": str(sgd_file)}, ["quadratic"], seeds=(0, 1),
                                     baselines=["sgd"], out=str(out))
    assert result.trained_windows > 0 and os.path.isfile(out / "table.md")
    # "mine" is sgd: the same runs, the same scores
    assert result.scores["mine"]["quadratic"].seed_scores == \
        result.scores["sgd"]["quadratic"].seed_scores
    assert main(["bench", str(sgd_file), "--tasks", "quadratic", "--seeds", "0,1",
                 "--baselines", "sgd", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "\n0 windows of rates trained" in printed  # all of it from the API's cache
    assert bench_module.markdown(result).split("Tuned learning rates:")[0].strip() in printed
