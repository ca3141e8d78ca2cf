"""The task registry: built-in proxy tasks by name, user tasks by ``register`` or by a
``"package.module:factory"`` spec.

A plain dict, name -> :class:`~tasks.base.Task`, in registration order (the built-ins cheapest
first).  Building a built-in task is cheap: data files are read on first use.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from tasks import (
    char_transformer,
    digits_autoencoder,
    digits_cnn,
    digits_mlp,
    logistic,
    quadratic,
    rnn_adding,
    rosenbrock,
)
from tasks.base import Task

_REGISTRY: dict[str, Task] = {}

# Characters a task name may not contain: ',' separates names on the command line, ':' marks a
# "module:factory" spec.
_RESERVED = ",: \t\n"


def register(task_or_factory: Task | Callable[[], Task], *, replace: bool = False) -> Task:
    """Add a task (or a zero-argument factory returning one) under ``task.name`` and return
    the task.  A name already taken is a ``ValueError`` unless ``replace``."""
    task = task_or_factory
    if not isinstance(task, Task) and callable(task):
        task = task()
    if not isinstance(task, Task):
        problem = f"register() needs a tasks.Task or a factory returning one, not {task!r}"
        raise ValueError(problem)  # noqa: TRY004 (the registry's errors are ValueErrors)
    if not task.name or any(c in task.name for c in _RESERVED):
        raise ValueError(f"task name {task.name!r} must be non-empty, without spaces, ',' or ':'")
    if task.steps <= 0:
        raise ValueError(f"task {task.name!r}: steps must be positive, got {task.steps}")
    if task.name in _REGISTRY and not replace and _REGISTRY[task.name] is not task:
        raise ValueError(f"task {task.name!r} is already registered (pass replace=True)")
    _REGISTRY[task.name] = task
    return task


def unregister(name: str) -> None:
    """Remove a registered task (a ``ValueError`` if there is none)."""
    get(name)
    del _REGISTRY[name]


def names(include_held_out: bool = True) -> list[str]:
    """Registered task names in registration order; without the held-out ones on request."""
    return [n for n, t in _REGISTRY.items() if include_held_out or not t.held_out]


def search_names() -> list[str]:
    """The tasks the search may see (not held out): its default task set."""
    return names(include_held_out=False)


def held_out_names() -> list[str]:
    """Meta-validation tasks: never shown to the search, used to check what it found."""
    return [n for n, t in _REGISTRY.items() if t.held_out]


def get(name: str) -> Task:
    """The registered task called ``name``; a ``ValueError`` naming the known ones if none."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(_REGISTRY)}") from None


def resolve(spec: str) -> Task:
    """A task from a registered name or from ``"package.module:factory"``: the module is
    imported and ``factory()`` (zero arguments) must return a :class:`Task`; a module-level
    ``Task`` instance is accepted too.  Any problem is a ``ValueError`` naming ``spec``.
    A resolved spec is not registered; each call builds the task anew."""
    if not isinstance(spec, str):
        raise ValueError(f"task spec must be a string, got {spec!r}")  # noqa: TRY004
    if spec in _REGISTRY:
        return _REGISTRY[spec]
    if ":" not in spec:
        raise ValueError(f"unknown task {spec!r}: not a registered name (known: "
                         f"{', '.join(_REGISTRY)}) nor a 'package.module:factory' spec")
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"task spec {spec!r}: expected 'package.module:factory'")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name and (module_name == err.name or module_name.startswith(err.name + ".")):
            raise ValueError(f"task spec {spec!r}: no module named {err.name!r}") from err
        raise ValueError(f"task spec {spec!r}: importing {module_name!r} failed: {err}") from err
    except Exception as err:
        raise ValueError(f"task spec {spec!r}: importing {module_name!r} failed: "
                         f"{type(err).__name__}: {err}") from err
    target = module
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise ValueError(f"task spec {spec!r}: module {module_name!r} has no attribute "
                             f"{attribute!r}")
        target = getattr(target, part)
    if isinstance(target, Task):
        return target
    if not callable(target):
        problem = f"task spec {spec!r}: {attribute!r} is a {type(target).__name__}, not a factory"
        raise ValueError(problem)  # noqa: TRY004
    try:
        task = target()
    except Exception as err:
        raise ValueError(f"task spec {spec!r}: {attribute}() raised "
                         f"{type(err).__name__}: {err}") from err
    if not isinstance(task, Task):
        problem = (f"task spec {spec!r}: {attribute}() returned a {type(task).__name__}, "
                   f"not a tasks.Task")
        raise ValueError(problem)  # noqa: TRY004
    return task


def _register_builtins() -> None:
    # Search tasks (cheap: under 0.1 s a run), then held-out meta-validation tasks (up to ~1 s);
    # each module notes the learning-rate sweep its default_lr comes from.
    register(quadratic.make())
    register(rosenbrock.make_2d())
    register(rosenbrock.make_8d())
    register(logistic.make())
    register(digits_mlp.make())
    register(digits_autoencoder.make())
    register(digits_cnn.make())
    register(char_transformer.make())
    register(rnn_adding.make())


_register_builtins()
