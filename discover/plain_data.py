"""Plain data (JSON, TOML) checked against a type hint: the one place a user's setting is
converted, so that every wrong value gets the same one-line message.

Contract: :func:`convert` returns ``value`` as ``hint`` (lists become tuples, ints become
floats, ``false`` stands for null where TOML cannot write null) or :data:`INVALID`, never
raising; :func:`coerce` raises a :class:`~discover.errors.UserError` naming the source and
the key ("'x' must be an integer, got 'a'"); :func:`did_you_mean` suggests the closest known
name.  Nothing is evaluated: values are data.
"""

from __future__ import annotations

import math
import types
import typing
from typing import Any

from discover.errors import UserError


def with_article(noun: str) -> str:
    """``noun`` with its indefinite article: "an integer", "a number"."""
    return ("an " if noun[:1] in "aeiou" else "a ") + noun


def did_you_mean(name: str, known) -> str:
    """" (did you mean 'x'?)" for the closest of ``known`` to ``name``, or ""."""
    import difflib

    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""


def type_name(hint) -> str:
    if hint is type(None):
        return "null"
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_name(a) for a in typing.get_args(hint))
    if origin is tuple:
        return f"list of {type_name(typing.get_args(hint)[0])}"
    if origin is dict:
        return f"table of {type_name(typing.get_args(hint)[1])}"
    return {int: "integer", float: "number", str: "string", bool: "boolean"}[hint]


def coerce(key: str, value: Any, hint, source: str) -> Any:
    """``value`` as the field's type (lists become tuples, ints become floats); else UserError."""
    result = convert(value, hint)
    if result is INVALID and isinstance(value, float) and not math.isfinite(value):
        raise UserError(f"{source}: {key!r} must be a finite number, got {value!r}")
    if result is INVALID:
        raise UserError(f"{source}: {key!r} must be {with_article(type_name(hint))}, got {show(value)}")
    return result


INVALID = object()


def show(value: Any, limit: int = 80) -> str:
    """``repr(value)``, shortened: error messages stay one readable line."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + " ..."


def convert(value: Any, hint) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(hint):
            result = convert(value, option)
            if result is not INVALID:
                return result
        return INVALID
    if hint is type(None):  # null, or false ("off") where TOML cannot write null
        return None if value is None or value is False else INVALID
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            return INVALID
        items = [convert(v, typing.get_args(hint)[0]) for v in value]
        return INVALID if any(i is INVALID for i in items) else tuple(items)
    if origin is dict:
        if not isinstance(value, dict):
            return INVALID
        items = {k: convert(v, typing.get_args(hint)[1]) for k, v in value.items()}
        if any(not isinstance(k, str) or v is INVALID for k, v in items.items()):
            return INVALID
        return items
    if hint is bool:
        return value if isinstance(value, bool) else INVALID
    if hint is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else INVALID
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value) if math.isfinite(value) else INVALID
        return INVALID
    if hint is str:
        return value if isinstance(value, str) else INVALID
    return INVALID
