"""Importing the product must not start JAX's backend: the driver initialises Ray first."""

import os
import subprocess
import sys

from helpers import ROOT


def test_importing_the_cli_and_registries_leaves_jax_uninitialised():
    code = (
        "import discover, discover.cli, discover.campaign, tasks, programs\n"
        "discover.cli.build_parser()\n"
        "from jax._src import xla_bridge\n"
        "assert not xla_bridge._backends, 'a module touched a JAX array at import time'\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def _import_graph(root: str, packages=("programs", "tasks", "discover")) -> dict[str, set[str]]:
    """Module -> the project modules it imports, anywhere in its text (imports inside
    functions included: a deferred import is still a dependency)."""
    import ast

    paths = {}
    for package in packages:
        for directory, _, names in os.walk(os.path.join(root, package)):
            for name in names:
                if name.endswith(".py"):
                    path = os.path.join(directory, name)
                    module = os.path.relpath(path, root)[:-3].replace(os.sep, ".")
                    paths[module.removesuffix(".__init__")] = path
    graph = {}
    for module, path in paths.items():
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read())
        edges = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                edges |= {a.name for a in node.names if a.name in paths}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = module.split(".")[: len(module.split(".")) - node.level
                                              + path.endswith("__init__.py")]
                    base = ".".join(parts + ([node.module] if node.module else []))
                for a in node.names:
                    edges.add(f"{base}.{a.name}" if f"{base}.{a.name}" in paths else base)
        graph[module] = (edges & set(paths)) - {module}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out




def test_no_import_circle_in_the_packages():
    """programs -> tasks -> discover, and no module imports one that imports it back, even
    from inside a function."""
    graph = _import_graph(ROOT)
    assert len(graph) > 40 and graph["programs.program"]  # the scan found the modules
    assert _cycles(graph) == []
    layers = {"programs": 0, "tasks": 1, "discover": 2}
    upward = [(m, d) for m, deps in graph.items() for d in deps
              if layers[d.split(".")[0]] > layers[m.split(".")[0]]]
    assert upward == []


def test_the_cycle_finder_finds_a_planted_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


DISCOVER_LAYERS = (
    ("core", ("discover.errors", "discover.records", "discover.atomic", "discover.progress",
              "discover.plain_data",
              "discover.plots", "discover.config", "discover.resolve")),
    ("scoring", ("discover.scoring",)),
    ("search", ("discover.search",)),
    ("run directory", ("discover.rundir",)),
    ("reporting", ("discover.reporting",)),
    ("campaign", ("discover.campaign",)),
    ("experiments", ("discover.experiments",)),
    ("front door", ("discover", "discover.api", "discover.cli", "discover.commands")),
)


def _layer(module: str) -> int:
    """The index in DISCOVER_LAYERS of the most specific prefix naming ``module``."""
    best, length = None, -1
    for index, (_, prefixes) in enumerate(DISCOVER_LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > length:
                best, length = index, len(prefix)
    assert best is not None, f"{module} is in no layer of DISCOVER_LAYERS"
    return best


def test_discover_is_layered_by_concept():
    """Inside discover, each concept imports only the ones below it: core < scoring < search
    < run directory < reporting < campaign < experiments < the API and the CLI.  Scoring
    knows nothing of the search; nothing in the product imports the experiments."""
    graph = {m: deps for m, deps in _import_graph(ROOT).items() if m.startswith("discover")}
    assert "discover.scoring.evaluate" in graph and "discover.search.evolution" in graph
    upward = sorted(f"{m} ({DISCOVER_LAYERS[_layer(m)][0]}) imports {d} "
                    f"({DISCOVER_LAYERS[_layer(d)][0]})"
                    for m, deps in graph.items() for d in deps
                    if d.startswith("discover") and _layer(d) > _layer(m))
    assert upward == [], "\n".join(upward)


ENGINE = {"programs/vm.py"}  # the compile-once engine may be larger (docs/DESIGN.md)
MAX_MODULE_LINES = 470


def test_no_module_but_the_engine_outgrows_its_limit():
    """Small modules: every module of the packages, the engine excepted, stays within
    MAX_MODULE_LINES (about 450; split by concept when one grows past it)."""
    too_long = {}
    for package in ("programs", "tasks", "discover"):
        for directory, _, names in os.walk(os.path.join(ROOT, package)):
            for name in names:
                path = os.path.join(directory, name)
                relative = os.path.relpath(path, ROOT)
                if name.endswith(".py") and relative not in ENGINE:
                    with open(path, encoding="utf-8") as f:
                        lines = sum(1 for _ in f)
                    if lines > MAX_MODULE_LINES:
                        too_long[relative] = lines
    assert too_long == {}
