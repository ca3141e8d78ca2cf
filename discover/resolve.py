"""A campaign configuration checked against the registries of ops, tasks and baselines.

Contract: :func:`resolve_tasks` fills the task lists a configuration leaves out (the
registry's search and held-out tasks) and checks every name it holds, task specs
``package.module:factory`` included (imported); :func:`check_registry_names` checks the names
alone, importing no task spec.  Both raise a one-line ``UserError``.
"""

from __future__ import annotations

import programs
import tasks
from discover.config import START_SCRATCH, CampaignConfig, check_names
from discover.errors import UserError
from programs import mutate

SCRATCH_PROGRAM = """\
def scratch(g, lr):
    u = g * lr
    return u
"""
"""The trivial starting program of a search from scratch: one plain gradient step."""


def start_programs(names) -> list[tuple[str, programs.Program]]:
    """The programs a population starts from (``scratch``: the trivial program)."""
    return [(name, programs.parse(SCRATCH_PROGRAM) if name == START_SCRATCH
             else programs.BASELINES[name]) for name in names]


def check_registry_names(config: CampaignConfig, source: str | None = None) -> None:
    """The ops, tasks, baselines and mutation kinds ``config`` names exist (UserError, naming
    ``source`` when given); task specs ``module:factory`` are not imported here."""
    try:
        check_names(config, ops=programs.OPS, task_names=tasks.names(),
                    baselines=programs.BASELINES, mutation_kinds=mutate.KINDS)
    except UserError as err:
        raise UserError(f"{source}: {err}" if source else str(err)) from None


def resolve_tasks(config: CampaignConfig) -> CampaignConfig:
    """``config`` with its task lists filled from the registry and every name checked."""
    search = tuple(config.tasks) if config.tasks is not None else tuple(tasks.search_names())
    held = (tuple(config.held_out_tasks) if config.held_out_tasks is not None
            else tuple(tasks.held_out_names()))
    config = config.replace(tasks=list(search), held_out_tasks=list(held))
    check_registry_names(config)
    for name, program in start_programs(config.start):
        if len(program.body) > config.max_statements or len(program.slots) > config.max_slots:
            raise UserError(f"'start': {name} has {len(program.body)} statements and "
                            f"{len(program.slots)} state slots; 'max_statements' is "
                            f"{config.max_statements} and 'max_slots' {config.max_slots}")
    for name in search + held:
        try:
            tasks.resolve(name)
        except ValueError as err:
            raise UserError(str(err)) from None
    return config
