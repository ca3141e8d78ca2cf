"""discover.reporting.summary: what a campaign's summary claims about its best program."""

from __future__ import annotations

import dataclasses

from discover.reporting.summary import Summary, held_out_claim

BASE = Summary(run_dir="runs/x", stopped="time_limit", evaluations=10, evaluations_here=10,
               cache_hits=0, cache_hit_rate=0.0, invalid=0, failed=0, restarts=0,
               best_search_score=-0.1, best_held_out_score=-0.02, best_held_out_interval=None,
               adam_search_score=0.0, adam_held_out_score=0.0, best_program=None, seconds=1.0,
               loop_seconds=1.0, worker_seconds=1.0, worker_cpu_seconds=1.0,
               warm_up_seconds=0.0, workers=1)


def held_out_line(summary: Summary) -> str:
    return next(line for line in summary.lines() if line.startswith("best held-out score"))


def test_the_summary_claims_only_what_the_interval_supports():
    within = dataclasses.replace(BASE, best_held_out_interval=[-0.05, 0.01])
    assert held_out_line(within).endswith(
        "within noise of adam on the held-out tasks, 95% interval [-0.050, +0.010]")
    beats = dataclasses.replace(BASE, best_held_out_interval=[-0.05, -0.01])
    assert "beats adam on the held-out tasks" in held_out_line(beats)
    worse = dataclasses.replace(BASE, best_held_out_score=0.1, best_held_out_interval=[0.02, 0.2])
    assert "worse than adam" in held_out_line(worse)
    assert "no interval (one held-out seed)" in held_out_line(BASE)
    assert "beats" not in held_out_line(BASE) and "better" not in held_out_line(BASE)
    none = dataclasses.replace(BASE, best_held_out_score=None)
    assert held_out_line(none) == "best held-out score: - (adam +0.0000)"
    assert held_out_claim((0.0, 0.0)).startswith("within noise of adam")
    # the default campaign's find, adam with eps 5e-9: ahead on every seed, by too little
    assert held_out_claim((-2e-6, -1e-6)).startswith("within noise of adam")


def test_the_summary_names_hurdles_neutral_steps_and_islands_only_when_used():
    plain = "\n".join(BASE.lines())
    assert "hurdle" not in plain and "islands" not in plain and "neutral" not in plain
    used = "\n".join(dataclasses.replace(BASE, rejected=7, neutral_steps=3, islands=4,
                                         migrations=2, resets=1).lines())
    assert "hurdle: 7 child(ren) stopped after the first search task" in used
    assert "neutral children mutated again: 3" in used
    assert "islands: 4; migrations: 2; resets: 1" in used
