"""The small things a new user trips on (issue 34): each fixed, each checked here."""

from __future__ import annotations

import pytest

import programs
import tasks
from discover import cli
from discover.config import CampaignConfig
from discover.errors import UserError
from discover.scoring.stats import signed


def test_show_accepts_a_run_directory(tmp_path, capsys):
    best = tmp_path / "run" / "best"
    best.mkdir(parents=True)
    (best / "program.opt").write_text("def discovered(g, lr, m):\n    m = interp(g, m, 0.9)\n"
                                      "    u = m * lr\n    return u, m\n")
    assert cli.main(["show", str(tmp_path / "run")]) == 0
    assert capsys.readouterr().out.startswith("def discovered(g, lr, m):")
    assert cli.main(["show", str(best)]) == 0  # RUN_DIR/best itself
    assert capsys.readouterr().out.startswith("def discovered(g, lr, m):")
    assert cli.main(["show", str(tmp_path)]) == 2  # a directory that is not a run
    err = capsys.readouterr().err
    assert "without best/program.opt" in err and len(err.strip().splitlines()) == 1


def test_an_unknown_task_gets_one_message_with_a_guess_and_the_tiers():
    messages = []
    for call in (tasks.get, tasks.resolve):
        with pytest.raises(ValueError) as err:
            call("digits_mpl_s")
        messages.append(str(err.value))
    assert messages[0] == messages[1]
    text = messages[0]
    assert "did you mean 'digits_mlp_s'?" in text
    assert "search: digits_mlp_s," in text and "C: kjv_transformer_c," in text
    assert "'package.module:factory'" in text and "kjv_gru_s.steps4x" in text


def test_an_unknown_configuration_key_gets_a_guess_and_types_their_article():
    with pytest.raises(UserError, match=r"'populaton_size' \(did you mean 'population_size'"):
        CampaignConfig.from_dict({"populaton_size": 10})
    with pytest.raises(UserError, match="'seed' must be an integer, got 'x'"):
        CampaignConfig.from_dict({"seed": "x"})
    with pytest.raises(UserError, match="'lr_grid' must be an integer"):
        CampaignConfig.from_dict({"lr_grid": 2.5})


@pytest.mark.parametrize("command", ["eval", "bench"])
def test_help_shows_a_plain_percent(command, capsys):
    with pytest.raises(SystemExit):
        cli.main([command, "--help"])
    out = capsys.readouterr().out
    assert "95% interval" in out.replace("\n", " ").replace("  ", " ")
    assert "%%" not in out


def test_baselines_listing_says_statement_for_one():
    from discover.commands import baselines as command

    assert len(programs.BASELINES["sgd"].body) == 1
    lines = []
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        command.run(type("Args", (), {"eval": False, "tasks": None, "markdown": None,
                                      "baselines": None})())
    lines = buffer.getvalue().splitlines()
    sgd = next(line for line in lines if line.startswith("sgd "))
    assert "1 statement " in sgd and "1 statements" not in sgd


def test_eval_never_prints_minus_zero():
    assert signed(-0.00001) == "+0.0000" and signed(-0.0) == "+0.0000"
    assert signed(-0.01234) == "-0.0123" and signed(0.5) == "+0.5000"


def test_a_starting_worker_says_which_task_it_compiled(capsys):
    """A worker's first start compiles for minutes: one line a task, with n of N and an
    estimate of the time left (Ray forwards an actor's stderr to the driver's terminal)."""
    from discover.search.pool import EvaluationWorker, WorkerSpec

    EvaluationWorker(WorkerSpec(("quadratic", "logistic"), held_out_tasks=("rosenbrock_2d",)),
                     name="w7")
    lines = [line for line in capsys.readouterr().err.splitlines() if "worker w7" in line]
    assert [line.split(": ")[2].split(" (")[0] for line in lines] == [
        "quadratic ready", "logistic ready", "rosenbrock_2d ready"]
    assert "(1/3," in lines[0] and "s left)" in lines[0] and lines[-1].endswith(" s)")


def test_the_found_program_is_handed_over_with_its_rates(tmp_path, capsys):
    """One name everywhere, and the rates: best/rates.json pairs the best program's tuned
    rate with adam's per search task (as logged), the exported module states them and starts
    its usage example from adam's 1e-3 times their geometric-mean ratio, and 'discover
    export' says so."""
    import json
    import math

    from helpers import StandInPool

    from discover.campaign import Campaign
    from discover.search.pool import WorkerSpec

    config = CampaignConfig(tasks=("quadratic", "logistic"), held_out_tasks=(),
                            population_size=6, lr_grid=2, checkpoint_every=5,
                            progress_seconds=0, seed=3, workers=0, max_evals=12,
                            final_check=0)
    run_dir = tmp_path / "run"
    campaign = Campaign.create(config, str(run_dir))
    try:
        summary = campaign.run(StandInPool(WorkerSpec.from_config(campaign.config),
                                           fail_every=0), progress=False)
    finally:
        campaign.close()
    assert summary.best_program.startswith("def discovered(")
    best = run_dir / "best"
    assert (best / "program.opt").read_text().split("def ")[1].startswith("discovered(")
    rates = json.loads((best / "rates.json").read_text())
    hall = json.loads((run_dir / "hall_of_fame.json").read_text())
    log = [json.loads(line) for line in (run_dir / "evaluations.jsonl").read_text().splitlines()]
    adam = next(r for r in log if r["mutation"] == {"kind": "start", "detail": "adam"})
    assert rates == {t: [hall[0]["lr"][t], adam["lr"][t]] for t in ("quadratic", "logistic")}
    factor = math.exp(sum(math.log(a / b) for a, b in rates.values()) / len(rates))
    module = (best / "discovered_torch.py").read_text()
    assert "Learning rate: the search tuned" in module
    assert f"lr={1e-3 * factor:.2g}" in module and "lr=1e-3" not in module
    assert "class Discovered(" in module
    assert cli.main(["export", str(run_dir), "--to", "optax"]) == 0
    captured = capsys.readouterr()
    assert f"about {factor:.3g}x tuned adam's" in captured.err
    assert f"learning_rate={1e-3 * factor:.2g}" in captured.out


def test_eval_keeps_what_it_computed(tmp_path, capsys, monkeypatch):
    """``discover eval`` says its cost first, keeps every run in its cache, and a repeat (or
    the rest of an interrupted one) trains only what is missing; the scores equal the
    bench's on the same runs."""
    monkeypatch.setenv("DISCOVER_EVAL_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "mine.opt"
    path.write_text("def mine(g, lr, m):\n    m = 0.9 * m + g\n    u = lr * m\n"
                    "    return u, m\n")
    argv = ["eval", str(path), "--baselines", "adam,sgd", "--seeds", "0,1"]
    assert cli.main([*argv, "--tasks", "quadratic"]) == 0
    first = capsys.readouterr()
    assert "3 of 3 rate tunings to train, 0 from the cache" in first.err
    assert "eval [" in first.err and "left)" in first.err
    assert cli.main([*argv, "--tasks", "quadratic,logistic"]) == 0  # half of it is cached
    second = capsys.readouterr()
    assert "3 of 6 rate tunings to train, 3 from the cache" in second.err
    assert cli.main([*argv, "--tasks", "quadratic,logistic"]) == 0
    third = capsys.readouterr()
    assert "0 of 6 rate tunings to train" in third.err and "(0 windows trained" in third.out
    assert third.out.split("program: median")[0] == second.out.split("program: median")[0]


def test_a_campaign_shows_its_budget_and_each_new_best_program(tmp_path, capsys):
    from discover.campaign import Campaign
    from discover.search.pool import WorkerSpec
    from discover.search.simulated_pool import SimulatedPool

    config = CampaignConfig(tasks=("quadratic",), held_out_tasks=(), population_size=6,
                            lr_grid=2, progress_seconds=0.001, seed=3, max_evals=12,
                            final_check=0)
    campaign = Campaign.create(config, str(tmp_path / "run"))
    try:
        campaign.run(SimulatedPool(WorkerSpec.from_config(campaign.config), 2))
    finally:
        campaign.close()
    err = capsys.readouterr().err
    assert "/12 evals" in err and "of search left" in err
    assert "new best search score" in err and "    def discovered(" in err


def test_discover_tasks_lists_every_task_by_tier_with_its_size_and_cost(capsys):
    from tasks.data import costs

    assert cli.main(["tasks", "--tier", "search"]) == 0
    out = capsys.readouterr().out
    table, _, footer = out.partition("\n\n")
    lines = table.splitlines()
    assert lines[0].split() == ["task", "tier", "family", "parameters", "steps", "batch", "s/run"]
    assert [line.split()[0] for line in lines[1:]] == tasks.search_names()
    mlp = next(line.split() for line in lines if line.startswith("digits_mlp_s "))
    # 64-32-32-10 with biases: 64*32+32 + 32*32+32 + 32*10+10
    assert mlp[1:6] == ["search", "mlp_classifier", f"{64*32+32 + 32*32+32 + 32*10+10:,}",
                        "200", "32"]
    assert float(mlp[6]) == pytest.approx(costs()["seconds_per_run"]["digits_mlp_s"], abs=5e-4)
    assert f"measured {costs()['measured']}" in footer
    assert cli.main(["tasks", "--tier", "extra"]) == 0  # not measured: a dash
    quadratic = next(line.split() for line in capsys.readouterr().out.splitlines()
                     if line.startswith("quadratic "))
    assert quadratic[-1] == "-"
    assert cli.main(["tasks", "--tier", "D"]) == 2
    assert "unknown tier 'D'" in capsys.readouterr().err
