"""Traced functions kept on disk (``jax.export``): a process that finds one skips tracing.

Tracing a compile-once run (a task's training run, the fingerprint's probe) takes seconds of
Python in every process that needs it; XLA's persistent cache (``discover.scoring.
compile_cache``) then skips the compile, not the tracing.  :class:`Exported` wraps a jitted
function: on its first call it loads the function's export from the directory :func:`use`
named, keyed by the caller's ``key`` (what the function closes over), the argument shapes,
the JAX version and a digest of the sources of ``programs`` and ``tasks``; or traces and
lowers it once and writes the export (atomically).  The exported module is the one tracing
gives, so the results are the same (``tests/test_compile_cache.py``).

Contract: with no directory (the default) or an export that cannot be made or read, the
jitted function runs as usual: a damaged entry is a miss, never an error.
"""

from __future__ import annotations

import functools
import glob
import hashlib
import os
from collections.abc import Callable
from typing import Any

import jax

_DIRECTORY: str | None = None


def use(path: str | None) -> None:
    """Keep exports under ``path`` (None: off, the default)."""
    global _DIRECTORY
    if path is not None:
        try:
            os.makedirs(path, exist_ok=True)
        except OSError:
            path = None
    _DIRECTORY = path


def directory() -> str | None:
    return _DIRECTORY


@functools.cache
def sources_digest() -> str:
    """A digest of ``programs/*.py`` and ``tasks/*.py``: what every traced run depends on."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sha = hashlib.sha256()
    for path in sorted(glob.glob(os.path.join(root, "programs", "*.py"))
                       + glob.glob(os.path.join(root, "tasks", "*.py"))):
        with open(path, "rb") as f:
            sha.update(os.path.basename(path).encode() + b"\0" + f.read())
    return sha.hexdigest()


@functools.cache
def register_serializations() -> None:
    """The VM's argument types, for exports whose arguments hold them."""
    from jax import export

    from programs.vm import EncodedProgram, Layout

    export.register_namedtuple_serialization(EncodedProgram,
                                             serialized_name="programs.vm.EncodedProgram")
    export.register_namedtuple_serialization(Layout, serialized_name="programs.vm.Layout")


def path_for(key: Any, args) -> str | None:
    """Where the export of a function keyed ``key`` called with ``args`` lives (None: no
    directory)."""
    if _DIRECTORY is None:
        return None
    shapes = jax.tree.map(lambda a: (tuple(a.shape), str(a.dtype)), args)
    full = repr((jax.__version__, sources_digest(), key, jax.tree.structure(args),
                 jax.tree.leaves(shapes)))
    return os.path.join(_DIRECTORY, hashlib.sha256(full.encode()).hexdigest()[:32] + ".bin")


class Exported:
    """``traced`` (a ``jax.jit`` function), run through its kept export when there is one.

    ``key``: what the function's result depends on besides its arguments' shapes and the
    sources (the values it closes over that no source file fixes); None: never kept.
    ``origin`` after the first call: "loaded", "written", or None (traced as usual)."""

    def __init__(self, traced: Callable, key: Any):
        self.traced = traced
        self.key = key
        self.exported: Callable | None = None  # jax.jit of the export, once loaded or made
        self.origin: str | None = None
        self._tried = False

    @property
    def compiled(self) -> Callable:
        return self.traced if self.exported is None else self.exported

    def __call__(self, *args):
        if not self._tried:
            self._tried = True
            # not when the function was traced already (the cache turned on after it ran)
            fresh = getattr(self.traced, "_cache_size", lambda: 0)() == 0
            path = None if self.key is None or not fresh else path_for(self.key, args)
            if path is not None:
                self._load_or_export(path, args)
        return self.compiled(*args)

    def _load_or_export(self, path: str, args) -> None:
        from jax import export

        register_serializations()
        exported = None
        if os.path.exists(path):
            try:
                with open(path, "rb") as f:
                    exported = export.deserialize(bytearray(f.read()))
            except Exception:  # noqa: BLE001 (a damaged entry is a miss)
                exported = None
        origin = "loaded"
        if exported is None:
            exported, origin = self._export(path, args), "written"
        if exported is not None:
            self.exported, self.origin = jax.jit(exported.call), origin

    def _export(self, path: str, args):
        """Trace and lower once, write to ``path`` (atomically); None if this JAX cannot."""
        from jax import export

        tmp = f"{path}.{os.getpid()}.tmp"
        try:
            exported = export.export(self.traced)(*args)
            with open(tmp, "wb") as f:
                f.write(exported.serialize())
            os.replace(tmp, path)
        except Exception:  # noqa: BLE001 (no serialization, a full disk: trace as usual)
            if os.path.exists(tmp):
                os.remove(tmp)
            return None
        return exported
