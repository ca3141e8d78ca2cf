"""Export programs as standalone modules (optax, torch, numpy).

Contract (docs/DESIGN.md, "Export API"): ``export(program, target, **provenance)`` returns the source
of a module that imports only its framework, never this project:

* ``optax``: ``scale_by_NAME`` and the factory ``NAME(learning_rate[, total_steps])``
  returning an ``optax.GradientTransformation`` (``__all__ = ["NAME"]``);
* ``torch``: a ``torch.optim.Optimizer`` subclass taking ``lr`` (``__all__`` names it);
* ``numpy``: ``init(params[, total_steps])`` and ``update(grads, state, params, lr)`` over a
  dict of arrays (``__all__ = ["init", "update"]``).

``total_steps`` (the input ``T``) is asked for only when the program reads ``T``.  Keyword
``provenance`` (e.g. ``run``, ``search_score``, ``held_out_score``) is written into the
module's docstring.  Each module passes ``ruff check`` and ``ruff format --check`` for
program names of up to 32 characters, and computes what ``programs.as_optax`` computes (see
``codegen`` for the exact-semantics argument; ``tests/export/`` checks the numbers).
"""

from __future__ import annotations

from programs.program import Program

TARGETS: tuple[str, ...] = ("optax", "torch", "numpy")


def export(program: Program, target: str, *, fast: bool = False, **provenance) -> str:
    """Source of a standalone module running ``program`` in ``target``.

    ``fast``: leave out saturation (results clipped to the dtype's finite range) everywhere.
    Where no intermediate overflows, which is every ordinary training run, the numbers are
    the same; each saturation costs a pass (torch, numpy) or two instructions per element
    (XLA).  The default export is exact for every finite input.

    Raises ``ValueError`` for an unknown target and ``programs.ProgramError`` (a
    ``ValueError``) for a program that is not valid.
    """
    if target == "optax":
        from programs.exporters import to_optax as module
    elif target == "torch":
        from programs.exporters import to_torch as module
    elif target == "numpy":
        from programs.exporters import to_numpy as module
    else:
        raise ValueError(f"unknown export target {target!r}; choose one of {', '.join(TARGETS)}")
    return module.render(program, provenance, fast=fast)


__all__ = ["TARGETS", "export"]
