"""The task registry: plugins found through the ``modernbert_tasks`` entry-point group.

Plugins load lazily, on the first call that needs them. Each plugin is imported and its
hook called on its own, so one broken plugin is reported and skipped while the rest work.

Environment variables:
  MODERNBERT_TASKS_STRICT_PLUGINS=1        a broken plugin raises instead of warning
  MODERNBERT_TASKS_DISABLE_PLUGINS=1       load only the built-in tasks (or: a,b to skip named plugins)

A plugin that hangs at import hangs the program, like any import: there is no in-process
time-out, because an import abandoned in a thread still holds the module's import lock and
the next import of that module waits for it anyway (tests/test_registry.py shows this).
Skip such a plugin with MODERNBERT_TASKS_DISABLE_PLUGINS=<name>: it is then never imported,
and pluggy blocks the name.
"""

from __future__ import annotations

import contextlib
import os
import traceback
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from . import hookspecs
from .errors import DuplicateTaskError, PluginLoadError, UnknownTaskError, suggest
from .task import Task
from .versions import package_versions

__all__ = [
    "PluginWarning",
    "PluginInfo",
    "Registry",
    "registry",
    "list_tasks",
    "get_task",
    "list_plugins",
    "register_plugin",
]

BUILTIN_MODULE = "modernbert_tasks.tasks"
_TRUE = {"1", "true", "yes", "on", "all"}


class PluginWarning(RuntimeWarning):
    """A plugin failed to load and was skipped."""


@dataclass
class PluginInfo:
    name: str
    module: str
    distribution: str | None = None
    version: str | None = None
    builtin: bool = False
    tasks: list[str] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _env_flag(name: str) -> str:
    return os.environ.get(name, "").strip().lower()


class Registry:
    """Holds plugins and the tasks they registered. `registry` below is the shared instance."""

    def __init__(self) -> None:
        self._in_process: list[tuple[object, str]] = []
        self.reset()

    def reset(self) -> None:
        """Forget everything loaded; the next call discovers plugins again."""
        self._loaded = False
        self._pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self._pm.add_hookspecs(hookspecs)
        self._plugins: dict[str, PluginInfo] = {}
        self._tasks: dict[str, tuple[Task, PluginInfo]] = {}

    # --- public ---------------------------------------------------------------------------
    def register_plugin(self, plugin: object, name: str | None = None) -> None:
        """Add a plugin object/module in-process (for tests, notebooks, unpublished plugins)."""
        name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
        self._in_process.append((plugin, name))
        if self._loaded:
            self._add_plugin(plugin, PluginInfo(name=name, module=_module_of(plugin)))

    @contextlib.contextmanager
    def isolated(self) -> Iterator[Registry]:
        """For tests: plugins registered in-process inside the block are forgotten after it,
        and discovery starts afresh on both sides."""
        saved = list(self._in_process)
        self.reset()
        try:
            yield self
        finally:
            self._in_process = saved
            self.reset()

    def unregister_plugin(self, name: str) -> None:
        self._in_process = [(p, n) for p, n in self._in_process if n != name]
        self.reset()

    def tasks(self) -> dict[str, tuple[Task, PluginInfo]]:
        self._ensure_loaded()
        return dict(self._tasks)

    def plugins(self) -> list[PluginInfo]:
        self._ensure_loaded()
        return list(self._plugins.values())

    def get(self, name: str) -> Task:
        tasks = self.tasks()
        if name in tasks:
            return tasks[name][0]
        available = ", ".join(sorted(tasks)) or "(none)"
        raise UnknownTaskError(
            f"Unknown task {name!r}.{suggest(name, tasks)} Available tasks: {available}. "
            "Install a plugin package (pip install modernbert-tasks-<name>) to add more, "
            "and run `modernbert-tasks plugins` to see any that failed to load."
        )

    # --- loading --------------------------------------------------------------------------
    def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        disabled = _env_flag("MODERNBERT_TASKS_DISABLE_PLUGINS")
        skip = {n.strip() for n in disabled.split(",") if n.strip()} if disabled else set()

        saw_builtin = False
        for ep in metadata.entry_points(group=hookspecs.ENTRY_POINT_GROUP):
            builtin = ep.value.split(":")[0] == BUILTIN_MODULE
            if builtin:
                if saw_builtin:
                    continue  # the same checkout installed twice (e.g. editable + sys.path)
                saw_builtin = True
            elif disabled in _TRUE or ep.name.lower() in skip:
                self._pm.set_blocked(ep.name)  # never imported; in-process ones too
                continue
            dist = getattr(ep, "dist", None)
            info = PluginInfo(
                name=ep.name,
                module=ep.value,
                distribution=dist.metadata["Name"] if dist else None,
                version=dist.version if dist else None,
                builtin=builtin,
            )
            if info.name in self._plugins:
                info.name = f"{info.name}@{info.distribution}"
            try:
                plugin = ep.load()
            except BaseException as exc:  # noqa: BLE001 - a broken plugin must not break us
                self._record_failure(info, "failed to import", exc)
                continue
            self._add_plugin(plugin, info)

        if not saw_builtin:  # running from a source tree that was never pip-installed
            from . import tasks as builtin_tasks

            self._add_plugin(
                builtin_tasks,
                PluginInfo(name="builtin", module=BUILTIN_MODULE, builtin=True, version=_own_version()),
            )
        for plugin, name in self._in_process:
            self._add_plugin(plugin, PluginInfo(name=name, module=_module_of(plugin)))

    def _add_plugin(self, plugin: object, info: PluginInfo) -> None:
        if self._pm.is_blocked(info.name):  # MODERNBERT_TASKS_DISABLE_PLUGINS named it
            return
        self._plugins[info.name] = info
        try:
            self._pm.register(plugin, name=info.name)
        except Exception as exc:  # e.g. a hookimpl with the wrong signature
            self._record_failure(info, "is not a valid plugin", exc)
            return
        impls = [i for i in self._pm.hook.register_tasks.get_hookimpls() if i.plugin_name == info.name]
        found: list[Task] = []

        def register(task: Task) -> None:
            if not isinstance(task, Task):
                raise TypeError(f"register() expects a modernbert_tasks.Task, got {task!r}")
            found.append(task)

        try:
            for impl in impls:
                impl.function(register=register)
        except BaseException as exc:  # noqa: BLE001
            self._pm.unregister(name=info.name)
            self._record_failure(info, "raised in register_tasks", exc)
            return
        for task in found:
            if task.name in self._tasks:
                other = self._tasks[task.name][1]
                raise DuplicateTaskError(
                    f"Task {task.name!r} is registered twice: by plugin {other.name!r} "
                    f"({other.module}) and by plugin {info.name!r} ({info.module}). Uninstall one "
                    "of them, or skip one with MODERNBERT_TASKS_DISABLE_PLUGINS=<plugin name>."
                )
            self._tasks[task.name] = (task, info)
            info.tasks.append(task.name)

    def _record_failure(self, info: PluginInfo, what: str, exc: BaseException) -> None:
        info.error = f"{type(exc).__name__}: {exc}"
        self._plugins[info.name] = info
        message = (
            f"modernbert-tasks plugin {info.name!r} ({info.module}) {what} and was skipped: {info.error}"
        )
        if _env_flag("MODERNBERT_TASKS_STRICT_PLUGINS") in _TRUE:
            raise PluginLoadError(message + "\n" + "".join(traceback.format_exception(exc))) from exc
        warnings.warn(
            message + " (set MODERNBERT_TASKS_STRICT_PLUGINS=1 to raise instead)", PluginWarning, stacklevel=4
        )


def _module_of(plugin: object) -> str:
    return getattr(plugin, "__name__", None) or type(plugin).__module__


def _own_version() -> str | None:
    return package_versions(("modernbert-tasks",))["modernbert-tasks"]


registry = Registry()


def list_tasks() -> list[dict[str, Any]]:
    """Every registered task, as JSON-ready dicts with the plugin that provides it."""
    rows = []
    for name, (task, info) in sorted(registry.tasks().items()):
        rows.append(
            {
                "name": name,
                "description": task.description,
                "version": task.version,
                "problem_type": task.problem_type,
                "labels": list(task.labels),
                "text_columns": list(task.text_columns),
                "hub_id": task.hub_id,
                "plugin": info.name,
                "plugin_version": info.version,
            }
        )
    return rows


def get_task(name: str) -> Task:
    """The registered `Task` called `name`; `UnknownTaskError` suggests close names."""
    return registry.get(name)


def list_plugins() -> list[dict[str, Any]]:
    """Every discovered plugin: name, module, distribution, version, tasks and load error."""
    return [p.to_dict() for p in registry.plugins()]


def register_plugin(plugin: object, name: str | None = None) -> None:
    """Register a plugin object or module in-process, without an entry point."""
    registry.register_plugin(plugin, name)
