"""JAX's persistent compilation cache for the evaluators: a worker that starts again (a resume,
a replaced actor, another campaign with the same tasks) loads its XLA executables from disk
instead of compiling them; with the traced runs kept too (below), a warm worker start on the
search set and tier B is 13.0 s against 228.5 s cold (``scripts/bench_eval.py --startup``).

Contract: :func:`enable` points JAX at the directory named by ``$DISCOVER_COMPILE_CACHE``
(default ``$XDG_CACHE_HOME/optimizer-discovery/xla``, else ``~/.cache/...``); an empty value,
or a directory that cannot be created, leaves the cache off.  Entries are keyed by JAX on the
program, the JAX/XLA versions, the flags and the device, so a stale entry is never used.  Call
it before the first compilation of the process.  It also keeps the traced runs of the built-in
tasks and the fingerprint's probe (``programs.export_cache``) in ``<directory>-traced``: tracing
is the larger part of a warm start, and with both a worker's start-up is mostly loading.
"""

from __future__ import annotations

import os

from discover.scoring.cache_dirs import cache_directory

ENV = "DISCOVER_COMPILE_CACHE"
MIN_COMPILE_SECONDS = 0.0
"""Every executable is written, the small ones too: a task's start jits about fifteen small
functions (parameter initialisation per seed, data preparation) that compile in ~0.1 s each,
which was half of a warm start (one worker, 13 tasks: 38.5 s with only the >= 1 s runs cached,
19.9 s with all of them; ``scripts/bench_eval.py --startup``)."""


def enable() -> str | None:
    """Turn the cache on; returns its directory, or None when it is off."""
    path = cache_directory(ENV, "xla")
    if path is None:
        return None
    import jax

    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    from programs import export_cache

    export_cache.use(path.rstrip(os.sep) + "-traced")
    return path
