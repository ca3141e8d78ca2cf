"""The main jobs as Python calls: what ``discover run``, ``resume``, ``eval``, ``bench``,
``report`` and ``export`` do, for a notebook or a script.  The CLI's commands call these.

    import discover
    result = discover.run_campaign(discover.CampaignConfig(max_evals=60), "runs/notebook")
    print(result.best)                          # the found program (programs.Program)
    discover.write_report(result.run_dir)       # report.md and its plots

Every function checks its input before it starts anything (a :class:`UserError` naming the
problem), starts or joins Ray only when workers are asked for (and leaves it running for the
next call: ``ray.shutdown()`` stops it), and writes what it computes where the CLI would.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import programs
from discover.config import CampaignConfig
from discover.errors import UserError


@dataclass(frozen=True)
class CampaignResult:
    """A campaign's outcome: its run directory, the summary the CLI prints, and the final
    check on tier C (None when it did not run: a short or interrupted run)."""

    run_dir: str
    summary: object  # discover.reporting.summary.Summary
    final_check: object | None  # discover.scoring.final_check.FinalCheck

    @property
    def best(self) -> programs.Program | None:
        """The best program found, as written in ``best/program.opt`` (None before any)."""
        path = os.path.join(self.run_dir, "best", "program.opt")
        return programs.load(path) if os.path.isfile(path) else None

    @property
    def hall_of_fame(self) -> list:
        """``hall_of_fame.json`` as :class:`discover.records.HallEntry`, best first."""
        from discover.rundir import load

        return list(load(self.run_dir).hall or [])

    def lines(self) -> list[str]:
        """The summary's lines and the final check's, as the CLI prints them."""
        check = self.final_check.lines() if self.final_check is not None else []
        return list(self.summary.lines()) + check


def check_run_dir(run_dir: str) -> None:
    """``run_dir`` can become a new run directory: absent or empty, and creatable."""
    if os.path.isdir(run_dir) and os.listdir(run_dir):
        raise UserError(f"run directory {run_dir} is not empty (use 'discover resume "
                        f"{run_dir}' to continue it, or choose another --out)")
    if os.path.lexists(run_dir) and not os.path.isdir(run_dir):
        raise UserError(f"run directory {run_dir} exists and is not a directory")
    parent = os.path.dirname(os.path.abspath(run_dir))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent) or not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"cannot create run directory {run_dir}: {parent} is not a writable "
                        f"directory")


def _finish(campaign, run_dir: str, progress: bool,
            echo: Callable[[str], None] | None) -> CampaignResult:
    from discover.scoring import final_check

    try:
        summary = campaign.run(progress=progress)
    finally:
        campaign.close()
    for line in summary.lines() if echo else ():
        echo(line)  # before the final check, which takes minutes
    for line in final_check.after_campaign(run_dir, campaign.config, summary.evaluations,
                                           summary.stopped, quiet=not progress):
        if echo:
            echo(line)
    checked = final_check.load(run_dir) if final_check.due(
        campaign.config, summary.evaluations) and summary.stopped != "interrupted" else None
    return CampaignResult(run_dir, summary, checked)


def run_campaign(config: CampaignConfig | None = None, run_dir: str | None = None, *,
                 progress: bool = False, echo: Callable[[str], None] | None = None
                 ) -> CampaignResult:
    """Start a campaign of ``config`` (default: the default campaign) in ``run_dir`` (absent
    or empty; default ``runs/NAME`` or ``runs/<timestamp>``) and run it to its budget
    (``max_evals``, ``time_limit``); then the final check when it is due.  ``progress``: the
    progress line on stderr.  Ctrl-C stops with a checkpoint (``summary.stopped`` is then
    ``"interrupted"``): :func:`resume_campaign` continues it."""
    from discover.campaign import Campaign
    from discover.resolve import resolve_tasks
    from discover.rundir import default_path
    from discover.scoring import compile_cache
    from discover.search.cluster import init_ray

    config = config or CampaignConfig()
    if not isinstance(config, CampaignConfig):
        raise UserError(f"config must be a discover.CampaignConfig, not "
                        f"{type(config).__name__}")
    run_dir = run_dir or default_path(config.name)
    check_run_dir(run_dir)
    resolve_tasks(config)  # names against the registries, before anything starts
    if config.workers != 0:
        init_ray(config.address)  # Ray first: the driver computes with JAX from here on
    compile_cache.enable()  # the driver's probe (fingerprints) loads from disk next time
    try:
        campaign = Campaign.create(config, run_dir)
    except OSError as err:
        raise UserError(f"cannot create run directory {run_dir}: {err.strerror}") from None
    if progress:
        _stderr(f"discover: campaign in {run_dir}: compiling the evaluators ...")
    return _finish(campaign, run_dir, progress, echo)


def resume_campaign(run_dir: str, *, max_evals: int | None = None,
                    time_limit: float | None = None, workers: int | None = None,
                    progress: bool = False, echo: Callable[[str], None] | None = None
                    ) -> CampaignResult:
    """Continue the campaign in ``run_dir`` from its last checkpoint (no evaluation lost or
    repeated); ``max_evals`` is the whole campaign's budget, ``time_limit`` this call's;
    ``progress`` and ``echo`` as in :func:`run_campaign`."""
    from discover.campaign import Campaign
    from discover.scoring import compile_cache
    from discover.search.cluster import init_ray

    compile_cache.enable()  # before the driver's first compile (the probe, on reading back)
    campaign = Campaign.open(run_dir, max_evals=max_evals, time_limit=time_limit,
                             workers=workers)  # checks everything; a failure changes nothing
    try:
        if campaign.config.workers != 0:
            init_ray(campaign.config.address)
    except BaseException:
        campaign.close()
        raise
    if progress:
        _stderr(f"discover: resuming {run_dir} after {campaign.log.count} evaluations ...")
    return _finish(campaign, run_dir, progress, echo)


def score(program: programs.Program | str, tasks: Sequence[str] | None = None, *,
          seeds: Sequence[int] = (0,), schedule: str = "constant"):
    """Score one program (a :class:`programs.Program`, its text or a ``.opt`` path) as the
    search does: per task its tuned rate and its score against tuned adam (0 = adam, lower
    is better); ``tasks`` default to the search set.  Returns a
    :class:`discover.records.Evaluation` (``.aggregate``: the median over tasks; ``.by_task()``)."""
    import tasks as task_registry
    from discover.scoring import compile_cache
    from discover.scoring.evaluate import cached_evaluator

    compile_cache.enable()
    return cached_evaluator(list(tasks or task_registry.search_names()), seeds=seeds,
                            schedule=schedule).evaluate(_program(program))


def bench_programs(contenders: Mapping[str, programs.Program | str], tasks: str | Sequence[str] = "C",
          *, seeds: Sequence[int] = (1, 2, 3), out: str = "bench",
          baselines: Sequence[str] | None = None, lr_grid: int = 3,
          schedule: str = "constant", progress: bool = False, command: str = ""):
    """Benchmark named programs against tuned baselines (all of them by default) on a suite
    (a tier's name or task names; default tier C), over ``seeds``, as ``discover bench``:
    tables, figures and the cache in ``out`` (a rerun trains only what is missing).  Returns
    a :class:`discover.scoring.bench.BenchResult`; ``discover.scoring.bench.markdown(result)`` is its table
    (``command``, when given, is written beside it as the way to rerun it)."""
    from discover.scoring import bench as bench_module
    from discover.scoring import compile_cache

    suite = task_names_of(tasks)
    names = list(programs.BASELINES) if baselines is None else list(baselines)
    for name in names:
        if name not in programs.BASELINES:
            raise UserError(f"unknown baseline {name!r} (known: {', '.join(programs.BASELINES)})")
    clash = sorted(set(contenders) & set(names))
    if clash:
        raise UserError(f"a program is called {clash[0]!r}, as a baseline: rename it")
    entries = [bench_module.Contender(name, check_runnable(_program(p), name), user=True)
               for name, p in contenders.items()]
    entries += [bench_module.Contender(n, programs.BASELINES[n]) for n in names]
    compile_cache.enable()
    result = bench_module.run(entries, suite, seeds, out, lr_grid=lr_grid, schedule=schedule,
                              progress=bench_module.progress_bar() if progress else None)
    result.paths = bench_module.write_outputs(result, out, command)
    return result


def check_runnable(program: programs.Program, where: str) -> programs.Program:
    """``program`` fits the engine's largest size bucket, else a UserError naming ``where``."""
    from discover.config import MAX_SLOTS, MAX_STATEMENTS

    if len(program.body) > MAX_STATEMENTS or len(program.slots) > MAX_SLOTS:
        raise UserError(f"{where}: {len(program.body)} statements and {len(program.slots)} "
                        f"state slots; at most {MAX_STATEMENTS} and {MAX_SLOTS} can be run")
    return program


def write_report(run_dir: str, *, curves: bool = True, top: int = 3) -> str:
    """Write ``report.md`` and ``report/*.png`` in ``run_dir``; returns the report's path."""
    from discover.reporting import report

    return report.write_report(run_dir, curves=curves, top=top)


def export(program: programs.Program | str, target: str = "optax", *, fast: bool = False,
           **provenance) -> str:
    """The source of a standalone ``optax``, ``torch`` or ``numpy`` module for ``program``: a
    Program or its text as given, or a path: a ``.opt`` file, or a run directory, whose best
    program is exported pruned and with its scores and rates, as ``discover export`` does.
    ``fast``: no saturation (the libraries' speed; Inf where the exact module saturates)."""
    if isinstance(program, str) and "\n" not in program and os.path.exists(program):
        from pathlib import Path

        from discover.reporting.export_source import load_source

        program, found = load_source(Path(program))
        provenance = {**found, **provenance}
    return programs.export(_program(program), target, fast=fast, **provenance)


def task_names_of(tasks: str | Sequence[str]) -> list[str]:
    """A tier's name (``search``, ``B``, ``C``) or task names, checked against the registry."""
    import tasks as task_registry

    if isinstance(tasks, str):
        if tasks in task_registry.TIERS:
            return task_registry.names(tasks)
        tasks = [tasks]
    names = list(tasks)
    if not names:
        raise UserError("no task named")
    for name in names:
        try:
            task_registry.resolve(name)
        except ValueError as err:
            raise UserError(str(err)) from None
    return names


def _program(program: programs.Program | str) -> programs.Program:
    if isinstance(program, programs.Program):
        return program
    if not isinstance(program, str):
        raise UserError(f"a program is a programs.Program, its text or a .opt path, not "
                        f"{type(program).__name__}")
    if "\n" not in program and os.path.isfile(program):
        return programs.load(program)
    return programs.parse(program)


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
