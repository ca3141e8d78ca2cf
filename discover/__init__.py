"""The search: DEAP evolution over programs, Ray evaluators, campaign state, CLI, reports
(the architecture and data flow: ``docs/DESIGN.md``).

``discover.evaluate(program, task_names, ...)`` scores a program as the search does (the
function; import the module's other names with ``from discover.evaluate import ...``).
"""

from discover.evaluate import Evaluation, Evaluator, TaskScore, evaluate

__all__ = ["Evaluation", "Evaluator", "TaskScore", "evaluate"]
