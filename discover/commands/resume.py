"""``discover resume``: continue a campaign from its run directory."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser(
        "resume", help="continue a campaign where it stopped",
        description="Continue the campaign of RUN_DIR from its last checkpoint: no evaluation "
                    "is lost or repeated.  --max-evals is the budget of the whole campaign "
                    "(evaluations already done count); --time-limit is for this invocation.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--max-evals", type=int, metavar="N",
                   help="evaluation budget of the whole campaign")
    p.add_argument("--time-limit", type=float, metavar="SECONDS",
                   help="seconds of search in this invocation (after the workers compile)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="evaluation actors (default: as configured)")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from discover import api

    # Everything is checked before anything is written or started (Campaign.open): a resume
    # that fails leaves the run directory as it was.
    result = api.resume_campaign(args.run_dir, max_evals=args.max_evals,
                                 time_limit=args.time_limit, workers=args.workers,
                                 progress=not args.quiet, echo=print)
    return 130 if result.summary.stopped == "interrupted" else 0
