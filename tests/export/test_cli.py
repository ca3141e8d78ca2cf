"""``discover export``: program files and run directories, atomic writes, bad input."""

from __future__ import annotations

import json

import pytest

import programs


# -- the command line ----------------------------------------------------------------------------
def discover(*argv):
    from discover.cli import main

    return main([str(a) for a in argv])


@pytest.fixture
def run_dir(tmp_path):
    """A run directory as the search writes it: best/program.opt and a hall of fame."""
    run = tmp_path / "run1"
    (run / "best").mkdir(parents=True)
    best = programs.BASELINES["lion"]
    (run / "best" / "program.opt").write_text(str(best))
    entries = [{"program": str(programs.BASELINES["sgd"]), "search_score": 9.0},
               {"program": str(best), "search_score": 0.25, "held_out_score": 0.5},
               "not an entry"]
    (run / "hall_of_fame.json").write_text(json.dumps(entries))
    return run


def test_cli_exports_a_program_file_to_stdout(tmp_path, capsys):
    path = tmp_path / "adam.opt"
    path.write_text(str(programs.BASELINES["adam"]))
    assert discover("export", path, "--to", "numpy") == 0
    out = capsys.readouterr().out
    assert out == programs.export(programs.BASELINES["adam"], "numpy", file=str(path))


def test_cli_exports_a_run_with_its_provenance(run_dir, capsys):
    assert discover("export", run_dir, "--to", "torch") == 0
    doc = capsys.readouterr().out.split('"""')[1]
    assert f"run: {run_dir}" in doc
    assert "search score: 0.25" in doc and "held-out score: 0.5" in doc  # lion's entry
    (run_dir / "hall_of_fame.json").write_text(json.dumps([{"program": "def broken("}]))
    assert discover("export", run_dir, "--to", "torch") == 0  # no scores, still a module
    assert "score" not in capsys.readouterr().out.split('"""')[1]
    (run_dir / "hall_of_fame.json").unlink()
    assert discover("export", run_dir, "--to", "optax") == 0


def test_cli_writes_atomically_and_refuses_to_overwrite(run_dir, tmp_path, capsys):
    out = tmp_path / "lion.py"
    assert discover("export", run_dir, "--to", "numpy", "-o", out) == 0
    first = out.read_text()
    assert discover("export", run_dir, "--to", "optax", "-o", out) == 2
    assert "exists; pass --force" in capsys.readouterr().err
    assert out.read_text() == first
    assert discover("export", run_dir, "--to", "optax", "-o", out, "--force") == 0
    assert out.read_text() != first and "optax" in out.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lion.py", "run1"]  # no temp files


@pytest.mark.parametrize("setup,argv,message", [
    (None, ["missing.opt"], "no such program file"),
    ("bad", ["bad.opt"], "bad.opt:2:"),
    ("dir", ["."], "not a run directory"),
    ("hof", ["run"], "cannot read"),
    (None, ["x.opt", "-o", "no/such/dir/x.py"], None),
])
def test_cli_bad_input_is_one_line(tmp_path, monkeypatch, capsys, setup, argv, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.opt").write_text(str(programs.BASELINES["sgd"]))
    if setup == "bad":
        (tmp_path / "bad.opt").write_text("def p(g):\n    import os\n")
    if setup == "hof":
        (tmp_path / "run" / "best").mkdir(parents=True)
        (tmp_path / "run" / "best" / "program.opt").write_text(str(programs.BASELINES["sgd"]))
        (tmp_path / "run" / "hall_of_fame.json").write_text("[{")
    assert discover("export", *argv, "--to", "numpy") == 2
    err = capsys.readouterr().err
    assert err.startswith("discover: error: ") and err.count("\n") == 1
    assert message is None or message in err

