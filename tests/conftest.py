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


# The suite runs on two processes (pytest-xdist: ``-n 2`` in pyproject.toml).  Each test module
# goes whole to one process, so its compile-once fixtures are built once; the modules that run
# Ray or whole campaigns form one group, so that at most one campaign of this session runs at a
# time beside the other process's tests; tests/export (one session fixture that exports and runs
# every case) is one group.  The longest groups are handed out first (longest-processing-time
# first: the two processes finish close together).  xdist's own ``--dist loadgroup`` cannot do
# this: it marks groups by rewriting node ids, which pytest 9.2 no longer honours (it silently
# distributes test by test: pytest-xdist issue 1386).
CAMPAIGN_MODULES = frozenset({"test_api", "test_bench_driver", "test_campaign", "test_cluster",
                              "test_faults"})
LONGEST_FIRST = ("export", "campaigns", "tests/test_tasks.py", "tests/test_compile_cache.py",
                 "tests/test_yardstick.py", "tests/test_bench.py", "tests/test_search_power.py")
"""Groups measured as the longest (``--durations=0``), in the order they are handed out; the
others follow in collection order."""


def group_of(nodeid: str) -> str:
    """The xdist group of a test: ``export``, ``campaigns`` or its module's path."""
    path = nodeid.split("::", 1)[0]
    folder, _, file = path.rpartition("/")
    if folder.endswith("export"):
        return "export"
    return "campaigns" if file.removesuffix(".py") in CAMPAIGN_MODULES else path


def pytest_xdist_make_scheduler(config, log):
    """xdist's scheduler by scope (a scope goes whole to one process), with our groups as
    scopes."""
    from xdist.scheduler import LoadScopeScheduling

    class ModuleGroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return group_of(nodeid)

    return ModuleGroupScheduling(config, log)


def pytest_collection_modifyitems(config, items):
    """The longest groups first (a stable sort: each group keeps its order); xdist hands the
    groups out in this order (``--no-loadscope-reorder``)."""
    rank = {group: i for i, group in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(group_of(item.nodeid), len(rank)))


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

