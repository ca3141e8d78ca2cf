"""The small pieces users read: score formatting, the progress line, the plots' data helpers,
and ``discover show`` / ``discover baselines`` without evaluation."""

from __future__ import annotations

import io

import numpy as np

import programs
from discover import cli, plots
from discover.progress import Progress, format_score

FIELDS = {"evaluations": 40, "done_here": 10, "best": -0.03125, "best_held_out": None,
          "hit_rate": 0.25, "failed": 2, "invalid": 3, "restarts": 0}


def test_format_score():
    assert format_score(None) == "-"
    assert format_score(-0.03125) == "-0.0312" and format_score(0) == "+0.0000"
    assert format_score(2.0) == "+2.0000"


def test_progress_line_says_what_the_search_did():
    line = Progress(1.0, io.StringIO()).line(**FIELDS)
    assert "40 evals" in line and "best -0.0312" in line and "held-out -" in line
    assert "cache hits 25%" in line and "failed 2" in line and "invalid 3" in line
    assert "restarts" not in line and "rejected" not in line
    assert "restarts 4" in Progress(1.0, io.StringIO()).line(**{**FIELDS, "restarts": 4})
    stopped = Progress(1.0, io.StringIO()).line(**{**FIELDS, "rejected": 25})
    assert "rejected 25" in stopped and "invalid 3" in stopped


def test_progress_line_says_the_budget_left_and_what_a_stop_waits_for():
    line = Progress(1.0, io.StringIO()).line(**FIELDS, max_evals=5000, time_left=3725.0)
    assert "40/5000 evals" in line and "1h02m of search left" in line
    assert "3m05s of search left" in Progress(1.0, io.StringIO()).line(**FIELDS,
                                                                        time_left=185.0)
    waiting = Progress(1.0, io.StringIO()).line(**FIELDS, time_left=-3.0,
                                                stopping="time_limit", in_flight=2)
    assert "stopping (time limit): waiting for 2 evaluations in flight" in waiting
    assert "of search left" not in waiting


def test_a_new_best_program_is_printed_in_full():
    stream = io.StringIO()
    progress = Progress(1.0, stream)
    progress.best_program(-0.0123, "def discovered(g, lr):\n    u = g * lr\n    return u\n")
    assert stream.getvalue() == ("new best search score -0.0123:\n    def discovered(g, lr):\n"
                                 "        u = g * lr\n        return u\n")
    silent = io.StringIO()
    Progress(0.0, silent).best_program(-0.1, "def p(g, lr):\n    return g\n")
    assert silent.getvalue() == ""


def test_progress_writes_lines_to_a_file_and_nothing_when_off():
    stream = io.StringIO()  # not a terminal: whole lines, no carriage returns
    progress = Progress(1.0, stream)
    progress.update(force=True, **FIELDS)
    progress.update(**FIELDS)  # within the interval: nothing
    progress.close()
    assert stream.getvalue().count("\n") == 1 and "\r" not in stream.getvalue()
    silent = io.StringIO()
    Progress(0.0, silent).update(force=True, **FIELDS)
    assert silent.getvalue() == ""


def test_running_best_and_rolling_median():
    values = np.array([3.0, 1.0, 2.0, 0.5, 4.0])
    np.testing.assert_array_equal(plots.running_best(values), [3.0, 1.0, 1.0, 0.5, 0.5])
    np.testing.assert_array_equal(plots.rolling_median(values, 3),
                                  [3.0, 2.0, 2.0, 1.0, 2.0])
    np.testing.assert_array_equal(plots.rolling_median(values, 1), values)
    assert [plots.median_window(n) for n in (1, 20, 1000)] == [1, 4, 50]


def test_search_power_variants_are_told_apart_beyond_ten():
    """The ablation figure draws 11 variants and more: no two of the first 30 share a line."""
    styles = [plots.variant_style(i) for i in range(30)]
    assert len(set(styles)) == 30 and styles[0] == ("C0", "-") and styles[10] == ("C0", "--")


def test_fitness_figure_draws_the_trained_and_counts_the_rest():
    """Children stopped at the hurdle (search score 1, a stand-in) and failures are left out
    of the series and counted; the y-range follows the trained scores, so that a best-so-far
    of -0.006 is not squashed against 0 by the stand-ins at 1."""
    search = [0.02, 1.0, None, -0.006, 1.0, 0.01, 0.3]
    rejected = [False, True, False, False, True, False, False]
    x, scores, stopped, failed = plots.fitness_series(search, rejected)
    assert x.tolist() == [1, 4, 6, 7] and scores.tolist() == [0.02, -0.006, 0.01, 0.3]
    assert (stopped, failed) == (2, 1)
    low, high = plots.score_range(np.array([-0.006, 0.0, 0.01, 0.02] * 5 + [0.9]))
    assert low < -0.006 and high < 0.5  # the 0.9 tail is not the scale
    png = plots.fitness_figure(search, [(6, -0.05)], [(4, 0.2)], rejected)
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000


def test_show_prints_the_canonical_simplified_program(tmp_path, capsys):
    path = tmp_path / "p.opt"
    path.write_text("def p(g, lr, m):\n    junk = exp(g)\n    m = interp(g, m, 0.9)\n"
                    "    u = m * lr * 1.0\n    return u, m\n")
    assert cli.main(["show", str(path)]) == 0
    out = capsys.readouterr().out
    assert out == ("def p(g, lr, m):\n    m = interp(g, m, 0.9)\n    u = m * lr\n"
                   "    return u, m\n")
    assert programs.parse(out) == programs.load(str(path)).simplify()


def test_baselines_without_eval_lists_every_baseline(capsys):
    assert cli.main(["baselines"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list(programs.BASELINES)
    adam = next(line for line in lines if line.startswith("adam "))
    assert f"{len(programs.BASELINES['adam'].body)} statements" in adam and "m, v" in adam
    assert cli.main(["baselines", "--tasks", "quadratic"]) == 2
    assert "need --eval" in capsys.readouterr().err


def test_show_of_a_missing_file_is_one_line(capsys):
    assert cli.main(["show", "/nonexistent/p.opt"]) == 2
    err = capsys.readouterr().err.strip()
    assert "/nonexistent/p.opt" in err and len(err.splitlines()) == 1
