"""Shared fixtures: one local Ray instance for the whole test session (started on first use)."""

from __future__ import annotations

import os
import tempfile
import warnings

import pytest

# The evaluators' persistent compilation cache (discover/scoring/compile_cache.py): one directory for
# this test session, set before Ray starts so that actors inherit it; never the user's own.
os.environ.setdefault("DISCOVER_COMPILE_CACHE", tempfile.mkdtemp(prefix="discover-xla-"))
os.environ.setdefault("DISCOVER_BASELINE_CACHE", tempfile.mkdtemp(prefix="discover-baselines-"))
os.environ.setdefault("DISCOVER_EVAL_CACHE", tempfile.mkdtemp(prefix="discover-eval-"))


def pytest_configure(config):
    """The compile cache on for the whole session, from the start: the bench, eval and the
    workers turn it on the first time they run, and it stays on for the process, so without
    this a test module run alone would take another path (no traced-run cache) than in the
    full suite.  Every module now runs as in the product."""
    from discover.scoring import compile_cache

    compile_cache.enable()


@pytest.fixture(scope="session")
def ray_session():
    """A local Ray instance with 2 CPUs, shut down when the session ends.  Tests that need Ray
    ask for this fixture; the others never start it."""
    import ray

    started = not ray.is_initialized()
    if started:
        with warnings.catch_warnings():
            # JAX has run in this process already, and it warns on any os.fork().  Ray forks
            # only through subprocess, which execs at once: nothing of JAX runs in the child.
            warnings.filterwarnings("ignore", message="os.fork", category=RuntimeWarning)
            ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield ray
    if started:
        ray.shutdown()
