"""Does the search's cheap tuning reach the wide grid's answer?  Every baseline and programs
whose best rate is moved by a constant, scored by the search's walk (from adam's rate, the
worst case: a child's walk starts from its parent's) and by the comparisons' wide tuning, on
the same tasks and seeds; prints the per-task and median differences and the windows run.

    .venv/bin/python scripts/bench_tuning.py [--tasks a,b] [--seeds 0] [--markdown FILE]
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np

RESCALED = [("lion", 0.01), ("lion", 100.0), ("sgd", 100.0), ("sgd", 0.01), ("adam", 0.001),
            ("adam", 1000.0), ("signsgd", 10.0), ("momentum", 0.01), ("rmsprop", 0.1)]
TOLERANCE = 0.02


def rescaled(name: str, factor: float):
    """Baseline ``name`` with its update multiplied by ``factor`` (its best rate moves by
    ``1 / factor``)."""
    import programs

    base = programs.BASELINES[name]
    lines = str(base).rstrip().splitlines()
    out = lines[-1].strip().removeprefix("return ").split(",")[0].strip()
    lines.insert(len(lines) - 1, f"    {out} = {factor!r} * {out}")
    return programs.parse("\n".join(lines).replace(f"def {base.name}(", f"def {base.name}_x(", 1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", help="comma-separated (default: tasks.search_names())")
    parser.add_argument("--seeds", default="0", help="training seeds (default 0, the search's)")
    parser.add_argument("--markdown", help="also write the table to this file")
    args = parser.parse_args()

    import programs
    import tasks
    from discover.scoring import compile_cache
    from discover.scoring.evaluate import Evaluator

    compile_cache.enable()
    names = args.tasks.split(",") if args.tasks else tasks.search_names()
    seeds = tuple(int(s) for s in args.seeds.split(","))
    contenders = [(n, p) for n, p in programs.BASELINES.items()]
    contenders += [(f"{n} x {f:g}", rescaled(n, f)) for n, f in RESCALED]
    evaluator = Evaluator(names, seeds=seeds, max_statements=max(
        [32] + [len(p.body) for _, p in contenders])).warm_up()
    rows = [["program", *names, "median: walk", "wide", "difference", "windows (walk / wide)"]]
    misses = []
    for label, program in contenders:
        walk = evaluator.evaluate(program)
        wide = [evaluator.tune(program, t, wide=True) for t in names]
        cells = [label]
        wide_task_scores = []
        for t, w, tuning in zip(names, walk.scores, wide):
            base = evaluator.baseline(t)
            if tuning.best is None:
                score = 2.0
            else:
                score = float(np.mean([tasks.normalized_score(x, base.loss, base.initial_loss)
                                       for x in tuning.best_losses]))
            wide_task_scores.append(score)
            diff = w.score - score
            cells.append(f"{diff:+.3f}" + (" *" if abs(diff) > TOLERANCE else ""))
            if abs(diff) > TOLERANCE:
                misses.append(f"{label} on {t}: walk {w.score:+.3f} at lr {w.lr:.3g}, wide "
                              f"{score:+.3f} at lr {tuning.lr:.3g}")
        wide_median = float(np.median(wide_task_scores))
        cells += [f"{walk.aggregate:+.3f}", f"{wide_median:+.3f}",
                  f"{walk.aggregate - wide_median:+.3f}",
                  (f"{sum(s.windows for s in walk.scores) / len(names):.2f} / "
                   f"{sum(x.windows for x in wide) / len(names):.2f}")]
        rows.append(cells)
    table = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    table += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    worst = max(abs(float(r[-2])) for r in rows[1:])
    text = "\n".join(table) + (
        f"\n\nPer task: the walk's score minus the wide grid's (seeds {args.seeds}); `*` more "
        f"than {TOLERANCE} apart. Largest median difference: {worst:.3f}.\n")
    if misses:
        text += "\nWhere the walk and the wide grid disagree by more than the tolerance:\n\n"
        text += "\n".join(f"- {m}" for m in misses) + "\n"
    print(text)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
