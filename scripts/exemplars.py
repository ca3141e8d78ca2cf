"""Can a search from adam reach what the field found after Adam?  The exemplars' table.

For each exemplar (lookahead, nadam, cautious adam, AdEMAMix, and adam's scheduled form), its
size (statements, state slots), its statement edit distance from adam (``programs.distance``:
about how many mutations a search needs), whether the default search space holds it
(``max_statements``, ``max_slots``), and its scores against tuned adam on tiers B and C from
two ``discover bench`` runs (their ``results.json``), which the commands below make:

    .venv/bin/discover bench --tasks B --seeds 1,2,3 --out results/exemplars/b \\
        --baselines adam,lookahead,nadam,adam_warmup_cosine,ademamix,cautious_adam
    .venv/bin/discover bench --tasks C --seeds 0,1,2 --out results/exemplars/c \\
        --baselines adam,lookahead,nadam,adam_warmup_cosine,ademamix,cautious_adam
    .venv/bin/python scripts/exemplars.py --out results/exemplars/table.md

(the seeds of the committed benches of the searches' programs, whose caches seeded these).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

EXEMPLARS = ("lookahead", "nadam", "cautious_adam", "ademamix", "adam_warmup_cosine")


def tier_cells(path: str) -> dict[str, str]:
    """Per contender of a bench's results.json: median difference from adam, interval,
    verdict."""
    import numpy as np

    from discover.scoring.stats import aggregate, format_interval, interval, short_verdict

    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    by_name = {c["name"]: c for c in data["contenders"]}
    adam = by_name["adam"]["scores"]
    cells = {}
    for name, c in by_name.items():
        differences = [np.asarray(c["scores"][t]["seed_scores"])
                       - np.asarray(adam[t]["seed_scores"]) for t in data["tasks"]]
        bounds = interval(differences)
        median = aggregate(float(d.mean()) for d in differences)
        cells[name] = f"{median:+.3f} {format_interval(bounds)} {short_verdict(bounds)}"
    return cells


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--b", default="results/exemplars/b/results.json")
    parser.add_argument("--c", default="results/exemplars/c/results.json")
    parser.add_argument("--out", help="also write the table here")
    args = parser.parse_args(argv)
    import programs
    from discover.config import CampaignConfig
    from programs.distance import edit_distance

    defaults = CampaignConfig()
    b, c = tier_cells(args.b), tier_cells(args.c)
    adam = programs.BASELINES["adam"]
    lines = [("| program | statements | slots | distance from adam | in the default space "
             f"(<= {defaults.max_statements} statements, {defaults.max_slots} slots) | "
             "tier B vs adam | tier C vs adam |"), "|---|---:|---:|---:|---|---:|---:|"]
    for name in ("adam", *EXEMPLARS):
        p = programs.BASELINES[name]
        fits = len(p.body) <= defaults.max_statements and len(p.slots) <= defaults.max_slots
        lines.append(f"| {name} | {len(p.body)} | {len(p.slots)} | {edit_distance(adam, p)} | "
                     f"{'yes' if fits else 'no'} | {b.get(name, '')} | {c.get(name, '')} |")
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if args.out:
        from discover.atomic import write_text_atomic

        write_text_atomic(args.out, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
