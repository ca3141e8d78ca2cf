"""``discover report``: write RUN_DIR/report.md with its plots in RUN_DIR/report/."""

from __future__ import annotations

import argparse

from discover.errors import UserError


def register(sub) -> None:
    p = sub.add_parser(
        "report", help="write a campaign's report (report.md and plots)",
        description="Read a run directory and write RUN_DIR/report.md with PNG plots in "
                    "RUN_DIR/report/: fitness over the search, cache-hit and failure rates, "
                    "training curves of the top programs against tuned adam, sgd and lion on "
                    "the held-out tasks, the hall of fame, the configuration and the cost.  "
                    "Works on a running or unfinished campaign; what is missing is listed.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--top", type=int, default=3, metavar="N",
                   help="hall-of-fame programs whose training curves are drawn (default 3)")
    p.add_argument("--no-curves", action="store_true",
                   help="skip the training curves (they train each program and baseline on "
                        "every held-out task: about a minute for the built-in tasks)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from discover.reporting.report import write_report

    if args.top < 0:
        raise UserError(f"--top must be >= 0, got {args.top}")
    path = write_report(args.run_dir, curves=not args.no_curves, top=args.top)
    print(f"discover: report written to {path}")
    return 0
