"""``discover tasks``: the registered tasks, by tier, with their size."""

from __future__ import annotations

import argparse

from discover.errors import UserError


def register(sub) -> None:
    p = sub.add_parser(
        "tasks", help="list the tasks (name, tier, family, size)",
        description="List the registered tasks by tier: search (what a campaign searches "
                    "on), B (the funnel's held-out tier, about 10x a search task), C (discover "
                    "bench's default suite, about 100x) and extra (tests and demos), with each "
                    "one's family, parameters, steps and batch size.  A variant of a built-in "
                    "is named NAME.stepsKx, NAME.widthKx or NAME.batchKx; a task of your own "
                    "is 'package.module:factory'.  s/run: seconds per training run of one "
                    "rate and one seed on one core after the compile, as measured by "
                    "scripts/task_table.py --write-costs (a search candidate costs about 6 "
                    "runs of each search task).")
    p.add_argument("--tier", metavar="TIER", help="only this tier (search, B, C, extra)")
    p.set_defaults(func=run)


def rows(tier: str | None = None) -> list[tuple[str, str, str, int, int, int, float | None]]:
    """(name, tier, family, parameters, steps, batch, seconds per run or None where not
    measured) of every task, in registry order."""
    import jax

    import tasks
    from tasks.data import costs

    seconds = costs()["seconds_per_run"]
    out = []
    for name in tasks.names(tier):
        task = tasks.get(name)
        params = task.init(jax.random.key(0))
        size = sum(int(leaf.size) for leaf in jax.tree.leaves(params))
        out.append((name, task.tier, task.family, size, task.steps, task.batch_size,
                    seconds.get(name)))
    return out


def run(args: argparse.Namespace) -> int:
    import tasks

    if args.tier is not None and args.tier not in tasks.TIERS:
        raise UserError(f"--tier: unknown tier {args.tier!r}; tiers: {', '.join(tasks.TIERS)}")
    table = rows(args.tier)
    from tasks.data import costs

    header = ("task", "tier", "family", "parameters", "steps", "batch", "s/run")
    cells = [header] + [(n, t, f, f"{p:,}", str(s), str(b), "-" if c is None else f"{c:.3f}" if c < 1 else f"{c:.2f}")
                        for n, t, f, p, s, b, c in table]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for row in cells:
        print("  ".join(c.ljust(w) if i < 3 else c.rjust(w)
                        for i, (c, w) in enumerate(zip(row, widths))).rstrip())
    measured = costs().get("measured")
    if measured and any(c is not None for *_, c in table):
        print(f"\ns/run measured {measured} on an idle 2-core machine (one core each); "
              "'-': not measured (scripts/task_table.py --write-costs)")
    return 0
