"""Score found programs beside every tuned baseline of the library, on seeds the search never saw.

    .venv/bin/python scripts/compare_held_out.py NAME=PROGRAM_FILE [...] [--seeds 0,1,2]
        [--tasks held-out|search|a,b,...] [--markdown FILE]

Every program (the found ones and the 15 baselines of ``programs/library``) is trained on every
task with the campaigns' engine and learning-rate grid (``discover.evaluate.Evaluator``), on each
of ``--seeds`` (scores averaged over them; 0 = tuned adam on the same seeds, lower is better).
A campaign picks its best program by its held-out score on seed 0; seeds 1 and 2 show whether
that choice holds on other training runs.  Prints a markdown table sorted by the mean score
(``--markdown FILE`` writes it too), one row per program, one column per task.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false "
                                   "intra_op_parallelism_threads=1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("programs", nargs="*", metavar="NAME=PROGRAM_FILE")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--tasks", default="held-out",
                        help="held-out, search, or task names separated by commas")
    parser.add_argument("--markdown", metavar="FILE")
    args = parser.parse_args(argv)

    import programs
    import tasks
    from discover.evaluate import Evaluator

    found = {}
    for item in args.programs:
        name, sep, path = item.partition("=")
        if not sep or not name:
            parser.error(f"expected NAME=PROGRAM_FILE, got {item!r}")
        found[name] = programs.parse(Path(path).read_text(), path)
    names = {"held-out": tasks.held_out_names(), "search": tasks.search_names()}.get(
        args.tasks) or tuple(args.tasks.split(","))
    seeds = tuple(int(s) for s in args.seeds.split(","))
    candidates = {**found, **programs.BASELINES}
    evaluator = Evaluator(list(names), seeds=seeds,
                          max_statements=max(len(p.body) for p in candidates.values()),
                          max_slots=max(len(p.slots) for p in candidates.values()))
    rows = []
    for label, program in candidates.items():
        result = evaluator.evaluate(program)
        by_task = result.by_task()
        rows.append((result.aggregate, label, [by_task[t].score for t in names]))
        print(f"{label}: {result.aggregate:+.4f}", file=sys.stderr, flush=True)
    rows.sort()
    title = (f"Mean normalised score on {', '.join(names)}; seeds {args.seeds}; "
             "0 = tuned adam, lower is better; **found** programs in bold.")
    lines = [title, "",
             "| program | " + " | ".join(f"`{t}`" for t in names) + " | mean |",
             "|---|" + "---:|" * (len(names) + 1)]
    for mean, label, scores in rows:
        shown = f"**{label}**" if label in found else label
        lines.append(f"| {shown} | " + " | ".join(f"{s:+.3f}" for s in scores)
                     + f" | {mean:+.3f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
