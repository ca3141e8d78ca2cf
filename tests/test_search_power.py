"""Search power (discover/experiments/search_power.py, scripts/bench_search.py): the searches are real
campaigns that resume, the judge is the yardstick of ``discover bench``, and the statistics
are checked against their textbook definitions."""

import csv
import dataclasses
import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

import programs
from discover.errors import UserError
from discover.experiments import search_power as sp
from discover.experiments import search_power_tables as tables
from discover.records import LogRecord
from discover.scoring.bench import Contender
from discover.scoring.bench import run as bench_run
from tests.helpers import ROOT, job_result

TASK = "digits_mlp_s"


def test_first_success_finds_the_first_pass_of_a_monotone_sequence_in_few_judgements():
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(1, 40))
        first = int(rng.integers(0, n + 1))  # n: nothing passes
        outcomes = [i >= first for i in range(n)]
        calls = []

        def passes(i, outcomes=outcomes, calls=calls):
            calls.append(i)
            return outcomes[i]

        found = sp.first_success(list(range(n)), passes)
        assert found == (first if first < n else None)
        assert len(calls) <= int(np.ceil(np.log2(n))) + 1 if n > 1 else len(calls) == 1


def test_a_run_whose_last_improvement_fails_has_no_success_even_if_an_earlier_one_passed():
    assert sp.first_success([0, 1, 2], lambda i: i == 0) is None
    assert sp.first_success([], lambda i: True) is None


def _record(seq: int, score, text: str) -> LogRecord:
    return LogRecord.from_result(seq, text, f"fp{seq}", None, {}, job_result(score), 0.0)


def test_improvements_are_the_running_best_among_eligible_records_in_evaluation_order():
    scores = [0.5, None, 0.4, 0.45, 0.1, 0.3, 0.05]
    eligible = {0, 2, 3, 5, 6}  # seq 4 (the 0.1) is not: it does not raise the bar for 0.3
    log = [_record(seq, s, f"p{seq}") for seq, s in enumerate(scores)]
    found = sp.improvements(log[::-1], lambda r: r.seq in eligible)  # any file order
    assert [(count, r.seq) for count, r in found] == [(1, 0), (3, 2), (6, 5), (7, 6)]


def test_the_success_rate_interval_is_clopper_pearson():
    def outcome(seed, success):
        return sp.RunOutcome("adam", "default", seed, 10, 1.0 + seed, 0.0, success,
                             5 + seed if success else None, 0.5 * seed if success else None,
                             None, None, 1)

    for k, n in ((0, 5), (3, 5), (5, 5), (1, 7)):
        (summary,) = tables.summarize([outcome(i, i < k) for i in range(n)])
        alpha = 0.05
        low = 0.0 if k == 0 else stats.beta.ppf(alpha / 2, k, n - k + 1)
        high = 1.0 if k == n else stats.beta.ppf(1 - alpha / 2, k + 1, n - k)
        assert summary.successes == k and summary.runs == n
        assert summary.rate_interval == pytest.approx((low, high), abs=1e-9)
        assert summary.median_cpu_per_search == np.median([1.0 + i for i in range(n)])
        if k:
            assert summary.median_evaluations == np.median([5 + i for i in range(k)])
        else:
            assert summary.median_evaluations is None


def test_the_diagnostics_table_shows_each_variants_medians_and_leaves_out_zero_counters():
    def outcome(variant, seed, best, stateful, hits):
        return sp.RunOutcome("momentum", variant, seed, 10, 1.0, best, False, None, None, None,
                             None, 0, stateful, {"cache_hits": hits, "restarts": 0})

    runs = [outcome("default", 0, 0.08, False, 830), outcome("default", 1, 0.04, True, 4700),
            outcome("default", 2, 0.05, True, 1000), outcome("wired", 0, 0.02, True, 7)]
    header, rule, *rows = tables.diagnostics_table(runs).splitlines()
    assert header.count("|") == rule.count("|") == 6 and "restarts" not in header
    assert rows == ["| momentum | default | 0.0500 | 2/3 | 1000 |",
                    "| momentum | wired | 0.0200 | 1/1 | 7 |"]


def test_the_judgements_table_shows_each_searchs_simplified_program_and_intervals():
    judged = {"fingerprint": "f", "differences": {"sgd": -0.0123, "signsgd": 0.2,
                                                  "momentum": 0.0004},
              "intervals": {"sgd": [-0.03, -0.006], "signsgd": None, "momentum": [-0.01, 0.02]},
              "stateful": True,
              "success": False}
    # a dead slot (m2) and a statement nothing reads: left out of the table
    text = ("def scratch(g, lr, m1, m2):\n    m1 = interp(g, m1, 0.9)\n    v = square(g)\n"
            "    m2 = min(m2, m2)\n    u = m1 * lr\n    return u, m1, m2\n")

    def outcome(target, seed, program, judgement, success=False):
        return sp.RunOutcome(target, "default", seed, 10, 1.0, 0.1, success, None, None,
                             program, judgement, 1)

    runs = [outcome("momentum", 0, text, judged), outcome("momentum", 1, None, None),
            outcome("adam", 0, str(programs.BASELINES["adam"]),
                    {**judged, "differences": {"adam": -0.02}, "intervals": {"adam": [-0.03, -0.01]}},
                    success=True)]
    momentum, adam = tables.judgements_table(runs, sp.TARGETS).split("\n\n")
    header, _, first, second = momentum.strip().splitlines()
    assert header == ("| momentum: variant | seed | success | program judged | vs sgd | "
                      "vs signsgd | vs momentum | vs nesterov |")
    # nesterov: an exemplar this judgement predates
    assert first == ("| default | 0 | no | `m1 = interp(g, m1, 0.9); u = m1 * lr` | "
                     "-0.012 [-0.030, -0.006] | +0.200 no interval | +0.000 [-0.010, +0.020] | - |")
    assert second == "| default | 1 | no | - | - | - | - | - |"
    row = adam.strip().splitlines()[-1]
    assert row.startswith("| default | 0 | yes | `")
    assert row.endswith(" | -0.020 [-0.030, -0.010] | - |")  # lookahead: not judged
    # adam has nothing to simplify: its 17 statements, in order
    assert row.split("`")[1].split("; ") == [
        line.strip() for line in str(programs.BASELINES["adam"]).splitlines()[1:-1]]


def test_the_parity_table_counts_judged_programs_not_worse_than_an_exemplar():
    def outcome(variant, seed, momentum, nesterov):
        intervals = {"sgd": [-0.02, 0.01], "signsgd": [-0.1, -0.05]}
        intervals.update({k: b for k, b in (("momentum", momentum), ("nesterov", nesterov))
                          if b is not None})
        judgement = {"fingerprint": "f", "differences": {k: 0.0 for k in intervals},
                     "intervals": intervals, "stateful": True, "success": False}
        return sp.RunOutcome("momentum", variant, seed, 10, 1.0, 0.05, False, None, None,
                             "def p(g, lr):\n    u = g * lr\n    return u\n", judgement, 1)

    runs = [outcome("structure", 0, [-0.01, 0.004], [0.0, 0.03]),   # as good as momentum
            outcome("structure", 1, [-0.01, 0.005], [-0.02, 0.001]),  # nesterov (0.005 is not below)
            outcome("structure", 2, [0.01, 0.04], None),              # neither (nesterov not judged)
            outcome("default", 0, None, None)]                        # judged before exemplars
    adam_run = sp.RunOutcome("adam", "default", 0, 10, 1.0, 0.0, True, 5, 1.0, None,
                             {"intervals": {"adam": [-0.03, -0.01]}}, 1)
    _, _, structure, default, _ = tables.parity_table(runs + [adam_run],
                                                  sp.TARGETS).strip().splitlines()
    low, high = stats.binomtest(2, 3).proportion_ci(0.95, method="exact")
    assert structure == (f"| momentum | structure | 2/3 | [{low:.0%}, {high:.0%}] | "
                         "momentum 1, nesterov 1 |")
    assert default.startswith("| momentum | default | 0/1 | [0%, ")
    no_exemplars = {"adam": dataclasses.replace(sp.TARGETS["adam"], exemplars=())}
    assert tables.parity_table([adam_run], no_exemplars) == ""
    # adam's exemplar (lookahead) is counted only where it was judged
    assert tables.parity_table([adam_run], sp.TARGETS).strip().splitlines()[-1].startswith(
        "| adam | default | 0/1 | [0%, ")


def test_within_cpu_keeps_the_evaluations_whose_summed_seconds_fit():
    log = [dataclasses.replace(_record(k, 0.1, "u = g"), seconds=t)
           for k, t in ((2, 3.0), (0, 1.0), (3, 4.0), (1, 2.0))]
    assert [r.seq for r in sp.within_cpu(log, 6.0)] == [0, 1, 2]
    assert [r.seq for r in sp.within_cpu(log, 5.9)] == [0, 1]
    assert [r.seq for r in sp.within_cpu(log, 0.5)] == []
    assert [r.seq for r in sp.within_cpu(log, None)] == [0, 1, 2, 3]


def test_stateful_means_the_gradients_history_reaches_the_update():
    assert sp.stateful(programs.BASELINES["momentum"])
    assert not sp.stateful(programs.BASELINES["sgd"])
    unread = programs.parse("def f(g, lr, m):\n    m = 0.9 * m\n    m = m + g\n"
                            "    u = g * lr\n    return u, m\n")
    assert not sp.stateful(unread)
    # what searches for the momentum target found: schedules of the rate, not history
    for body in ("m1 = interp(lr, m1, 0.99)\n    u = g * m1",    # a warm-up
                 "m1 = lr + m1\n    u = clip(g, m1)",             # a growing clip
                 "u = g / lr\n    u = interp(u, m1, 0.66)"):      # m1 never written: zeros
        schedule = programs.parse(f"def f(g, lr, m1):\n    {body}\n    return u, m1\n")
        assert not sp.stateful(schedule), body
    remembers = programs.parse("def f(g, lr, m1, m2):\n    m2 = interp(m1, m2, 0.5)\n"
                               "    m1 = interp(g, m1, 0.9)\n    u = m2 * lr\n"
                               "    return u, m1, m2\n")
    assert sp.stateful(remembers)  # through m1, read by m2's next value
    # rediscovery_b default seed 1's best: its slot m2 feeds only the condition of a where
    # that is false at step 1 (zeros) and true after it, whatever the gradients were
    from tests.test_impulse import LOOPHOLE
    assert not sp.stateful(programs.parse(LOOPHOLE))


def _files(path: str) -> dict[str, str]:
    out = {}
    for root, _, names in os.walk(path):
        for name in names:
            with open(os.path.join(root, name), "rb") as f:
                out[os.path.relpath(os.path.join(root, name), path)] = \
                    hashlib.sha256(f.read()).hexdigest()
    return out


def _log(path: str) -> list[tuple]:
    from discover.rundir import load

    return [(r.seq, r.program, r.score) for r in sorted(load(path).log, key=lambda r: r.seq)]


def test_a_search_resumes_to_a_larger_budget_as_if_never_stopped(tmp_path):
    target, variant = sp.TARGETS["momentum"], sp.VARIANTS["default"]
    base = {"population_size": 4, "eval_seeds": [0]}

    def config(budget, seed=3):
        return sp.campaign_config(target, variant, seed, budget, (TASK,), base)

    stopped, whole = str(tmp_path / "stopped"), str(tmp_path / "whole")
    assert sp.search(stopped, config(4)) == 4
    assert sp.search(stopped, config(4)) == 4  # finished: left alone
    assert sp.search(stopped, config(8)) == 8
    assert sp.search(whole, config(8)) == 8
    assert _log(stopped) == _log(whole)
    assert len({program for _, program, _ in _log(whole)}) > 1  # it searched
    # the curves' reference levels: scored as the search scored its start (sgd's program)
    levels = sp.search_scores(config(8), ["sgd", "adam"])
    assert _log(whole)[0][1] == str(programs.BASELINES["sgd"]).replace("def sgd(", "def scratch(")
    assert levels["sgd"] == pytest.approx(_log(whole)[0][2], abs=1e-12)
    assert levels["adam"] == pytest.approx(0.0, abs=1e-9)

    before = _files(stopped)
    with pytest.raises(UserError, match="another configuration.*seed"):
        sp.search(stopped, config(8, seed=4))
    assert _files(stopped) == before


def test_a_cpu_budgeted_search_runs_until_its_seconds_are_spent(tmp_path, monkeypatch):
    monkeypatch.setattr(sp, "FIRST_CHUNK", 3)
    config = sp.campaign_config(sp.TARGETS["momentum"], sp.VARIANTS["default"], 5, 500,
                                (TASK,), {"population_size": 4, "eval_seeds": [0]})
    path = str(tmp_path / "run")
    sp.search(path, config.replace(max_evals=3))
    first, spent = sp.cpu_seconds_logged(path)
    budget = 4 * spent  # about 12 evaluations: more than one extension is needed
    done = sp.search_for_cpu(path, config, budget)
    assert sp.cpu_seconds_logged(path)[0] == done
    assert first == 3 < done < 500 and sp.cpu_seconds_logged(path)[1] >= budget
    assert sp.search_for_cpu(path, config, budget) == done  # spent: left alone
    whole = str(tmp_path / "whole")
    sp.search(whole, config.replace(max_evals=done))
    assert _log(path) == _log(whole)  # the extensions continue one search


def test_the_judge_agrees_with_discover_bench(tmp_path):
    seeds = (0, 1)
    judge = sp.Judge([TASK], seeds, str(tmp_path / "judge.json"))
    momentum = programs.BASELINES["momentum"]
    verdict = judge.judge(momentum, sp.TARGETS["momentum"])
    contenders = [Contender(n, programs.BASELINES[n]) for n in ("sgd", "signsgd")]
    contenders.append(Contender("momentum", momentum, user=True))
    # a step 100,000 times too short: its best rate is beyond the grid's limit
    tiny = programs.parse("def tiny(g, lr):\n    u = g * lr\n    u = u * 1e-05\n    return u\n")
    contenders.append(Contender("tiny", tiny, user=True))
    result = bench_run(contenders, [TASK], seeds, str(tmp_path / "bench"))
    assert result.scores["tiny"][TASK].at_limit and not result.scores["momentum"][TASK].at_limit
    assert judge.at_limit(tiny) == [TASK] and judge.at_limit(momentum) == []
    for reference in ("sgd", "signsgd"):
        assert verdict.differences[reference] == pytest.approx(
            result.difference("momentum", reference), abs=1e-12)
        assert verdict.intervals[reference] == pytest.approx(
            result.interval("momentum", reference), abs=1e-12)
    beats = all(result.interval("momentum", r)[1] < -sp.MIN_EFFECT for r in ("sgd", "signsgd"))
    assert verdict.stateful and verdict.success == beats

    itself = judge.judge(programs.BASELINES["sgd"], sp.TARGETS["momentum"])
    assert itself.differences["sgd"] == 0.0 and not itself.success
    # the exemplars are compared, not required: sgd against momentum, as bench has it
    assert itself.differences["momentum"] == pytest.approx(
        result.difference("sgd", "momentum"), abs=1e-12)

    # the bar check states discover bench's numbers for the target's exemplars
    target = dataclasses.replace(sp.TARGETS["momentum"], exemplars=("momentum",))
    cells = [f"vs {r} {result.difference('momentum', r):+.3f} "
             f"[{result.interval('momentum', r)[0]:+.3f}, {result.interval('momentum', r)[1]:+.3f}]"
             for r in ("sgd", "signsgd")]
    assert tables.bar_check(judge, target).endswith(
        "momentum " + ", ".join(cells) + (" (a success)." if beats else " (not a success)."))
    assert tables.bar_check(judge, dataclasses.replace(sp.TARGETS["adam"], exemplars=())) == ""


def test_without_the_fingerprint_cache_repeats_are_evaluated_again_identically(tmp_path):
    target, variant = sp.TARGETS["momentum"], sp.VARIANTS["no_cache"]
    base = {"population_size": 3, "eval_seeds": [0]}

    def config(budget):
        return sp.campaign_config(target, variant, 5, budget, (TASK,), base)

    stopped, whole = str(tmp_path / "stopped"), str(tmp_path / "whole")
    assert sp.search(stopped, config(6)) == 6
    assert sp.search(stopped, config(14)) == 14
    assert sp.search(whole, config(14)) == 14
    assert _log(stopped) == _log(whole)
    from discover.rundir import load

    run = load(whole)
    by_fingerprint: dict[str, list[float]] = {}
    for record in run.log:
        by_fingerprint.setdefault(record.fingerprint, []).append(record.score)
    repeats = {fp: s for fp, s in by_fingerprint.items() if len(s) > 1}
    assert repeats, "a search of 14 from a population of 3 repeats some function"
    for scores in repeats.values():  # the same function, evaluated again: the same score
        assert np.ptp(scores) == 0.0
    assert run.counters["cache_hits"] == 0


@pytest.mark.parametrize("flags, words", [
    (["--judge-tasks", "B,no_such_task"], "unknown task 'B'"),
    (["--variants", "default,no_such_variant"], "no_such_variant"),
    (["--cpu-budget", "0"], "--cpu-budget must be > 0"),
])
def test_bench_search_refuses_bad_flags_before_it_writes_anything(tmp_path, flags, words):
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "bench_search.py"),
                           *flags, "--out", str(out)], capture_output=True, text=True,
                          cwd=ROOT, timeout=300, check=False)
    assert done.returncode == 2 and words in done.stderr and not out.exists()


def test_bench_search_bar_check_prints_the_judges_sentence_and_runs_no_search(tmp_path):
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "bench_search.py"),
                           "--bar-check", "--targets", "momentum", "--judge-tasks", TASK,
                           "--judge-seeds", "0,1", "--out", str(out)], capture_output=True,
                          text=True, cwd=ROOT, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(os.listdir(out)) == [sp.JUDGE_CACHE]  # no run directory, no table
    # the same judge on the script's cache trains nothing and states the same bar check
    judge = sp.Judge([TASK], (0, 1), str(out / sp.JUDGE_CACHE))
    sentence = tables.bar_check(judge, sp.TARGETS["momentum"])
    assert judge.engines[TASK].trained == 0 and judge.engines[TASK].cached > 0
    assert sentence.startswith("Bar check for **momentum**") and "nesterov vs sgd" in sentence
    assert done.stdout.splitlines()[-1] == sentence


def test_bench_search_runs_judges_writes_its_tables_and_a_rerun_changes_nothing(tmp_path):
    """The script's main path: two searches of the momentum target (12 evaluations each, on
    quadratic), judged on quadratic with one fresh seed; its rows agree with the searches' own
    logs (read here, independently); then the same command again resumes the finished searches
    without evaluating anything and writes the same tables, byte for byte."""
    out = tmp_path / "out"
    command = [sys.executable, os.path.join(ROOT, "scripts", "bench_search.py"),
               "--targets", "momentum", "--seeds", "2", "--budget", "12", "--tasks",
               "quadratic", "--judge-tasks", "quadratic", "--judge-seeds", "1", "--jobs", "1",
               "--out", str(out)]
    first = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=600,
                           check=False)
    assert first.returncode == 0, first.stderr[-3000:]
    with open(out / "runs.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [(r["target"], r["variant"], r["seed"]) for r in rows] == [
        ("momentum", "default", "0"), ("momentum", "default", "1")]
    outcomes = json.loads((out / "outcomes.json").read_text())
    logs = {}
    for row, outcome in zip(rows, outcomes, strict=True):
        path = sp.run_path(str(out), "momentum", "default", int(row["seed"]))
        with open(os.path.join(path, "evaluations.jsonl"), encoding="utf-8") as f:
            log = [json.loads(line) for line in f]
        logs[path] = log
        assert int(row["evaluations"]) == len(log) == outcome["evaluations"] == 12
        scores = [r["score"] for r in log if r["status"] == "ok"]
        assert float(row["best_search_score"]) == pytest.approx(min(scores), rel=1e-5)
        assert float(row["cpu_seconds"]) == pytest.approx(sum(r["seconds"] for r in log),
                                                          abs=0.05)
        assert row["success"] == str(int(outcome["success"]))
        if outcome["success"]:  # the program judged a success is one the search evaluated
            assert 1 <= int(row["evaluations_to_success"]) <= 12
            assert outcome["program"] in {r["program"] for r in log}
    table = (out / "table.md").read_text()
    assert "--budget 12" in table and "Judged on quadratic with seeds 1" in table

    written = {name: (out / name).read_bytes() for name in ("table.md", "runs.csv",
                                                             "outcomes.json")}
    second = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=600,
                            check=False)
    assert second.returncode == 0, second.stderr[-3000:]
    for path, log in logs.items():
        with open(os.path.join(path, "evaluations.jsonl"), encoding="utf-8") as f:
            assert [json.loads(line) for line in f] == log
    assert {name: (out / name).read_bytes() for name in written} == written


def test_the_random_variant_breeds_without_selection():
    """``random`` (AutoML-Zero's control): the parents a search breeds from do not depend on
    the scores it was told; with the default tournament they do."""
    from helpers import job_result, logged

    from discover.config import CampaignConfig
    from discover.resolve import start_programs
    from discover.search.evolution import AgingEvolution

    def parents(variant, scores):
        base = {"population_size": 6, "start": ("adam", "sgd", "lion"), "tasks": ("quadratic",),
                "held_out_tasks": (), "seed": 3}
        evo = AgingEvolution(CampaignConfig(**{**base, **sp.VARIANTS[variant].changes}),
                             funnel=False)
        for child, score in zip(evo.initial_children(start_programs(evo.config.start)), scores):
            evo.tell(child, logged(child, job_result(score)))
        return [evo.breed().parent for _ in range(12)]

    assert sp.VARIANTS["random"].changes["tournament_size"] == 1
    assert parents("random", [0.0, 0.5, 0.9]) == parents("random", [0.9, 0.5, 0.0])
    assert parents("default", [0.0, 0.5, 0.9]) != parents("default", [0.9, 0.5, 0.0])
