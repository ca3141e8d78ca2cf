"""discover.scoring.leaderboard and ``discover baselines --eval`` on two cheap tasks."""

from __future__ import annotations

import math

import numpy as np
import pytest

import programs
import tasks
from discover import cli
from discover.scoring.evaluate import TaskScore, evaluate
from discover.scoring.leaderboard import Leaderboard, compute
from tasks.base import WORST_SCORE

TASKS = ("quadratic", "logistic")  # as in test_evaluate: the same cached compilations
BASELINES = ("adam", "sgd", "lion", "momentum")


@pytest.fixture(scope="module")
def board():
    return compute(BASELINES, TASKS)


def test_sgd_score_matches_optax_loops_independently_of_the_engine(board):
    """The board's score recomputed without the engine or the walk: optax.sgd and optax.adam
    run by a plain optax loop at every rate of the grid up to its limits (17 rates), the best
    by mean log loss over the seeds, normalised seed by seed as the contract says."""
    import optax

    from discover.scoring import tuning
    from tasks.base import normalized_score
    from tasks.train import OptaxTrainer

    task = tasks.get("quadratic")
    ks = range(tuning.LIMIT[0], tuning.LIMIT[1] + 1)
    lrs = np.array([tuning.rate(task.default_lr, k) for k in ks], np.float32)

    def tuned(make_tx):
        run = OptaxTrainer(task, make_tx, seeds=(0, 1, 2), lr_grid_size=len(lrs)).run(lrs=lrs)
        logs = np.where(np.isfinite(run.valid_losses).all(axis=1),
                        np.log(run.valid_losses).mean(axis=1), np.inf)
        best = int(np.argmin(logs))
        return run.valid_losses[best], lrs[best], np.exp(np.log(run.initial_valid_losses).mean())

    sgd_losses, sgd_lr, _ = tuned(optax.sgd)
    adam_losses, _, initial = tuned(optax.adam)
    adam_loss = float(np.exp(np.log(adam_losses).mean()))
    expected = np.mean([normalized_score(x, adam_loss, initial) for x in sgd_losses])
    got = board.scores["sgd"]["quadratic"]
    assert got.lr == pytest.approx(float(sgd_lr), rel=1e-6) and not got.at_limit
    assert got.score == pytest.approx(expected, abs=1e-3)


def test_adam_is_zero_by_construction_and_sgd_lags_on_the_ill_conditioned_quadratic(board):
    """Determinism check (adam is the normaliser); the independent check is above."""
    assert board.search_tasks == TASKS and board.held_out_tasks == ()
    assert all(board.scores["adam"][t].score == pytest.approx(0.0, abs=1e-12) for t in TASKS)
    assert board.scores["sgd"]["quadratic"].score > 0.02
    assert board.median("sgd", TASKS) > board.median("adam", TASKS)
    assert board.intervals["adam"]["search"] == pytest.approx((0.0, 0.0), abs=1e-12)


def test_table_holds_the_scores_of_evaluate(board):
    """Rendering check: the table's cells are the scores ``discover.scoring.evaluate`` gives (the
    same engine; the numbers themselves are checked against optax above)."""
    text = board.to_text()
    for name in BASELINES:
        direct = evaluate(programs.BASELINES[name], list(TASKS), seeds=(0, 1, 2),
                          wide=True)
        row = next(line for line in text.splitlines() if line.split()[0] == name)
        cells = row.split()
        for i, task in enumerate(TASKS):
            assert board.scores[name][task] == direct.by_task()[task]
            assert cells[1 + i] == f"{direct.by_task()[task].score:+.3f}"
        assert cells[3] == f"{direct.aggregate:+.3f}"
        assert board.intervals[name]["search"] == pytest.approx(direct.interval)
    markdown = board.to_markdown()
    assert markdown.startswith("| optimizer | quadratic | logistic | search median | 95% "
                               "interval | vs adam |")
    assert f"| lion | {board.scores['lion']['quadratic'].score:+.3f} |" in markdown


def test_rendering_marks_failures_and_averages_held_out_tasks():
    def score(task, value, status="ok"):
        return TaskScore(task, value, math.nan if status != "ok" else 1.0, 0.1, status)

    board = Leaderboard(
        optimizers=("a", "b"), search_tasks=("s1", "s2"), held_out_tasks=("h1",),
        scores={"a": {"s1": score("s1", 0.0), "s2": score("s2", 0.5), "h1": score("h1", -0.25)},
                "b": {"s1": score("s1", WORST_SCORE, "nonfinite"), "s2": score("s2", 0.0),
                      "h1": score("h1", 1.0)}},
        config={"lr_grid": 3, "seeds": [0, 1]},
        intervals={"a": {"search": (0.1, 0.4), "held-out": (-0.5, -0.1)},
                   "b": {"search": (-0.2, 0.3), "held-out": None}})
    rows = {line.split()[0]: line.split() for line in board.to_text().splitlines()[2:4]}
    assert rows["a"] == ["a", "+0.000", "+0.500", "-0.250", "+0.250", "[+0.100,", "+0.400]",
                         "worse", "-0.250", "[-0.500,", "-0.100]", "better"]
    assert rows["b"] == ["b", "+2.000*", "+0.000", "+1.000", "+1.000", "[-0.200,", "+0.300]",
                         "noise", "+1.000", "-", "-"]
    assert board.to_dict()["scores"]["b"]["s1"]["loss"] is None


def test_cli_prints_the_table_and_writes_markdown(board, tmp_path, capsys):
    out = tmp_path / "board.md"
    code = cli.main(["baselines", "--eval", "--tasks", ",".join(TASKS),
                     "--baselines", "adam,sgd", "--markdown", str(out)])
    assert code == 0
    captured = capsys.readouterr()
    printed = captured.out
    assert f"{board.scores['sgd']['logistic'].score:+.3f}" in printed
    # Progress with n of N and an estimate (stderr is not a terminal: one line a step).
    assert "baselines [" in captured.err and "1/2 tuning sgd on every task" in captured.err
    assert "left)" in captured.err and "2/2 done" in captured.err
    tables = out.read_text().split("Tuned learning rates:")
    assert [t.count("\n| ") for t in tables] == [2, 3]  # two rows; header + two rows


def test_cli_errors_are_one_line(capsys):
    assert cli.main(["baselines", "--eval", "--tasks", "no_such_task"]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown task" in err and len(err.splitlines()) == 1
    assert cli.main(["baselines", "--eval", "--baselines", "nope", "--tasks", "quadratic"]) == 2
    assert "unknown baseline" in capsys.readouterr().err
