"""A run's best program as files: ``best/program.opt`` with its provenance, and the optax,
PyTorch and NumPy modules.

Contract: the found program is named :data:`FOUND_NAME` wherever it is shown (the summary,
``report.md``, ``best/program.opt``, the exported modules), not after the baseline it descends
from.  An exporter that fails is a RuntimeError naming the target.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import programs
from discover.progress import format_score
from discover.reporting.summary import held_out_claim

EXPORT_TARGETS = ("optax", "torch", "numpy")

FOUND_NAME = "discovered"
"""The found program's name wherever it is shown: the summary, report.md, best/program.opt
and the exported modules (not the baseline it descends from)."""


def found_name(text: str | None) -> str | None:
    """``text``, a program, renamed :data:`FOUND_NAME`."""
    if text is None:
        return None
    return str(dataclasses.replace(programs.parse(text), name=FOUND_NAME))


def best_files(program: programs.Program, provenance: dict, interval, *, campaign: str,
               seed: int, run_dir: str, promotion_score: float | None = None
               ) -> tuple[str, Callable[[], dict[str, str]]]:
    """The text of ``best/program.opt`` (a comment header: campaign, seed, scores, the
    claim, fingerprint; then ``program`` named :data:`FOUND_NAME`) and a function
    that exports it to every target (``provenance``: ``search_score``, ``held_out_score``,
    ``fingerprint``, ``rates``; ``interval``: the held-out interval, or the promotion's when
    ``promotion_score`` is given, or None)."""
    program = dataclasses.replace(program, name=FOUND_NAME)
    claim = "" if interval is None else "; " + held_out_claim(interval)
    promoted = ("" if promotion_score is None else
                f", promoted on fresh seeds {format_score(promotion_score)}")
    header = (f"# Discovered by campaign {campaign} (seed {seed}).\n"
              f"# Search score {format_score(provenance['search_score'])}, held-out score "
              f"{format_score(provenance['held_out_score'])}{promoted} (0 = tuned adam, lower "
              f"is better{claim}); fingerprint {provenance['fingerprint']}.\n")

    def modules() -> dict[str, str]:
        out = {}
        for target in EXPORT_TARGETS:
            try:
                out[target] = programs.export(program, target, run=run_dir, **provenance)
            except Exception as err:
                raise RuntimeError(f"{run_dir}/best: exporting the best program to {target} "
                                   f"failed: {type(err).__name__}: {err}") from err
        return out

    return header + str(program), modules
