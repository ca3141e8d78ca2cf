"""Which aggregate over tasks: the measurement behind ``discover.scoring.stats.aggregate`` (median).

Reads ``results.json`` files of ``discover bench`` (per program, task and seed the normalised
scores against tuned adam) and, for each candidate aggregate, prints over the programs:

* ``carried``: programs the aggregate puts ahead of adam (below 0) although they are worse
  than adam on more than half of the tasks: a score carried by a minority of tasks;
* ``hidden``: programs the aggregate puts behind adam although they are better than adam on
  more than half of the tasks;
* ``claims``: programs whose 95% interval against adam (stratified bootstrap over seeds,
  paired, ``discover.scoring.stats.interval`` with the aggregate swapped) excludes 0;
* ``width``: the mean width of those intervals (smaller is a sharper yardstick).

    .venv/bin/python scripts/aggregates.py results/bench/held_out/results.json \
        results/bench/search/results.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
from scipy import stats as scipy_stats

from discover.scoring import stats


def _trimmed(values: np.ndarray, axis: int = 0) -> np.ndarray:
    """Mean without the best and the worst task (a plain mean below three tasks)."""
    values = np.sort(values, axis=axis)
    n = values.shape[axis]
    return values.take(range(1, n - 1), axis=axis).mean(axis=axis) if n >= 3 else \
        values.mean(axis=axis)


AGGREGATES = {
    "mean": lambda v, axis=0: np.mean(v, axis=axis),
    "mean, each task clipped to [-0.25, 2]": lambda v, axis=0: np.mean(np.clip(v, -0.25, 2),
                                                                        axis=axis),
    "trimmed mean (best and worst task dropped)": _trimmed,
    "median": lambda v, axis=0: np.median(v, axis=axis),
}


def interval(differences: list[np.ndarray], combine) -> tuple[float, float] | None:
    if any(d.size < 2 for d in differences):
        return None

    def statistic(*samples, axis=-1):
        return combine(np.stack([s.mean(axis=axis) for s in samples]), axis=0)

    result = scipy_stats.bootstrap(tuple(differences), statistic, n_resamples=stats.RESAMPLES,
                                   vectorized=True, paired=False, method="percentile",
                                   rng=np.random.default_rng(stats.SEED))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", help="results.json files of discover bench")
    args = parser.parse_args()
    for path in args.results:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        tasks = data["tasks"]
        adam = next(c for c in data["contenders"] if c["name"] == "adam")
        others = [c for c in data["contenders"] if c["name"] != "adam"]
        print(f"{path}: {len(others)} programs against adam on {len(tasks)} tasks "
              f"({', '.join(tasks)}), seeds {data['seeds']}")
        print(f"  {'aggregate':<44} {'carried':>7} {'hidden':>6} {'claims':>6} {'width':>6}")
        for label, combine in AGGREGATES.items():
            carried = hidden = claims = 0
            widths = []
            for c in others:
                per_task = np.array([c["scores"][t]["score"] for t in tasks])
                value = float(combine(per_task))
                worse = int((per_task > 0).sum())
                carried += value < 0 and 2 * worse > len(tasks)
                hidden += value > 0 and 2 * int((per_task < 0).sum()) > len(tasks)
                diffs = [np.array(c["scores"][t]["seed_scores"])
                         - np.array(adam["scores"][t]["seed_scores"]) for t in tasks]
                bounds = interval(diffs, combine)
                if bounds is not None:
                    widths.append(bounds[1] - bounds[0])
                    claims += bounds[0] > 0 or bounds[1] < 0
            width = f"{np.mean(widths):.3f}" if widths else "-"
            print(f"  {label:<44} {carried:>7} {hidden:>6} {claims:>6} {width:>6}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
