"""Exceptions. Every message says what was wrong, what was expected, and how to fix it."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "ModernBertTasksError",
    "TaskDefinitionError",
    "UnknownTaskError",
    "DuplicateTaskError",
    "PluginLoadError",
    "DataError",
    "ConfigError",
    "ModelLoadError",
    "suggest",
]


class ModernBertTasksError(Exception):
    """Base class: the CLI turns these into a one-line message and exit code 1 (or 2 for usage)."""


class TaskDefinitionError(ModernBertTasksError, ValueError):
    """A `Task` was declared with an invalid field."""


class UnknownTaskError(ModernBertTasksError, KeyError):
    """No registered task has this name."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class DuplicateTaskError(ModernBertTasksError):
    """Two plugins registered the same task name."""


class PluginLoadError(ModernBertTasksError):
    """A plugin failed to import or its hook raised (raised only in strict mode)."""


class DataError(ModernBertTasksError, ValueError):
    """The data could not be loaded or does not match the task."""


class ConfigError(ModernBertTasksError, ValueError):
    """An argument or option has a bad name, type or value."""


class ModelLoadError(ModernBertTasksError, OSError):
    """A model could not be found or loaded."""


def suggest(word: str, choices: Iterable[str], n: int = 3) -> str:
    """' Did you mean: a, b?' or '' -- appended to error messages."""
    close = difflib.get_close_matches(word, list(choices), n=n, cutoff=0.6)
    return f" Did you mean: {', '.join(close)}?" if close else ""
