"""The entry point: ``modernbert_tasks`` finds this module through pyproject.toml and calls
`register_tasks` once. Keep it light: it runs whenever someone lists tasks."""

from __future__ import annotations

from modernbert_tasks import hookimpl

from .tasks import TASKS

__all__ = ["register_tasks"]


@hookimpl
def register_tasks(register):
    for task in TASKS:
        register(task)
