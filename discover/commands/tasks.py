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
                    "is 'package.module:factory'.  Seconds per run: docs/tasks.md's task table "
                    "(scripts/task_table.py measures them).")
    p.add_argument("--tier", metavar="TIER", help="only this tier (search, B, C, extra)")
    p.set_defaults(func=run)


def rows(tier: str | None = None) -> list[tuple[str, str, str, int, int, int]]:
    """(name, tier, family, parameters, steps, batch) of every task, in registry order."""
    import jax

    import tasks

    out = []
    for name in tasks.names(tier):
        task = tasks.get(name)
        params = task.init(jax.random.key(0))
        size = sum(int(leaf.size) for leaf in jax.tree.leaves(params))
        out.append((name, task.tier, task.family, size, task.steps, task.batch_size))
    return out


def run(args: argparse.Namespace) -> int:
    import tasks

    if args.tier is not None and args.tier not in tasks.TIERS:
        raise UserError(f"--tier: unknown tier {args.tier!r}; tiers: {', '.join(tasks.TIERS)}")
    table = rows(args.tier)
    header = ("task", "tier", "family", "parameters", "steps", "batch")
    cells = [header] + [(n, t, f, f"{p:,}", str(s), str(b)) for n, t, f, p, s, b in table]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for row in cells:
        print("  ".join(c.ljust(w) if i < 3 else c.rjust(w)
                        for i, (c, w) in enumerate(zip(row, widths))).rstrip())
    return 0
