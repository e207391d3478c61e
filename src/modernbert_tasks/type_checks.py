"""Values checked against type hints, strictly ('3' is not an int, True is not an int), and
the hints named for error messages: for the options and for the manifest's schema."""

from __future__ import annotations

import enum
import numbers
import os
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal

__all__ = ["matches_type", "type_name", "coerce"]


def type_name(hint: Any) -> str:
    """A readable name for a type hint: 'int', 'float | None', "'auto' | 'bf16'"."""
    origin = typing.get_origin(hint)
    if hint is type(None):
        return "None"
    if hint is Any:
        return "any"
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(hint))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(dict.fromkeys(type_name(a) for a in typing.get_args(hint)))
    if origin is not None:
        args = ", ".join(type_name(a) for a in typing.get_args(hint))
        name = getattr(origin, "__name__", str(origin))
        return f"{name}[{args}]" if args else name
    if hint is os.PathLike:
        return "path"
    return getattr(hint, "__name__", str(hint).replace("typing.", ""))


def matches_type(value: Any, hint: Any) -> bool:
    """Whether `value` fits `hint`. Strict: '3' is not an int, True is not an int."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return True
    if hint is type(None):
        return value is None
    if origin is Literal:
        return value in typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(matches_type(value, arm) for arm in typing.get_args(hint))
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, numbers.Real) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if hint is os.PathLike:
        return isinstance(value, os.PathLike)
    if origin in (list, tuple):
        (item,) = typing.get_args(hint)[:1] or (Any,)
        return isinstance(value, list | tuple) and all(matches_type(v, item) for v in value)
    if origin in (dict, Mapping) or hint in (dict, Mapping):
        args = typing.get_args(hint)
        return isinstance(value, Mapping) and (
            len(args) != 2
            or all(matches_type(k, args[0]) and matches_type(v, args[1]) for k, v in value.items())
        )
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return isinstance(value, hint) or (isinstance(value, str) and value in {m.value for m in hint})
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True  # an exotic hint we cannot check: TrainingArguments validates it


def coerce(value: Any, hint: Any) -> Any:
    """A string that parses as the field's number: YAML 1.1 reads `1e-4` as the string '1e-4'."""
    if not isinstance(value, str) or matches_type(value, hint):
        return value
    arms = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    for kind in (int, float):
        if kind in arms:
            try:
                return kind(value)
            except ValueError:
                continue
    return value
