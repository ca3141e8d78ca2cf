"""``discover resume``: continue a campaign from its run directory."""

from __future__ import annotations

import argparse
import os
import sys

from discover.errors import UserError


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
    from discover import state as files
    from discover.config import CampaignConfig

    # Everything is checked before anything is written or started: a resume that fails here
    # leaves the run directory as it was (Campaign.open rewrites config.json with a new
    # budget, and truncates a torn last line of the log).
    problems = files.validate_run_dir(args.run_dir)
    if problems:
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise UserError(problems[0] + more)
    config_path = os.path.join(args.run_dir, files.CONFIG_FILE)
    saved = CampaignConfig.from_dict(files.read_json(config_path), source=config_path)
    changes = {key: value for key, value in (("max_evals", args.max_evals),
                                             ("time_limit", args.time_limit),
                                             ("workers", args.workers)) if value is not None}
    config = saved.replace(**changes) if changes else saved  # UserError on a bad value
    done = len(files.read_log(os.path.join(args.run_dir, files.LOG_FILE)))
    if config.max_evals is not None and done >= config.max_evals:
        raise UserError(f"{args.run_dir}: the budget of {config.max_evals} evaluations is "
                        f"spent; pass a larger --max-evals")

    from discover.campaign import Campaign
    from discover.workers import init_ray

    campaign = Campaign.open(args.run_dir, max_evals=args.max_evals, time_limit=args.time_limit)
    if args.workers is not None:
        campaign.config = campaign.config.replace(workers=args.workers)
    try:
        if campaign.config.workers != 0:
            init_ray(campaign.config.address)
        print(f"discover: resuming {args.run_dir} after {campaign.log.count} evaluations ...",
              file=sys.stderr)
        summary = campaign.run(progress=not args.quiet)
    finally:
        campaign.close()
    print("\n".join(summary.lines()))
    return 130 if summary.stopped == "interrupted" else 0
