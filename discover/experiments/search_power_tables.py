"""The search-power study's tables (``scripts/bench_search.py``): success rates with Wilson
intervals per (target, variant), the searches' diagnostics, each best program's judgement
against its references, parity with the target's exemplars, the bar check, and the outcomes
as JSON.  Pure functions of :class:`~discover.experiments.search_power.RunOutcome` lists.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence

import numpy as np

from discover.experiments.search_power import Judge, Judgement, RunOutcome, Target
from discover.scoring.stats import MIN_EFFECT


@dataclasses.dataclass(frozen=True)
class Summary:
    """Success of one (target, variant) over its seeds."""

    target: str
    variant: str
    runs: int
    successes: int
    rate_interval: tuple[float, float]
    median_evaluations: float | None
    median_cpu_seconds: float | None
    median_cpu_per_search: float = math.nan

    @property
    def rate(self) -> float:
        return self.successes / self.runs if self.runs else math.nan


def summarize(outcomes: Sequence[RunOutcome]) -> list[Summary]:
    """One :class:`Summary` per (target, variant), in first-seen order."""
    from scipy import stats

    groups: dict[tuple[str, str], list[RunOutcome]] = {}
    for o in outcomes:
        groups.setdefault((o.target, o.variant), []).append(o)
    out = []
    for (target, variant), runs in groups.items():
        won = [o for o in runs if o.success]
        ci = stats.binomtest(len(won), len(runs)).proportion_ci(0.95, method="exact")
        out.append(Summary(
            target, variant, len(runs), len(won), (float(ci.low), float(ci.high)),
            float(np.median([o.evaluations_to_success for o in won])) if won else None,
            float(np.median([o.cpu_seconds_to_success for o in won])) if won else None,
            float(np.median([o.cpu_seconds for o in runs]))))
    return out


def summary_table(summaries: Sequence[Summary], budget: int | str) -> str:
    """The success table; ``budget`` (evaluations, or a text) is stated under it."""
    lines = [("| target | variant | successes | rate | 95% interval | median evaluations to "
             "success | median CPU s to success | median CPU s a search |"),
             "|---|---|---:|---:|---|---:|---:|---:|"]
    for s in summaries:
        evals = "-" if s.median_evaluations is None else f"{s.median_evaluations:g}"
        cpu = "-" if s.median_cpu_seconds is None else f"{s.median_cpu_seconds:.0f}"
        lines.append(f"| {s.target} | {s.variant} | {s.successes}/{s.runs} | {s.rate:.0%} | "
                     f"[{s.rate_interval[0]:.0%}, {s.rate_interval[1]:.0%}] | {evals} | {cpu} | "
                     f"{s.median_cpu_per_search:.0f} |")
    budget = f"{budget} evaluations" if isinstance(budget, int) else budget
    return "\n".join(lines) + f"\n\nBudget: {budget} a search.\n"


DIAGNOSTICS = ("cache_hits", "twins_dropped", "invalid", "neutral_steps", "rejected",
               "restarts", "migrations", "resets")
"""Campaign counters (``AgingEvolution`` checkpoint) shown per variant, as a median a run."""


def diagnostics_table(outcomes: Sequence[RunOutcome]) -> str:
    """Per (target, variant), over its runs: the median best search score, how many runs'
    best program has live state, and the median of each of :data:`DIAGNOSTICS` (columns
    that are zero everywhere left out)."""
    groups: dict[tuple[str, str], list[RunOutcome]] = {}
    for o in outcomes:
        groups.setdefault((o.target, o.variant), []).append(o)
    shown = [k for k in DIAGNOSTICS if any(o.counters.get(k) for o in outcomes)]
    lines = ["| target | variant | median best search score | best program stateful | "
             + " | ".join(f"median {k.replace('_', ' ')}" for k in shown) + " |",
             "|---|---|---:|---:|" + "---:|" * len(shown)]
    for (target, variant), runs in groups.items():
        medians = [f"{np.median([o.counters.get(k, 0) for o in runs]):g}" for k in shown]
        lines.append(f"| {target} | {variant} | "
                     f"{np.median([o.best_search_score for o in runs]):.4f} | "
                     f"{sum(o.best_is_stateful for o in runs)}/{len(runs)} | "
                     + " | ".join(medians) + " |")
    return "\n".join(lines) + "\n"


def difference_cell(judgement: Judgement | dict, reference: str) -> str:
    """``-0.012 [-0.030, +0.001]``: the median difference from ``reference`` and its 95%
    interval ("no interval" with fewer than two seeds)."""
    j = judgement.to_dict() if isinstance(judgement, Judgement) else judgement
    if reference not in j["differences"]:
        return "-"  # judged before the target named this baseline
    bounds = j["intervals"].get(reference)
    where = "no interval" if bounds is None else f"[{bounds[0]:+.3f}, {bounds[1]:+.3f}]"
    return f"{j['differences'][reference]:+.3f} {where}"


def one_line(program_text: str) -> str:
    """A program's simplified body on one line: statements joined by ``; ``, the return
    left out (its slots are the names assigned)."""
    import programs
    from programs.simplify import simplify, without_unread_slots

    program = without_unread_slots(simplify(programs.parse(program_text)))
    body = [line.strip() for line in str(program).splitlines()[1:]]
    return "; ".join(line for line in body if line and not line.startswith("return"))


def judgements_table(outcomes: Sequence[RunOutcome], targets: Mapping[str, Target]) -> str:
    """Per search (one table per target): success, the program judged (the first success,
    or the run's last improvement: the best eligible program), simplified on one line, and
    its difference from each reference, then each exemplar, with the 95% interval; "-" for a
    run with nothing eligible."""
    tables = []
    for name, target in targets.items():
        runs = [o for o in outcomes if o.target == name]
        if not runs:
            continue
        against = (*target.references, *target.exemplars)
        lines = [f"| {name}: variant | seed | success | program judged | "
                 + " | ".join(f"vs {r}" for r in against) + " |",
                 "|---|---:|---|---|" + "---|" * len(against)]
        for o in runs:
            cells = ([f"`{one_line(o.program)}`"] if o.program else ["-"]) + [
                difference_cell(o.judgement, r) if o.judgement else "-" for r in against]
            lines.append(f"| {o.variant} | {o.seed} | {'yes' if o.success else 'no'} | "
                         + " | ".join(cells) + " |")
        tables.append("\n".join(lines) + "\n")
    return "\n".join(tables)


def as_good_as(judgement: dict | None, exemplar: str) -> bool:
    """Non-inferiority: the judged program's interval against ``exemplar`` lies below
    ``+MIN_EFFECT`` (it is not worse than the exemplar by more than the effect, at 95%)."""
    bounds = (judgement or {}).get("intervals", {}).get(exemplar)
    return bounds is not None and bounds[1] < MIN_EFFECT


def parity_table(outcomes: Sequence[RunOutcome], targets: Mapping[str, Target]) -> str:
    """Per (target, variant) of a target with exemplars: the runs whose judged program is as
    good as some exemplar (:func:`as_good_as`), with the Clopper-Pearson 95% interval, and
    how many are as good as each; empty when no target has exemplars."""
    from scipy import stats

    groups: dict[tuple[str, str], list[RunOutcome]] = {}
    for o in outcomes:
        if targets[o.target].exemplars:
            groups.setdefault((o.target, o.variant), []).append(o)
    if not groups:
        return ""
    lines = ["| target | variant | as good as an exemplar | 95% interval | per exemplar |",
             "|---|---|---:|---|---|"]
    for (target, variant), runs in groups.items():
        exemplars = targets[target].exemplars
        good = sum(any(as_good_as(o.judgement, e) for e in exemplars) for o in runs)
        ci = stats.binomtest(good, len(runs)).proportion_ci(0.95, method="exact")
        each = ", ".join(f"{e} {sum(as_good_as(o.judgement, e) for o in runs)}"
                         for e in exemplars)
        lines.append(f"| {target} | {variant} | {good}/{len(runs)} | "
                     f"[{ci.low:.0%}, {ci.high:.0%}] | {each} |")
    return "\n".join(lines) + "\n"


def bar_check(judge: Judge, target: Target) -> str:
    """A sentence: the target's exemplars judged by its rule, each difference with its
    interval, and whether the exemplar itself would count as a success."""
    import programs

    if not target.exemplars:
        return ""
    parts = []
    for name in target.exemplars:
        judgement = judge.judge(programs.BASELINES[name], target)
        parts.append(f"{name} " + ", ".join(f"vs {r} {difference_cell(judgement, r)}"
                                           for r in target.references)
                     + (" (a success)" if judgement.success else " (not a success)"))
    return (f"Bar check for **{target.name}**: the baselines of its class judged by the same "
            "rule: " + "; ".join(parts) + ".")


def outcomes_json(outcomes: Sequence[RunOutcome]) -> str:
    return json.dumps([o.to_dict() for o in outcomes], indent=1) + "\n"
