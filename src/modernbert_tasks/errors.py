"""Exceptions. Every message says what was wrong, what was expected, and how to fix it."""

from __future__ import annotations

import contextlib
import contextvars
import difflib
from collections.abc import Iterable, Iterator
from pathlib import Path

__all__ = [
    "ModernBertTasksError",
    "TaskDefinitionError",
    "UnknownTaskError",
    "DuplicateTaskError",
    "PluginLoadError",
    "DataError",
    "ConfigError",
    "ModelLoadError",
    "RunLockedError",
    "OutputWriteError",
    "TrainingDiverged",
    "TrainingInterrupted",
    "suggest",
    "hint",
    "clipped_repr",
    "speaking_cli",
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


class RunLockedError(ModernBertTasksError, RuntimeError):
    """Another run holds the output folder."""


class OutputWriteError(ModernBertTasksError, OSError):
    """Writing a checkpoint or the model failed (often: the disk is full)."""

    def __str__(self) -> str:  # OSError would format a second argument as strerror
        return str(self.args[0]) if self.args else ""


class TrainingDiverged(ModernBertTasksError, ArithmeticError):
    """The loss or the weights became NaN/inf: training stopped, and nothing non-finite was
    saved."""


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped at a user's Ctrl-C (or a SIGTERM) after saving a checkpoint.

    A `KeyboardInterrupt`, so ``except Exception`` blocks do not swallow it. Attributes:
    `checkpoint` (the folder saved on the way out, or None) and `step`.
    """

    def __init__(
        self, message: str, checkpoint: Path | None = None, step: int = 0, signal_name: str = "SIGINT"
    ) -> None:
        super().__init__(message)
        self.checkpoint = checkpoint
        self.step = step
        self.signal_name = signal_name  # SIGINT (Ctrl-C) or SIGTERM

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def suggest(word: str, choices: Iterable[str], n: int = 3) -> str:
    """' Did you mean: a, b?' or '' -- appended to error messages."""
    close = difflib.get_close_matches(word, list(choices), n=n, cutoff=0.6)
    return f" Did you mean: {', '.join(close)}?" if close else ""


def clipped_repr(value: object, width: int = 60) -> str:
    """repr(value), cut to `width` characters: a bad value named without flooding the line."""
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


# --- the fix in the terms of the interface in use -----------------------------------------
_INTERFACE = contextvars.ContextVar("modernbert_tasks_interface", default="python")


@contextlib.contextmanager
def speaking_cli() -> Iterator[None]:
    """Within this block (the command line's), `hint` gives the flag form of a fix."""
    token = _INTERFACE.set("cli")
    try:
        yield
    finally:
        _INTERFACE.reset(token)


def hint(python: str, cli: str) -> str:
    """`python` (arguments) when called from Python, `cli` (flags) under the command line."""
    return cli if _INTERFACE.get() == "cli" else python
