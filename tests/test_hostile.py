"""Hostile and malformed input through the real command line: program files, configuration
files, flags and run directories.

Every case must end in one line on stderr naming the file and the problem, a non-zero exit and
no traceback; nothing in the input may be executed; nothing that exists may be modified (file
bytes and mtimes are compared before and after).  Validation comes before anything expensive:
in-process cases run with ``init_ray``, ``Campaign.create`` and the opening of a run directory
for writing (``RunDir.__init__``, which opens the log) replaced by functions that fail the
test, so reaching Ray, a JAX compile or a write is a failure, not just slow.
Nearly every case runs ``discover.cli.main`` in this process; a few run the ``discover``
console script, to check the exit status and stderr of the real program.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess

import pytest
from helpers import DISCOVER

from discover import rundir
from discover.cli import main
from discover.config import MAX_CONFIG_BYTES

RUN_FLAGS = ["--tasks", "quadratic", "--held-out", "", "--quiet"]

GOOD_PROGRAM = """\
def mine(w, g, lr, m):
    m = interp(g, m, 0.9)
    u = sign(m)
    u = u * lr
    return u, m
"""


# -- helpers ------------------------------------------------------------------------------------
def snapshot(path) -> dict:
    """Every entry under ``path`` (or ``path`` itself): bytes and mtime of files, and the
    names in directories."""
    path = str(path)
    if not os.path.lexists(path):
        return {}
    if not os.path.isdir(path):
        with open(path, "rb") as f:
            return {"": (f.read(), os.stat(path).st_mtime_ns)}
    out = {}
    for root, dirs, names in os.walk(path):
        rel = os.path.relpath(root, path)
        out[rel + "/"] = sorted(dirs + names)
        for name in names:
            full = os.path.join(root, name)
            with open(full, "rb") as f:
                out[os.path.join(rel, name)] = (f.read(), os.stat(full).st_mtime_ns)
    return out


def fails(argv: list[str], capsys, *words: str) -> str:
    """Run the CLI in-process; it must fail with one line on stderr containing ``words``."""
    status = main(argv)
    captured = capsys.readouterr()
    err = captured.err
    assert status == 2, (status, err)
    assert err.startswith("discover: error: ") and err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err and len(err) < 600, err
    for word in words:
        assert word in err, (word, err)
    return err


@pytest.fixture(autouse=True)
def nothing_expensive(monkeypatch):
    """Reaching Ray, the creation of a campaign, the opening of a run directory for writing,
    or an evaluator fails the test: every case here must be refused before that."""
    import discover.campaign
    import discover.rundir
    import discover.search.cluster

    evaluate_module = importlib.import_module("discover.scoring.evaluate")  # not the function

    def forbidden(*args, **kwargs):
        raise AssertionError("validation came too late: an expensive step was reached")

    monkeypatch.setattr(discover.search.cluster, "init_ray", forbidden)
    monkeypatch.setattr(discover.campaign, "init_ray", forbidden)
    monkeypatch.setattr(discover.campaign.Campaign, "create", forbidden)
    real_init = discover.rundir.RunDir.__init__

    def read_only(self, path, *, writable=True):
        if writable:
            forbidden()
        real_init(self, path, writable=False)

    monkeypatch.setattr(discover.rundir.RunDir, "__init__", read_only)
    monkeypatch.setattr(evaluate_module, "cached_evaluator", forbidden)


@pytest.fixture(scope="module")
def run_template(tmp_path_factory):
    """A small valid run directory, written without any evaluation: a campaign created, ten
    made-up results logged and told, a checkpoint, best/.  Budget: 10 evaluations (spent)."""
    from helpers import job_result, logged

    from discover.campaign import Campaign
    from discover.config import CampaignConfig

    config = CampaignConfig(tasks=("quadratic",), held_out_tasks=(), population_size=6,
                            workers=0, progress_seconds=0, checkpoint_every=4, max_evals=10,
                            seed=3)
    run_dir = str(tmp_path_factory.mktemp("template") / "run")
    campaign = Campaign.create(config, run_dir)
    queue = list(campaign.pending)
    for n in range(10):
        child = queue.pop(0) if queue else campaign.evolution.breed()
        record = logged(child, job_result(0.05 * n))
        campaign.log.append(record)
        campaign.evolution.tell(child, record)
    campaign.pending = []
    campaign.checkpoint([])
    campaign.write_best()
    campaign.close()
    assert rundir.validate_run_dir(run_dir) == []
    return run_dir


@pytest.fixture
def run_dir(run_template, tmp_path):
    path = tmp_path / "run"
    shutil.copytree(run_template, path)
    return path


def edit_json(path, change) -> None:
    data = json.loads(path.read_text())
    result = change(data)
    path.write_text(json.dumps(data if result is None else result))


# -- program files ------------------------------------------------------------------------------
MARKER = "PWNED_MARKER"
INJECTIONS = {
    "expression statement": 'def f(w, g, lr):\n    __import__("os").system("touch {m}")\n'
                            "    return g\n",
    "call in an assignment": 'def f(w, g, lr):\n    u = __import__("os").system("touch {m}")\n'
                             "    return u\n",
    "exec as an op": 'def f(w, g, lr):\n    u = exec("open(\'{m}\', \'w\')")\n    return u\n',
    "eval as an op": 'def f(w, g, lr):\n    u = eval("open(\'{m}\', \'w\')")\n    return u\n',
    "default argument": 'def f(w, g, lr=__import__("os").system("touch {m}")):\n'
                        "    return g\n",
    "decorator": '@__import__("os").system\ndef f(w, g, lr):\n    return g\n',
    "module code before the def": 'open("{m}", "w")\ndef f(w, g, lr):\n    return g\n',
    "import": "import os\ndef f(w, g, lr):\n    return g\n",
    "lambda": 'def f(w, g, lr):\n    u = (lambda: open("{m}", "w"))()\n    return u\n',
    "attribute": 'def f(w, g, lr):\n    u = g.__class__.__init__.__globals__\n    return u\n',
    "f-string": 'def f(w, g, lr):\n    u = f"{{open(\'{m}\', \'w\')}}"\n    return u\n',
    "walrus": 'def f(w, g, lr):\n    u = (x := open("{m}", "w"))\n    return u\n',
    "return expression": 'def f(w, g, lr):\n    return open("{m}", "w")\n',
}
MALFORMED = {
    "deeply nested brackets": "def f(w, g, lr):\n    u = " + "(" * 5000 + "g" + ")" * 5000
                              + "\n    return u\n",
    "deeply nested unary minus": "def f(w, g, lr):\n    u = " + "-" * 100_000 + "g\n"
                                 "    return u\n",
    "megabyte expression": "def f(w, g, lr):\n    u = " + "+".join(["g"] * 500_000)
                           + "\n    return u\n",
    "empty": "",
    "NUL byte": "def f(w, g, lr):\n    u = g\x00\n    return u\n",
    "not a program": "hello world\n",
}


def program_commands(path) -> list[list[str]]:
    return [["show", str(path)], ["eval", str(path), "--tasks", "quadratic"],
            ["export", str(path), "--to", "numpy"]]


@pytest.mark.parametrize("case", sorted(INJECTIONS))
def test_code_injection_in_a_program_file_is_never_executed(case, tmp_path, capsys,
                                                            monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.opt"
    path.write_text(INJECTIONS[case].format(m=MARKER))
    before = snapshot(tmp_path)
    for argv in program_commands(path):
        fails(argv, capsys, str(path))
    assert not (tmp_path / MARKER).exists()
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_program_files(case, tmp_path, capsys):
    path = tmp_path / "bad.opt"
    path.write_text(MALFORMED[case])
    for argv in program_commands(path):
        fails(argv, capsys, str(path))


def test_invalid_utf8_directory_missing_and_huge_program_files(tmp_path, capsys):
    (tmp_path / "latin1.opt").write_bytes(b"def f(w, g, lr):\n    u = g # caf\xe9\n    return u\n")
    (tmp_path / "huge.opt").write_bytes(b"#" * (8 << 20))
    (tmp_path / "dir.opt").mkdir()
    for name, words in [("latin1.opt", ["UTF-8", ":2:"]), ("huge.opt", ["longer than"]),
                        ("dir.opt", ["directory"]), ("missing.opt", ["such"])]:
        for argv in program_commands(tmp_path / name):
            fails(argv, capsys, name, *words)


def test_eval_refuses_a_program_too_big_to_compile(tmp_path, capsys):
    body = "".join(f"    u = u + {i}.5\n" for i in range(300))
    path = tmp_path / "long.opt"
    path.write_text(f"def f(w, g, lr):\n    u = g * lr\n{body}    return u\n")
    fails(["eval", str(path), "--tasks", "quadratic"], capsys, "long.opt", "statements")


@pytest.mark.parametrize("flags, words", [
    (["--tasks", "nope"], ["unknown task 'nope'"]),
    (["--baselines", "nope"], ["unknown baseline 'nope'"]),
    (["--lr-grid", "0"], ["--lr-grid"]),
    (["--lr-grid", "100000"], ["--lr-grid"]),
    (["--seeds", "x"], ["--seeds"]),
    (["--seeds", "-1"], ["--seeds"]),
])
def test_eval_flags(flags, words, tmp_path, capsys):
    path = tmp_path / "good.opt"
    path.write_text(GOOD_PROGRAM)
    fails(["eval", str(path), "--tasks", "quadratic"] + flags, capsys, *words)


def test_debug_shows_the_traceback(tmp_path):
    path = tmp_path / "bad.opt"
    path.write_text("import os\n")
    with pytest.raises(ValueError, match="bad.opt"):
        main(["--debug", "show", str(path)])


def test_the_real_program_exits_non_zero_with_one_line_and_runs_nothing(tmp_path):
    evil = tmp_path / "evil.opt"
    evil.write_text(INJECTIONS["call in an assignment"].format(m=tmp_path / MARKER))
    config = tmp_path / "c.json"
    config.write_text('{"seed": 1,\n "tasks": ["quadratic"],,\n}')
    for argv, words in [(["eval", str(evil), "--tasks", "quadratic"], ["evil.opt:2:"]),
                        (["run", "--config", str(config), "--out", str(tmp_path / "r")],
                         ["c.json:2:", "not valid JSON"])]:
        done = subprocess.run([DISCOVER, *argv], capture_output=True, text=True, timeout=120,
                              cwd=tmp_path, check=False)
        assert done.returncode == 2, done.stderr
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
        assert all(word in done.stderr for word in words), done.stderr
        assert done.stdout == ""
    assert sorted(os.listdir(tmp_path)) == ["c.json", "evil.opt"]


# -- configuration files and flags of `discover run` --------------------------------------------
CONFIGS = {
    # name: (file text, words the error must hold besides the file name)
    "unknown.json": ('{"seed": 1, "populaton_size": 8}', ["unknown configuration key"]),
    "unknown.toml": ("seed = 1\nmax_evalz = 3\n", ["unknown configuration key 'max_evalz'"]),
    "type.json": ('{"population_size": "8"}', ["'population_size'", "integer"]),
    "type.toml": ('tasks = "quadratic"\n', ["'tasks'", "list of string"]),
    "bool.json": ('{"max_evals": true}', ["'max_evals'"]),
    "zero_evals.json": ('{"max_evals": 0}', ["'max_evals'", ">= 1"]),
    "negative_evals.toml": ("max_evals = -5\n", ["'max_evals'", ">= 1"]),
    "zero_time.json": ('{"time_limit": 0}', ["'time_limit'", "> 0"]),
    "negative_time.toml": ("time_limit = -1.5\n", ["'time_limit'", "> 0"]),
    "negative_workers.json": ('{"workers": -2}', ["'workers'"]),
    "zero_population.json": ('{"population_size": 0}', ["'population_size'"]),
    "negative_seed.json": ('{"seed": -1}', ["'seed'"]),
    "huge_lr_grid.json": ('{"lr_grid": 1000000000}', ["'lr_grid'"]),
    "nan.json": ('{"time_limit": NaN}', ["'time_limit'", "finite"]),
    "infinity.json": ('{"held_out_threshold": -Infinity}', ["'held_out_threshold'", "finite"]),
    "nan.toml": ("time_limit = nan\n", ["'time_limit'", "finite"]),
    "inf.toml": ("progress_seconds = inf\n", ["'progress_seconds'", "finite"]),
    "nan_weight.json": ('{"mutation_weights": {"insert": NaN}}', ["'mutation_weights'"]),
    "long_name.json": ('{"name": "' + "x" * 100_000 + '"}', ["'name'", "..."]),
    "unknown_task.json": ('{"tasks": ["quadratc"]}', ["'tasks'", "unknown name 'quadratc'"]),
    "unknown_held_out.toml": ('held_out_tasks = ["nope"]\n', ["'held_out_tasks'", "'nope'"]),
    "unknown_task_module.json": ('{"tasks": ["no_such_module_xyz:make"]}',
                                 ["no module named 'no_such_module_xyz'"]),
    "start_too_long.toml": ('max_statements = 3\nstart = ["adam"]\n',
                            ["'start'", "'max_statements'"]),
    "unknown_baseline.json": ('{"start": ["adamm"]}', ["'start'", "'adamm'"]),
    "unknown_op.toml": ('ops = ["add", "system"]\n', ["'ops'", "'system'"]),
    "unknown_mutation.json": ('{"mutation_weights": {"explode": 1}}',
                              ["'mutation_weights'", "'explode'"]),
    "syntax.json": ('{\n  "seed": 1,\n  "tasks": [quadratic]\n}', [":3:13:", "not valid JSON"]),
    "trailing_comma.json": ('{"seed": 1,\n}', [":2:1:", "not valid JSON"]),
    "truncated.json": ('{"seed": 1, "tasks": ["quad', [":1:", "not valid JSON"]),
    "syntax.toml": ("seed = 1\ntasks = [quadratic]\n", [":2:10:", "not valid TOML"]),
    "truncated.toml": ("seed = 1\ntasks = [\n", [":3:1:", "not valid TOML", "end of file"]),
    "duplicate.toml": ("seed = 1\nseed = 2\n", [":2:", "not valid TOML"]),
    "list.json": ("[1, 2, 3]", ["expected a table of settings"]),
    "empty.json": ("", [":1:1:", "not valid JSON"]),
    "nested.json": ("[" * 100_000 + "]" * 100_000, ["nested too deeply"]),
    "nested.toml": ("a = " + "[" * 100_000 + "]" * 100_000 + "\n", ["nested too deeply"]),
    "huge.json": ('{"name": "' + "x" * (MAX_CONFIG_BYTES + 10) + '"}', ["larger than"]),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_bad_configuration_files(name, tmp_path, capsys):
    text, words = CONFIGS[name]
    config = tmp_path / name
    config.write_text(text)
    before = snapshot(tmp_path)
    fails(["run", "--config", str(config), "--out", str(tmp_path / "run")], capsys,
          str(config), *words)
    assert snapshot(tmp_path) == before  # no run directory, the file untouched


def test_bad_bytes_and_paths_as_configuration(tmp_path, capsys):
    (tmp_path / "latin1.json").write_bytes(b'{\n "name": "caf\xe9"}')
    (tmp_path / "dir.json").mkdir()
    for name, words in [("latin1.json", [":2:14:", "not UTF-8"]), ("dir.json", ["directory"]),
                        ("missing.toml", ["No such file"])]:
        fails(["run", "--config", str(tmp_path / name), "--out", str(tmp_path / "run")],
              capsys, name, *words)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("flags, words", [
    (["--max-evals", "0"], ["'max_evals'", ">= 1"]),
    (["--max-evals", "-4"], ["'max_evals'"]),
    (["--time-limit", "0"], ["'time_limit'"]),
    (["--time-limit", "nan"], ["'time_limit'", "finite"]),
    (["--time-limit", "inf"], ["'time_limit'", "finite"]),
    (["--workers", "-1"], ["'workers'"]),
    (["--population", "0"], ["'population_size'"]),
    (["--seed", "-7"], ["'seed'"]),
    (["--name", "../../etc"], ["'name'"]),
    (["--tasks", "quadratc"], ["unknown name 'quadratc'"]),
    (["--held-out", "quadratic"], ["'held_out_tasks'", "also a search task"]),
    (["--start", "adam,nope"], ["'start'", "'nope'"]),
    (["--start", "scratch,adam"], ["'start'"]),
])
def test_bad_flags_of_run(flags, words, tmp_path, capsys):
    fails(["run", "--out", str(tmp_path / "run")] + RUN_FLAGS + flags, capsys, *words)
    assert not (tmp_path / "run").exists()


def test_a_flag_fixes_nothing_in_a_bad_file(tmp_path, capsys):
    (tmp_path / "c.toml").write_text('tasks = ["nope"]\n')
    fails(["run", "--config", str(tmp_path / "c.toml"), "--tasks", "quadratic", "--out",
           str(tmp_path / "run")], capsys, "c.toml", "'nope'")


def test_run_refuses_an_existing_run_directory_or_file(run_dir, tmp_path, capsys):
    before = snapshot(run_dir)
    fails(["run", "--out", str(run_dir)] + RUN_FLAGS, capsys, "not empty", "discover resume")
    assert snapshot(run_dir) == before
    (tmp_path / "a_file").write_text("keep")
    fails(["run", "--out", str(tmp_path / "a_file")] + RUN_FLAGS, capsys, "not a directory")
    fails(["run", "--out", str(tmp_path / "a_file" / "run")] + RUN_FLAGS, capsys,
          "cannot create run directory")
    assert (tmp_path / "a_file").read_text() == "keep"


# -- run directories: `discover resume` ---------------------------------------------------------
def torn_last_line(run):
    with open(run / rundir.LOG_FILE, "a") as f:
        f.write('{"seq": 10, "program": "def f(g, lr):\\n  u = g')


def corrupt_middle_line(run):
    lines = (run / rundir.LOG_FILE).read_text().splitlines(keepends=True)
    lines[4] = lines[4][:40] + "\n"
    (run / rundir.LOG_FILE).write_text("".join(lines))


def middle_line_not_an_object(run):
    lines = (run / rundir.LOG_FILE).read_text().splitlines(keepends=True)
    lines[2] = "[1, 2]\n"
    (run / rundir.LOG_FILE).write_text("".join(lines))


def binary_garbage_in_the_middle(run):
    data = (run / rundir.LOG_FILE).read_bytes().split(b"\n")
    data[3] = b"\xff\xfe\x00garbage"
    (run / rundir.LOG_FILE).write_bytes(b"\n".join(data))


def record_missing_a_field(run):
    lines = (run / rundir.LOG_FILE).read_text().splitlines(keepends=True)
    record = json.loads(lines[5])
    del record["fingerprint"]
    lines[5] = json.dumps(record) + "\n"
    (run / rundir.LOG_FILE).write_text("".join(lines))


def bad_program_after_the_checkpoint(run):
    lines = (run / rundir.LOG_FILE).read_text().splitlines(keepends=True)
    record = dict(json.loads(lines[-1]), seq=10, program="import os\n")
    (run / rundir.LOG_FILE).write_text("".join(lines + [json.dumps(record) + "\n"]))


def duplicate_seq(run):
    lines = (run / rundir.LOG_FILE).read_text().splitlines(keepends=True)
    (run / rundir.LOG_FILE).write_text("".join(lines + [lines[1]]))


def lines_lost(run):
    lines = (run / rundir.LOG_FILE).read_text().splitlines(keepends=True)
    (run / rundir.LOG_FILE).write_text("".join(lines[:6]))


def truncated_state(run):
    data = (run / rundir.STATE_FILE).read_bytes()
    (run / rundir.STATE_FILE).write_bytes(data[: len(data) // 2])


def set_in_state(*keys, value):
    def change(run):
        def edit(data):
            target = data
            for key in keys[:-1]:
                target = target[key]
            target[keys[-1]] = value
        edit_json(run / rundir.STATE_FILE, edit)
    return change


def delete_in_state(*keys):
    def change(run):
        def edit(data):
            target = data
            for key in keys[:-1]:
                target = target[key]
            del target[keys[-1]]
        edit_json(run / rundir.STATE_FILE, edit)
    return change


def remove(name):
    def change(run):
        path = run / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    return change


def write(name, text):
    def change(run):
        (run / name).write_text(text)
    return change


RUN_DIR_CASES = {
    # name: (damage, words of the error)
    "no config.json": (remove(rundir.CONFIG_FILE), ["not a campaign run directory",
                                                   "config.json"]),
    "no state.json": (remove(rundir.STATE_FILE), ["not a campaign run directory", "state.json"]),
    "config.json not JSON": (write(rundir.CONFIG_FILE, "{\n oops"), ["config.json:2:2:"]),
    "config.json unknown key": (write(rundir.CONFIG_FILE, '{"tasks": ["quadratic"], '
                                      '"held_out_tasks": [], "colour": 1}'),
                                ["config.json", "unknown configuration key 'colour'"]),
    "config.json unknown task": (write(rundir.CONFIG_FILE, '{"tasks": ["gone"], '
                                       '"held_out_tasks": []}'), ["config.json", "'gone'"]),
    "state.json empty": (write(rundir.STATE_FILE, ""), ["state.json", "empty file"]),
    "state.json truncated": (truncated_state, ["state.json:", "not valid JSON"]),
    "state.json a list": (write(rundir.STATE_FILE, "[]"), ["state.json", "JSON list"]),
    "state.json deeply nested": (write(rundir.STATE_FILE, "[" * 100_000 + "]" * 100_000),
                                 ["state.json", "nested too deeply"]),
    "state.json newer version": (set_in_state("version", value=5),
                                 ["state.json", "version 5 is not supported"]),
    "state.json version as text": (set_in_state("version", value="3"),
                                   ["state.json", "version '3' is not supported"]),
    "state.json of version 2 (3-point grid)": (set_in_state("version", value=2),
                                               ["state.json", "state version 2", "3-point",
                                                "median", "start a new campaign"]),
    "state.json of version 1 (fp1)": (set_in_state("version", value=1),
                                      ["state.json", "state version 1", "fp1", "fp2",
                                       "start a new campaign"]),
    "state.json other fingerprints": (set_in_state("fingerprint_version", value="fp1"),
                                      ["state.json", "fingerprints of version 'fp1'",
                                       "would never hit"]),
    "state.json without version": (delete_in_state("version"), ["state.json", "'version'"]),
    "state.json log_count text": (set_in_state("log_count", value="10"),
                                  ["state.json", "wrong structure", "'log_count'"]),
    "state.json negative log_count": (set_in_state("log_count", value=-1),
                                      ["state.json", "log_count"]),
    "state.json no evolution": (delete_in_state("evolution"),
                                ["state.json", "'evolution' is missing"]),
    "state.json population not a list": (set_in_state("evolution", "population", value=5),
                                         ["state.json", "evolution.population"]),
    "state.json individual without program": (delete_in_state("evolution", "population", 0,
                                                              "program"),
                                              ["state.json", "evolution.population.program"]),
    "state.json individual with a bad program": (
        set_in_state("evolution", "population", 0, "program", value="import os"),
        ["state.json", "wrong structure"]),
    "state.json score as text": (set_in_state("evolution", "population", 1, "score",
                                              value="0.5"), ["state.json", "score"]),
    "state.json rng broken": (set_in_state("evolution", "rng", "selection", value=[1]),
                              ["state.json", "does not load"]),
    "state.json of version 3, its cache entry broken": (
        lambda run: (set_in_state("version", value=3)(run),
                     set_in_state("evolution", "cache", value={"x": []})(run)),
        ["state.json", "evolution.cache"]),
    "state.json of version 3 without its cache": (set_in_state("version", value=3),
                                                  ["state.json", "evolution.cache is missing"]),
    "log: corrupted line in the middle": (corrupt_middle_line,
                                          ["evaluations.jsonl:5:", "corrupted"]),
    "log: a list in the middle": (middle_line_not_an_object,
                                  ["evaluations.jsonl:3:", "not an object"]),
    "log: binary garbage in the middle": (binary_garbage_in_the_middle,
                                          ["evaluations.jsonl:4:", "corrupted"]),
    "log: record without fingerprint": (record_missing_a_field,
                                        ["evaluations.jsonl:6:", "fingerprint"]),
    "log: bad program after the checkpoint": (bad_program_after_the_checkpoint,
                                              ["evaluations.jsonl:11:", "does not parse"]),
    "log: duplicate seq": (duplicate_seq, ["evaluations.jsonl:11:", "twice"]),
    "log: lines lost": (lines_lost, ["evaluations.jsonl", "holds 6 evaluations",
                                     "counts 10"]),
}


@pytest.mark.parametrize("case", list(RUN_DIR_CASES))
def test_a_damaged_run_directory_is_refused_and_left_alone(case, run_dir, capsys):
    damage, words = RUN_DIR_CASES[case]
    damage(run_dir)
    before = snapshot(run_dir)
    fails(["resume", str(run_dir), "--max-evals", "50", "--time-limit", "5"], capsys,
          str(run_dir), *words)
    assert snapshot(run_dir) == before


def test_resume_of_what_is_no_run_directory(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    (tmp_path / "empty").mkdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    before = snapshot(tmp_path)
    fails(["resume", str(tmp_path / "missing")], capsys, "missing", "no such run directory")
    fails(["resume", str(tmp_path / "file")], capsys, "file", "not a directory")
    fails(["resume", str(tmp_path / "empty")], capsys, "empty", "not a campaign run directory")
    fails(["resume", str(tmp_path / "other")], capsys, "other", "not a campaign run directory")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("flags, words", [
    (["--max-evals", "0"], ["'max_evals'"]), (["--max-evals", "-3"], ["'max_evals'"]),
    (["--time-limit", "nan"], ["'time_limit'", "finite"]), (["--time-limit", "-1"],
                                                            ["'time_limit'"]),
    (["--workers", "-1"], ["'workers'"]),
    ([], ["budget of 10 evaluations is spent"]),
    (["--max-evals", "10"], ["budget of 10 evaluations is spent"]),
])
def test_resume_flags_are_checked_before_the_run_directory_is_touched(flags, words, run_dir,
                                                                      capsys):
    before = snapshot(run_dir)
    fails(["resume", str(run_dir)] + flags, capsys, *words)
    assert snapshot(run_dir) == before


def test_a_torn_last_line_is_a_crash_not_corruption(run_dir, capsys):
    torn_last_line(run_dir)
    assert rundir.validate_run_dir(str(run_dir)) == []
    assert len(rundir.read_log(str(run_dir / rundir.LOG_FILE))) == 10
    # Past every check (the budget of 10 is what stops it, before Campaign.open):
    fails(["resume", str(run_dir)], capsys, "budget of 10 evaluations is spent")
    # Nor is a last line of garbage that has its newline (a crash, then a partial flush).
    with open(run_dir / rundir.LOG_FILE, "a") as f:
        f.write("\x00\x00\x00\n")
    assert rundir.validate_run_dir(str(run_dir)) == []


def test_a_corrupted_middle_line_is_never_truncated_away(run_dir):
    """EvaluationLog (what Campaign.open uses) refuses, instead of cutting the log there."""
    from discover.errors import UserError

    corrupt_middle_line(run_dir)
    before = snapshot(run_dir)
    with pytest.raises(UserError, match="evaluations.jsonl:5: corrupted"):
        rundir.EvaluationLog(str(run_dir / rundir.LOG_FILE))
    assert snapshot(run_dir) == before


def test_campaign_open_validates_before_writing(run_dir, monkeypatch):
    """Campaign.open itself (not only the resume command) refuses a damaged directory, even
    when asked for a new budget, and writes nothing (config.json keeps its budget)."""
    from discover.campaign import Campaign
    from discover.errors import UserError

    monkeypatch.undo()  # this test calls the real Campaign.open (it must refuse first)
    corrupt_middle_line(run_dir)
    before = snapshot(run_dir)
    with pytest.raises(UserError, match="evaluations.jsonl:5"):
        Campaign.open(str(run_dir), max_evals=50)
    assert snapshot(run_dir) == before


# -- export -----------------------------------------------------------------------------------
def test_export_refuses_to_overwrite_and_bad_sources(run_dir, tmp_path, capsys):
    program = tmp_path / "good.opt"
    program.write_text(GOOD_PROGRAM)
    target = tmp_path / "existing.py"
    target.write_text("# mine\n")
    before = snapshot(tmp_path)
    fails(["export", str(program), "--to", "numpy", "-o", str(target)], capsys,
          "existing.py", "exists", "--force")
    fails(["export", str(program), "--to", "torch", "-o", str(tmp_path)], capsys,
          "is a directory")
    fails(["export", str(program), "--to", "optax", "-o", str(tmp_path / "no" / "x.py")],
          capsys, "no such directory")
    fails(["export", str(tmp_path / "missing"), "--to", "numpy"], capsys, "missing",
          "no such program file or run directory")
    (tmp_path / "not_a_run").mkdir()
    fails(["export", str(tmp_path / "not_a_run"), "--to", "numpy"], capsys, "not_a_run",
          "not a run directory")
    after = snapshot(tmp_path)
    del after["not_a_run/"], after["./"]
    del before["./"]
    assert after == before
    (run_dir / rundir.HALL_OF_FAME_FILE).write_text("[" * 100_000 + "]" * 100_000)
    fails(["export", str(run_dir), "--to", "numpy"], capsys, "hall_of_fame.json")
    (run_dir / "best" / "program.opt").write_text(INJECTIONS["import"])
    fails(["export", str(run_dir), "--to", "numpy"], capsys, "program.opt:1:")
