"""``discover bench``: tables, figures, the cache and its resume, on two cheap tasks."""

from __future__ import annotations

import csv
import json
import os

import numpy as np
import pytest

import programs
from discover import cli
from discover.scoring import bench
from discover.scoring.evaluate import Evaluator

TASKS = "quadratic,logistic"
MOMENTUM_LIKE = "def mine(g, lr, m):\n    m = 0.9 * m + g\n    u = lr * m\n    return u, m\n"


@pytest.fixture(scope="module")
def benched(tmp_path_factory):
    """One bench of a user program beside adam, sgd and lion (seeds 0 and 1)."""
    out = tmp_path_factory.mktemp("bench")
    program = out / "mine.opt"
    program.write_text(MOMENTUM_LIKE)
    argv = ["bench", str(program), "--tasks", TASKS, "--seeds", "0,1", "--baselines",
            "adam,sgd,lion", "--out", str(out / "b")]
    assert cli.main(argv) == 0
    return out / "b", argv


def test_bench_writes_its_tables_and_figures(benched):
    out, _ = benched
    for name in ("table.md", "table.csv", "results.json", "profile.png", "lr_curves.png",
                 bench.CACHE_FILE):
        assert (out / name).stat().st_size > 0, name
    assert (out / "profile.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = (out / "table.md").read_text()
    assert "| mine (yours) |" in table and "| lion |" in table and "Tuned learning rates" in table
    rows = list(csv.DictReader((out / "table.csv").open()))
    assert {r["optimizer"] for r in rows} == {"mine", "adam", "sgd", "lion"}
    assert {r["task"] for r in rows} == {"quadratic", "logistic", "median"}


def test_bench_scores_are_the_evaluators(benched):
    """The bench (its own cache and trainers) gives the scores of a wide ``Evaluator`` with
    the same seeds: the same yardstick."""
    out, _ = benched
    data = json.loads((out / "results.json").read_text())
    evaluator = Evaluator(TASKS.split(","), seeds=(0, 1), wide=True)
    for contender in data["contenders"]:
        program = programs.parse(contender["program"])
        direct = evaluator.evaluate(program)
        assert contender["median"] == pytest.approx(direct.aggregate, abs=1e-9)
        for task, score in contender["scores"].items():
            mine = direct.by_task()[task]
            assert score["score"] == pytest.approx(mine.score, abs=1e-9)
            assert score["lr"] == pytest.approx(mine.lr, rel=1e-6)
        if contender["interval"] is not None:
            assert contender["interval"] == pytest.approx(list(direct.interval), abs=1e-9)


def test_a_second_bench_trains_nothing_and_an_interrupted_one_resumes(benched, capsys):
    out, argv = benched
    cache = json.loads((out / bench.CACHE_FILE).read_text())
    table = (out / "table.md").read_text()
    assert cli.main(argv) == 0
    assert "0 windows of rates trained" in capsys.readouterr().out
    assert (out / "table.md").read_text() == table
    # An interruption: half the cached runs lost.  The bench trains only what is missing
    # and writes the same table.
    keys = sorted(cache["losses"])
    kept = {k: cache["losses"][k] for k in keys[: len(keys) // 2]}
    (out / bench.CACHE_FILE).write_text(json.dumps({"version": bench.CACHE_VERSION,
                                                    "losses": kept}))
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    trained = int(printed.split(" windows of rates trained")[0].split()[-1])
    assert 0 < trained
    assert (out / "table.md").read_text() == table
    assert json.loads((out / bench.CACHE_FILE).read_text())["losses"].keys() == \
        cache["losses"].keys()


def test_a_bench_with_more_seeds_keeps_the_cached_runs_of_the_others(benched, tmp_path):
    """A seed's run depends in the last float32 places on the seeds trained beside it (one
    batch), so a cached run is never replaced: a later bench with another seed set reads
    what the first one wrote, and its judgements do not depend on which ran first."""
    out, argv = benched
    cache = json.loads((out / bench.CACHE_FILE).read_text())
    # a marked entry: were it trained again, its value would come back unmarked
    adam = programs.BASELINES["adam"].fingerprint()
    marked = next(k for k in sorted(cache["losses"])
                  if k.startswith(f"{adam}|") and k.endswith("|0") and cache["losses"][k])
    cache["losses"][marked] += 0.125
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / bench.CACHE_FILE).write_text(json.dumps(cache))
    wider = [*argv[:argv.index("--seeds")], "--seeds", "0,1,2", "--baselines", "adam",
             "--out", str(tmp_path / "b")]
    assert cli.main(wider) == 0
    after = json.loads((tmp_path / "b" / bench.CACHE_FILE).read_text())["losses"]
    assert {k: after[k] for k in cache["losses"]} == cache["losses"]
    fingerprint, task, rate, _ = marked.split("|")
    assert f"{fingerprint}|{task}|{rate}|2" in after  # seed 2 trained beside the kept ones


def test_the_performance_profile_counts_tasks_within_tau(benched):
    out, _ = benched
    data = json.loads((out / "results.json").read_text())
    result_profile = {}
    losses = {c["name"]: [np.exp(np.mean(np.log(c["tunings"][t]["valid_losses"][
        int(np.argmin([abs(lr - c["scores"][t]["lr"]) for lr in c["tunings"][t]["lrs"]]))])))
        for t in data["tasks"]] for c in data["contenders"]}
    best = np.min(list(losses.values()), axis=0)
    for name, values in losses.items():
        ratios = np.array(values) / best
        result_profile[name] = [(ratios <= tau).mean() for tau in (1.0, 1.1, 2.0, 4.0)]
    # the same numbers from the module
    contenders = [bench.Contender(c["name"], programs.parse(c["program"]), c["user"])
                  for c in data["contenders"]]
    result = bench.run(contenders, data["tasks"], tuple(data["seeds"]), str(out))
    profile = bench.performance_profile(result)
    for name, expected in result_profile.items():
        got = [profile[name][int(np.argmin(abs(bench.TAUS - tau)))] for tau in (1.0, 1.1, 2.0, 4.0)]
        assert got == pytest.approx(expected)


def test_bad_input_is_one_line_and_the_cache_is_kept(tmp_path, capsys):
    bad = tmp_path / "bad.opt"
    bad.write_text("def bad(g, lr):\n    u = g *\n    return u\n")
    assert cli.main(["bench", str(bad), "--tasks", "quadratic", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "bad.opt" in err and ":2:" in err and len(err.strip().splitlines()) == 1
    assert cli.main(["bench", str(tmp_path / "missing.opt"), "--out", str(tmp_path)]) == 2
    assert "no such program file or run directory" in capsys.readouterr().err
    cache = tmp_path / bench.CACHE_FILE
    cache.write_text('{"version": 99}')
    good = tmp_path / "good.opt"
    good.write_text(MOMENTUM_LIKE)
    assert cli.main(["bench", str(good), "--tasks", "quadratic", "--baselines", "adam",
                     "--out", str(tmp_path)]) == 2
    assert "cache.json: not a bench cache" in capsys.readouterr().err
    assert cache.read_text() == '{"version": 99}'
    assert not os.path.exists(tmp_path / "table.md")


def test_merged_caches_let_a_bench_elsewhere_train_nothing_and_bad_input_loses_nothing(
        benched, tmp_path, capsys):
    import subprocess
    import sys

    from tests.helpers import ROOT

    out, argv = benched
    script = os.path.join(ROOT, "scripts", "merge_bench_caches.py")
    target = tmp_path / "elsewhere" / bench.CACHE_FILE
    # one entry already there (its value must survive), one source a directory of caches
    target.parent.mkdir()
    first_key = min(json.loads((out / bench.CACHE_FILE).read_text())["losses"])
    target.write_text(json.dumps({"version": bench.CACHE_VERSION, "losses": {first_key: 9.5}}))
    sources = tmp_path / "sources"
    sources.mkdir()
    (sources / "a.json").write_text((out / bench.CACHE_FILE).read_text())

    def merge(*paths):
        return subprocess.run([sys.executable, script, str(target), *map(str, paths)],
                              capture_output=True, text=True, timeout=300, check=False)

    bad = sources / "not_a_cache.json"
    bad.write_text('{"rows": []}')
    done = merge(sources)
    assert done.returncode == 2 and "not_a_cache.json: not a bench cache" in done.stderr
    assert json.loads(target.read_text())["losses"] == {first_key: 9.5}
    bad.unlink()
    done = merge(sources)
    assert done.returncode == 0, done.stderr
    cache = json.loads((out / bench.CACHE_FILE).read_text())["losses"]
    merged = json.loads(target.read_text())["losses"]
    assert merged == {**cache, first_key: 9.5}
    assert done.stdout.startswith(f"{len(cache) - 1} entries added")
    merged[first_key] = cache[first_key]  # the bench's own value back, then bench there
    target.write_text(json.dumps({"version": bench.CACHE_VERSION, "losses": merged}))
    elsewhere = [*argv[:argv.index("--out")], "--out", str(target.parent)]
    assert cli.main(elsewhere) == 0
    assert "0 windows of rates trained" in capsys.readouterr().out
    assert (target.parent / "table.md").read_text() == (out / "table.md").read_text()
