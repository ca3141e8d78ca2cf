"""The search: DEAP evolution over programs, Ray evaluators, campaign state, CLI, reports."""
