"""The task registry: built-in proxy tasks by name, user tasks by ``register`` or by a
``"package.module:factory"`` spec.

A plain dict, name -> :class:`~tasks.base.Task`, in registration order (the built-ins by tier,
cheapest first).  Building a built-in task is cheap: data files are read on first use.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable

from tasks import (
    bag_of_words,
    char_rnn,
    char_transformer,
    cooccurrence,
    digits_autoencoder,
    digits_cnn,
    digits_mlp,
    logistic,
    quadratic,
    rnn_adding,
    rosenbrock,
    skipgram,
)
from tasks.base import TIERS, Task

_REGISTRY: dict[str, Task] = {}
_BUILTINS: dict[str, Task] = {}
_VARIANTS: dict[str, Task] = {}  # variant() results by name: one object per variant

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


def is_builtin(task: Task) -> bool:
    """True for a task object the package itself made, a built-in or a :func:`variant` of
    one (its definition is all in this package's source: the export cache of
    ``tasks.train`` relies on it)."""
    return _BUILTINS.get(task.name) is task or _VARIANTS.get(task.name) is task


def unregister(name: str) -> None:
    """Remove a registered task (a ``ValueError`` if there is none)."""
    get(name)
    del _REGISTRY[name]


def names(tier: str | None = None) -> list[str]:
    """Registered task names in registration order; only those of ``tier`` if given."""
    if tier is not None and tier not in TIERS:
        raise ValueError(f"unknown tier {tier!r}; tiers: {', '.join(TIERS)}")
    return [n for n, t in _REGISTRY.items() if tier is None or t.tier == tier]


def search_names() -> list[str]:
    """The search's default task set: the ``"search"`` tier."""
    return names("search")


def held_out_names() -> list[str]:
    """The funnel's first held-out stage by default: tier ``"B"``, never shown to the search."""
    return names("B")


def tier_c_names() -> list[str]:
    """The funnel's last stage and ``discover bench``'s default suite: tier ``"C"``."""
    return names("C")


def unknown_task(name: str) -> str:
    """The one message for a task name that names nothing: the closest name, every task by
    tier, and the other forms a task may take."""
    import difflib

    close = difflib.get_close_matches(name, list(_REGISTRY), n=1, cutoff=0.75)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    by_tier = "; ".join(f"{tier}: {', '.join(names(tier))}" for tier in TIERS if names(tier))
    return (f"unknown task {name!r}{hint}. Tasks by tier: {by_tier}. Also accepted: a "
            f"variant such as 'kjv_gru_s.steps4x' and a 'package.module:factory' spec.")


def get(name: str) -> Task:
    """The registered task called ``name``; a ``ValueError`` naming the known ones if none."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(unknown_task(name)) from None


def resolve(spec: str) -> Task:
    """A task from a registered name or from ``"package.module:factory"``: the module is
    imported and ``factory()`` (zero arguments) must return a :class:`Task`; a module-level
    ``Task`` instance is accepted too; a built-in's variant by its name (:func:`parse_variant`:
    ``"kjv_gru_s.steps4x"``).  Any problem is a ``ValueError`` naming ``spec``.  A resolved
    spec is not registered; each call builds a factory's task anew."""
    if not isinstance(spec, str):
        raise ValueError(f"task spec must be a string, got {spec!r}")  # noqa: TRY004
    if spec in _REGISTRY:
        return _REGISTRY[spec]
    if ":" not in spec:
        derived = parse_variant(spec)
        if derived is not None:
            return derived
        raise ValueError(unknown_task(spec))
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


# The built-ins as (factory, keyword arguments), by tier, cheapest first.  Each module notes
# the learning-rate sweep its default_lr comes from; the README's task table gives each task's
# size and measured seconds per run.
_BUILTIN_SPECS: tuple[tuple[Callable[..., Task], dict], ...] = (
    # The search set: real training problems, a candidate's whole evaluation ~1 s.
    (digits_mlp.make,
     {"hidden": 32, "steps": 200, "batch_size": 32, "tier": "search", "name": "digits_mlp_s"}),
    (digits_cnn.make, {"channels": (4, 8), "steps": 100, "batch_size": 16, "tier": "search",
                       "name": "digits_cnn_s"}),
    (digits_autoencoder.make, {"hidden": 16, "steps": 100, "batch_size": 256, "tier": "search",
                               "name": "digits_autoencoder_s"}),
    (char_transformer.make, {"context": 16, "width": 16, "layers": 1, "steps": 120,
                             "batch_size": 8, "text": "kjv", "tier": "search",
                             "name": "kjv_transformer_s"}),
    (char_rnn.make, {"context": 10, "steps": 100, "tier": "search", "name": "kjv_gru_s"}),
    (skipgram.make, {"vocab": 500, "tier": "search", "name": "kjv_skipgram_s"}),
    (bag_of_words.make,
     {"vocab": 1000, "dim": 8, "tier": "search", "name": "kjv_bag_of_words_s"}),
    (cooccurrence.make, {"vocab": 400, "tier": "search", "name": "kjv_cooccurrence_s"}),
    # Tier B: about 10x a search task, held out.
    (digits_mlp.make, {}),
    (digits_cnn.make, {}),
    (char_transformer.make, {}),
    (char_rnn.make, {"hidden": 48, "embed": 16, "context": 16, "steps": 300, "batch_size": 32,
                     "tier": "B", "name": "kjv_gru_b"}),
    (skipgram.make, {"vocab": 2000, "dim": 32, "steps": 400, "batch_size": 128, "tier": "B",
                     "name": "kjv_skipgram_b"}),
    # Tier C: about 100x a search task, held out; discover bench's default suite.
    (char_transformer.make, {"context": 32, "width": 32, "layers": 2, "heads": 2, "steps": 800,
                             "batch_size": 16, "text": "kjv", "tier": "C",
                             "name": "kjv_transformer_c"}),
    (digits_cnn.make, {"channels": (8, 16), "steps": 600, "batch_size": 64, "tier": "C",
                       "name": "digits_cnn_c"}),
    (char_rnn.make, {"hidden": 64, "embed": 32, "context": 32, "steps": 600, "batch_size": 32,
                     "tier": "C", "name": "kjv_gru_c"}),
    # Extra: analytic functions and synthetic problems, for tests and demos.
    (quadratic.make, {}),
    (rosenbrock.make_2d, {}),
    (rosenbrock.make_8d, {}),
    (logistic.make, {}),
    (digits_autoencoder.make, {}),
    (rnn_adding.make, {}),
)

# The keyword that sets a family's width (hidden units, channels, embedding size), per factory.
_WIDTH_KEYWORD = {digits_mlp.make: "hidden", digits_cnn.make: "channels",
                  digits_autoencoder.make: "hidden", char_transformer.make: "width",
                  char_rnn.make: "hidden", skipgram.make: "dim", bag_of_words.make: "dim",
                  cooccurrence.make: "dim"}


def variant(name: str, *, steps: float = 1, width: float = 1, batch: float = 1) -> Task:
    """Built-in task ``name`` rebuilt with its steps, width (hidden units, channels or
    embedding size: the family's width keyword) and batch size multiplied by the factors
    given (rounded, at least 1), same data, family, rate grid centre and tier; named
    ``"NAME.steps4x"`` (``.width2x``, ``.batch4x``, joined in that order; ``name`` itself for
    no change).  Not registered: pass it to :func:`register` to use it by name.  Analytic
    tasks have no width: asking one for a width is a ``ValueError``."""
    base = get(name)
    if not is_builtin(base):
        raise ValueError(f"{name!r} is not a built-in task (variants are made of built-ins)")
    factory, kwargs = _SPEC_OF[name]
    kwargs = dict(kwargs)
    parts = []
    for label, factor in (("steps", steps), ("width", width), ("batch", batch)):
        if factor <= 0:
            raise ValueError(f"variant of {name!r}: the {label} factor must be positive")
        if factor == 1:
            continue
        parts.append(f"{label}{factor:g}x")
        if label == "steps":
            kwargs["steps"] = max(1, round(base.steps * factor))
        elif label == "batch":
            kwargs["batch_size"] = max(1, round(base.batch_size * factor))
        else:
            keyword = _WIDTH_KEYWORD.get(factory)
            if keyword is None:
                raise ValueError(f"variant of {name!r}: the task has no width to change")
            current = kwargs.get(keyword, inspect.signature(factory).parameters[keyword].default)
            kwargs[keyword] = (tuple(max(1, round(c * factor)) for c in current)
                               if isinstance(current, tuple) else max(1, round(current * factor)))
    if not parts:
        return base
    kwargs["name"] = ".".join([name, *parts])
    kwargs.setdefault("tier", base.tier)
    if kwargs["name"] not in _VARIANTS:
        _VARIANTS[kwargs["name"]] = factory(**kwargs)
    return _VARIANTS[kwargs["name"]]


_VARIANT_PART = re.compile(r"^(steps|width|batch)([1-9]\d*)x$")


def parse_variant(spec: str) -> Task | None:
    """The :func:`variant` a name such as ``"kjv_gru_s.steps4x"`` or
    ``"digits_cnn_s.width2x.batch4x"`` names (a built-in, then ``.stepsKx``, ``.widthKx``,
    ``.batchKx`` in that order, each at most once, K a whole number), or None when ``spec`` is not of that
    form.  A form whose base is not a built-in, or whose factor cannot apply, is a
    ``ValueError``."""
    base, _, rest = spec.partition(".")
    if not rest:
        return None
    factors, order = {}, ("steps", "width", "batch")
    for part in rest.split("."):
        match = _VARIANT_PART.match(part)
        if match is None:
            return None
        label = match.group(1)
        if label in factors or any(order.index(k) > order.index(label) for k in factors):
            raise ValueError(f"task {spec!r}: write each of .steps, .width, .batch at most once, "
                             f"in that order")
        factors[label] = float(match.group(2))
    if base not in _BUILTINS:
        raise ValueError(f"task {spec!r}: {base!r} is not a built-in task (variants are made "
                         f"of built-ins: {', '.join(_BUILTINS)})")
    task = variant(base, **factors)
    if task.name != spec:
        raise ValueError(f"task {spec!r}: write the factors as {task.name!r} does")
    return task


_SPEC_OF: dict[str, tuple[Callable[..., Task], dict]] = {}


def _register_builtins() -> None:
    for factory, kwargs in _BUILTIN_SPECS:
        task = factory(**kwargs)
        _BUILTINS[task.name] = register(task)
        _SPEC_OF[task.name] = (factory, kwargs)


_register_builtins()
