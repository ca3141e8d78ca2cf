"""``discover resume``: continue a campaign from its run directory."""

from __future__ import annotations

import argparse
import sys


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
    from discover import compile_cache
    from discover.campaign import Campaign
    from discover.ray_pool import init_ray

    # Everything is checked before anything is written or started (Campaign.open): a resume
    # that fails leaves the run directory as it was.
    compile_cache.enable()  # before the driver's first compile (the probe, on reading back)
    campaign = Campaign.open(args.run_dir, max_evals=args.max_evals, time_limit=args.time_limit,
                             workers=args.workers)
    try:
        if campaign.config.workers != 0:
            init_ray(campaign.config.address)
        print(f"discover: resuming {args.run_dir} after {campaign.log.count} evaluations ...",
              file=sys.stderr)
        summary = campaign.run(progress=not args.quiet)
    finally:
        campaign.close()
    print("\n".join(summary.lines()))
    from discover import final_check

    for line in final_check.after_campaign(args.run_dir, campaign.config, summary.evaluations,
                                           summary.stopped, args.quiet):
        print(line)
    return 130 if summary.stopped == "interrupted" else 0
