"""The search: DEAP evolution over programs, Ray evaluators, campaign state, CLI, reports
(the architecture and data flow: ``docs/DESIGN.md``).

The Python API (``discover/api.py``; each call does what the CLI command of the same job does):

- ``run_campaign(CampaignConfig(...), run_dir)`` and ``resume_campaign(run_dir)`` -> a
  ``CampaignResult`` (``.best``, ``.summary``, ``.hall_of_fame``, ``.final_check``);
- ``score(program, tasks)``: scored as the search does, against tuned adam;
- ``bench_programs({"name": program}, "C")``: against every tuned baseline, with intervals;
- ``write_report(run_dir)``; ``export(program_or_run_dir, "optax" | "torch" | "numpy")``.

``evaluate(program, task_names, ...)`` and ``Evaluator`` are the scoring engine's own calls.
"""

from discover.api import (
    CampaignResult,
    bench_programs,
    export,
    resume_campaign,
    run_campaign,
    score,
    write_report,
)
from discover.config import CampaignConfig
from discover.scoring.evaluate import Evaluation, Evaluator, TaskScore, evaluate

__all__ = ["CampaignConfig", "CampaignResult", "Evaluation", "Evaluator", "TaskScore",
           "bench_programs", "evaluate", "export", "resume_campaign", "run_campaign", "score",
           "write_report"]
