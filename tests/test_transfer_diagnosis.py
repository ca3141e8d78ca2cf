"""``scripts/transfer_diagnosis.py``: conditions benched and summed up, on cheap tasks."""

from __future__ import annotations

import csv
import os
import sys

from helpers import ROOT

sys.path.insert(0, os.path.join(ROOT, "scripts"))
import transfer_diagnosis as td


def test_the_diagnosis_benches_each_condition_and_sums_them_up(tmp_path, capsys):
    program = tmp_path / "mine.opt"
    program.write_text("def mine(g, lr, m):\n    m = 0.9 * m + g\n    u = lr * m\n"
                       "    return u, m\n")
    out = tmp_path / "diag"
    argv = ["--out", str(out), "--conditions", "base,schedule", "--tasks", "quadratic",
            "--programs", str(program), "--baselines", "adam,sgd", "--seeds", "1,2"]
    assert td.main(argv) == 0
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert {(r["condition"], r["program"]) for r in rows} == {
        (c, p) for c in ("base", "schedule") for p in ("mine", "sgd")}
    # Each cell is the bench of that condition (td.condition_tasks names the variants).
    assert "warmup_cosine" in (out / "schedule" / "table.md").read_text()
    horizon = next(c for c in td.CONDITIONS if c.name == "horizon2x")
    assert td.condition_tasks(horizon, ["quadratic"]) == ["quadratic.steps2x"]
    table = (out / "table.md").read_text()
    assert "| mine (crowned) |" in table and "| sgd |" in table
    assert (out / "factors.png").read_bytes()[:4] == b"\x89PNG"
    capsys.readouterr()
    assert td.main(argv) == 0  # a second run trains nothing: every condition from its cache
    assert capsys.readouterr().out.count("0 windows trained") == 2


def test_rank_agreement_is_spearman_against_each_tier():
    def row(condition, factor, program, difference):
        return {"condition": condition, "factor": factor, "program": program,
                "difference": difference}

    rows = [row("tierC", "tier", p, d) for p, d in zip("abcde", (1, 2, 3, 4, 5))]
    rows += [row("base", "base", p, d) for p, d in zip("abcde", (5, 4, 3, 2, 1))]
    rows += [row("schedule", "schedule", p, d) for p, d in zip("abcde", (1, 2, 3, 5, 4))]
    agreement = td.rank_agreement(rows)
    assert round(agreement["base"]["C"][0], 6) == -1.0 and agreement["base"]["C"][2] == 5
    assert round(agreement["schedule"]["C"][0], 2) == 0.9
    assert "tierC" not in agreement
