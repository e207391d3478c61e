"""The plugin contract: one hook. A plugin module implements it with ``@hookimpl``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from .task import Task

__all__ = ["PROJECT_NAME", "ENTRY_POINT_GROUP", "hookspec", "hookimpl", "register_tasks"]

PROJECT_NAME = "modernbert_tasks"
ENTRY_POINT_GROUP = "modernbert_tasks"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_tasks(register: Callable[[Task], None]) -> None:
    """Call ``register(task)`` once for each `Task` this plugin provides.

    Example::

        from modernbert_tasks import Task, hookimpl

        @hookimpl
        def register_tasks(register):
            register(Task(name="my-task", labels=("no", "yes"), hub_id="me/my-data"))
    """
