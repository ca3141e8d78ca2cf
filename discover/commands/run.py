"""``discover run``: start a discovery campaign in a new run directory."""

from __future__ import annotations

import argparse
import os

from discover.config import CampaignConfig, load_config, parse_list
from discover.errors import UserError


def register(sub) -> None:
    p = sub.add_parser(
        "run", help="start a discovery campaign",
        description="Evolve optimizer programs (regularized evolution, evaluated in Ray "
                    "actors) and write a run directory: config.json, state.json, "
                    "evaluations.jsonl, hall_of_fame.json, best/.  With no arguments: a small "
                    "campaign, two minutes of search (after the workers compile) on every "
                    "core.  Flags override the --config file; its keys are the fields of "
                    "discover.config.CampaignConfig.")
    p.add_argument("--config", metavar="FILE", help="campaign configuration (.json or .toml)")
    p.add_argument("--out", metavar="DIR",
                   help="run directory (must be empty or absent; default runs/NAME or "
                        "runs/<timestamp>)")
    p.add_argument("--name", help="name of the run (default run directory runs/NAME)")
    p.add_argument("--max-evals", type=int, metavar="N", help="evaluation budget")
    p.add_argument("--time-limit", type=float, metavar="SECONDS",
                   help="seconds of search in this invocation, counted once the workers are "
                        "compiled (default 120)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="evaluation actors (default: one per CPU; 0: serial, in-process, for "
                        "debugging)")
    p.add_argument("--address", metavar="HOST:PORT|auto",
                   help="join this Ray cluster (default: RAY_ADDRESS, else a local instance)")
    p.add_argument("--seed", type=int, metavar="N", help="seed of the search")
    p.add_argument("--tasks", metavar="a,b,...", help="tasks searched on")
    p.add_argument("--held-out", metavar="a,b,...",
                   help="held-out tasks for meta-validation ('' for none)")
    p.add_argument("--start", metavar="adam,sgd,lion",
                   help="baselines the population starts from, or 'scratch'")
    p.add_argument("--population", type=int, metavar="N", help="population size")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> CampaignConfig:
    """The configuration file (its names checked, errors naming it) with the flags applied."""
    config = CampaignConfig()
    if args.config:
        from discover.resolve import check_registry_names

        config = load_config(args.config)
        check_registry_names(config, source=args.config)
    changes = {}
    for flag, key in (("name", "name"), ("max_evals", "max_evals"),
                      ("time_limit", "time_limit"), ("workers", "workers"),
                      ("address", "address"), ("seed", "seed"),
                      ("population", "population_size")):
        if getattr(args, flag) is not None:
            changes[key] = getattr(args, flag)
    for flag, key in (("tasks", "tasks"), ("held_out", "held_out_tasks"), ("start", "start")):
        if getattr(args, flag) is not None:
            changes[key] = list(parse_list(getattr(args, flag)))
    if not changes:
        return config
    try:
        return config.replace(**changes)
    except UserError as err:  # the file was valid: the problem is in a flag
        raise UserError(str(err).replace("configuration: ", "command line: ", 1)) from None


def run(args: argparse.Namespace) -> int:
    from discover import api
    from discover.resolve import resolve_tasks
    from discover.rundir import default_path

    # Every check before anything is created or started (Ray, the JAX compile).
    config = config_from_args(args)
    run_dir = args.out or default_path(config.name)
    api.check_run_dir(run_dir)
    try:
        resolve_tasks(config)  # names against the registries (the flags' too), task specs
    except UserError as err:
        from_file = args.config and all(getattr(args, flag) is None
                                        for flag in ("tasks", "held_out", "start"))
        raise UserError(f"{args.config}: {err}" if from_file else str(err)) from None
    result = api.run_campaign(config, run_dir, progress=not args.quiet, echo=print)
    print(f"results: {os.path.join(run_dir, 'hall_of_fame.json')}, "
          f"{os.path.join(run_dir, 'best')}/; continue with: discover resume {run_dir}")
    return 130 if result.summary.stopped == "interrupted" else 0
