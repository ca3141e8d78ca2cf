"""discover.rundir: the one atomic writer, creating whole or not at all, reopening that writes
nothing before its checks pass, and the report's lenient reading."""

from __future__ import annotations

import json
import os

import pytest
from helpers import job_result, logged

from discover import rundir
from discover.errors import UserError
from discover.rundir import RunDir
from discover.rundir.files import EvaluationLog, read_log, write_json_atomic
from discover.search.individual import Individual
from programs import BASELINES


def test_atomic_write_leaves_the_old_file_when_it_fails(tmp_path, monkeypatch):
    path = tmp_path / "state.json"
    write_json_atomic(str(path), {"a": 1})
    before = path.read_bytes()
    with pytest.raises(ValueError):
        write_json_atomic(str(path), {"a": float("nan")})  # JSON has no NaN: refused
    assert path.read_bytes() == before
    real_fsync = os.fsync

    def failing_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError):
        write_json_atomic(str(path), {"a": 2})
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]  # no temporary left
    write_json_atomic(str(path), {"a": 3})
    assert json.loads(path.read_text()) == {"a": 3}
    assert path.read_text().startswith("{\"a\":3}")  # state.json is written compact


def fill(files: RunDir) -> None:
    files.write_config({"made": "here"})


def test_create_is_whole_or_nothing(tmp_path):
    target = tmp_path / "runs" / "one"
    made = RunDir.create(str(target), fill)
    made.close()
    assert sorted(os.listdir(target)) == ["config.json", "evaluations.jsonl"]

    def half(files: RunDir) -> None:
        files.write_config({"half": True})
        raise RuntimeError("killed while filling")

    with pytest.raises(RuntimeError):
        RunDir.create(str(tmp_path / "runs" / "two"), half)
    assert sorted(os.listdir(tmp_path / "runs")) == ["one"]  # no half-made directory
    with pytest.raises(UserError, match="is not empty"):
        RunDir.create(str(target), fill)
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(UserError, match="exists and is not a directory"):
        RunDir.create(str(tmp_path / "a_file"), fill)


def test_the_log_appends_records_and_drops_a_torn_last_line(tmp_path):
    path = str(tmp_path / "evaluations.jsonl")
    log = EvaluationLog(path)
    child = Individual(BASELINES["sgd"], "f" * 16, seq=0)
    log.append(logged(child, job_result(0.5)))
    log.close()
    with open(path, "a") as f:
        f.write('{"seq": 1, "torn')
    assert [r["seq"] for r in read_log(path)] == [0]
    again = EvaluationLog(path)  # truncates the torn line away
    assert again.count == 1
    with open(path) as f:
        assert f.read().endswith("}\n")
    again.close()
    assert rundir.read_records(path)[0].score == 0.5


def made_run(tmp_path, temporary: str):
    """A new serial campaign's run directory, with a temporary file holding ``temporary``."""
    from discover.campaign import Campaign
    from discover.config import CampaignConfig

    config = CampaignConfig(tasks=("quadratic",), held_out_tasks=(), population_size=4,
                            workers=0, progress_seconds=0)
    path = tmp_path / "run"
    Campaign.create(config, str(path)).close()
    (path / ".state.json.123.tmp").write_text(temporary)
    return path


def test_open_runs_its_checks_before_writing_anything(tmp_path):
    path = made_run(tmp_path, "left by a killed writer")
    before = {p.name: p.read_bytes() for p in path.iterdir()}

    def refuse(view: RunDir) -> None:
        assert view.config_data()["tasks"] == ["quadratic"]
        raise UserError("no, not now")

    with pytest.raises(UserError, match="no, not now"):
        RunDir.open(str(path), refuse)
    assert {p.name: p.read_bytes() for p in path.iterdir()} == before
    opened = RunDir.open(str(path))
    opened.close()
    assert ".state.json.123.tmp" not in os.listdir(path)  # stale temporaries removed
    with pytest.raises(UserError, match="no such run directory"):
        RunDir.open(str(tmp_path / "nowhere"))


def test_a_run_directory_open_in_another_process_is_refused_and_left_untouched(tmp_path):
    import subprocess
    import sys

    from discover.campaign import Campaign

    path = made_run(tmp_path, "a live temporary of the other campaign")
    holder = subprocess.Popen(
        [sys.executable, "-c", ("import sys; from discover.rundir import RunDir; "
         f"r = RunDir.open({str(path)!r}); print('open', flush=True); sys.stdin.read(); "
         "r.close()")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        assert holder.stdout.readline().strip() == "open"
        (path / ".hall.json.9.tmp").write_text("written after the holder opened it")
        before = {p.name: p.read_bytes() for p in path.iterdir()}
        with pytest.raises(UserError, match="in use: another campaign has it open"):
            RunDir.open(str(path))
        with pytest.raises(UserError, match="in use"):
            Campaign.open(str(path))
        assert {p.name: p.read_bytes() for p in path.iterdir()} == before
    finally:
        holder.communicate("", timeout=60)
    assert holder.returncode == 0
    RunDir.open(str(path)).close()  # the lock went with the holder
    first = RunDir.open(str(path))  # and within one process, too
    with pytest.raises(UserError, match="in use"):
        RunDir.open(str(path))
    first.close()
    RunDir.open(str(path)).close()


def test_events_are_appended_one_line_each(tmp_path):
    files = RunDir.create(str(tmp_path / "run"), fill)
    files.event({"event": "worker_lost", "worker": "actor-0"})
    files.event({"event": "worker_ready", "worker": "actor-2"})
    files.close()
    lines = (tmp_path / "run" / rundir.EVENTS_FILE).read_text().splitlines()
    assert [json.loads(line)["event"] for line in lines] == ["worker_lost", "worker_ready"]


def test_load_reads_what_is_there_and_notes_the_rest(tmp_path):
    path = tmp_path / "run"
    RunDir.create(str(path), fill).close()
    run = rundir.load(str(path))
    assert run.config == {"made": "here"} and run.log == [] and run.hall is None
    assert any("state.json" in n for n in run.notes)
    assert any("No evaluation has finished yet" in n for n in run.notes)
    (path / rundir.HALL_OF_FAME_FILE).write_text(json.dumps([{"rank": 1}]))
    run = rundir.load(str(path))
    assert run.hall == []
    assert any("hall_of_fame.json`: 1 entry left out" in n and "program is missing" in n
               for n in run.notes)
    with pytest.raises(UserError, match="no config.json"):
        rundir.load(str(tmp_path))


def test_default_path(tmp_path):
    assert rundir.default_path("lion-like", str(tmp_path)) == str(tmp_path / "lion-like")
    first = rundir.default_path("", str(tmp_path))
    os.makedirs(first)
    assert rundir.default_path("", str(tmp_path)) == first + "-2"
