"""Which task a `fine_tune` call trains on: a registered name, a `Task`, or data alone.

    fine_tune("sst2")                                   # a registered task
    fine_tune(my_task)                                  # a Task object
    fine_tune(train_file="train.csv", label_column="team")   # inferred: Task.from_data
    fine_tune("tickets.csv")                            # a data file or folder as the task

With no task and no data option, the default task (sst2) is used. Column options
(`text_columns`, `label_column`) also apply to a registered task, so its own data layout can
differ from the files at hand.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..data import EXTENSIONS
from ..errors import ConfigError
from ..task import Task

__all__ = ["DEFAULT_TASK", "DATA_OPTIONS", "resolve_task", "data_files_of", "is_data_path"]

DEFAULT_TASK = "sst2"
# options that describe data for a task inferred from it
_INFERENCE_ONLY = (
    "labels",
    "problem_type",
    "label_separator",
    "label_columns",
    "task_name",
    "dataset",
    "dataset_config",
)
_SOURCES = ("train_file", "data_files", "data_dir", "dataset")
DATA_OPTIONS = (*_SOURCES, "validation_file", "test_file", "text_columns", "label_column", *_INFERENCE_ONLY)

Plugin = tuple[str | None, str | None]

logger = logging.getLogger(__name__)


def resolve_task(
    task: str | Task | os.PathLike | None, args: Mapping[str, Any]
) -> tuple[Task, Plugin, dict[str, Any]]:
    """(the Task, (plugin name, version), args with a path-as-task folded into them)."""
    args = dict(args)
    if (
        isinstance(task, str | os.PathLike)
        and not isinstance(task, Task)
        and is_data_path(task)
        and not _registered_name_first(task)
    ):
        key = "data_dir" if Path(task).is_dir() else "train_file"
        if args.get(key) is not None:
            raise ConfigError(
                f"task={os.fspath(task)!r} is a data path and {key}= is also given; pass the data once."
            )
        args[key], task = os.fspath(task), None
    if task is None and not any(args.get(k) is not None for k in _SOURCES):
        task = DEFAULT_TASK
    if task is None:
        # the inferred Task now carries these; passing it on with them would contradict it
        inferred = _infer(args)
        args = {k: v for k, v in args.items() if k not in _INFERENCE_ONLY}
        # nobody chose a max_length for this data: read it from the data (training/lengths.py)
        args.setdefault("max_length", "auto")
        return inferred, (None, None), args
    found, plugin = _registered(task)
    extra = [k for k in _INFERENCE_ONLY if args.get(k) is not None]
    if extra:
        raise ConfigError(
            f"{', '.join(extra)} describe data without a registered task, but task "
            f"{found.name!r} defines its own. Drop the task name to infer a task from the data, "
            "or drop these options."
        )
    return _with_columns(found, args), plugin, args


def data_files_of(args: Mapping[str, Any]) -> dict[str, Any] | None:
    """data_files merged with train_file/validation_file/test_file (which win)."""
    files = args.get("data_files")
    files = {"train": files} if isinstance(files, str | os.PathLike) else dict(files or {})
    for key, role in (("train_file", "train"), ("validation_file", "validation"), ("test_file", "test")):
        if args.get(key) is not None:
            clash = [k for k in files if k in (role, "eval" if role == "validation" else role)]
            if clash:
                raise ConfigError(
                    f"{key}= and data_files[{clash[0]!r}] both give the {role} data; pass it once."
                )
            files[role] = args[key]
    return files or None


def _registered_name_first(task: str | os.PathLike) -> bool:
    """A bare name that is both a registered task and a file or folder here (e.g. a folder
    sst2/ holding a copy of SST-2) means the task; './sst2' means the path. Said in one line,
    never switched silently."""
    if not isinstance(task, str) or os.sep in task or "/" in task or task.startswith((".", "~")):
        return False
    from ..plugins import registry

    if task not in registry.tasks():
        return False
    logger.warning(
        "%r is a registered task and also a %s in this folder: training the "
        "registered task. For the %s, pass %r instead.",
        task,
        "folder" if Path(task).is_dir() else "file",
        "folder" if Path(task).is_dir() else "file",
        f"./{task}",
    )
    return True


def is_data_path(task: str | os.PathLike) -> bool:
    path = Path(task).expanduser()
    return path.is_dir() or (path.is_file() and path.suffix.lower() in EXTENSIONS)


def _registered(task: str | Task | os.PathLike) -> tuple[Task, Plugin]:
    from ..plugins import registry

    if isinstance(task, Task):
        found = registry.tasks().get(task.name)
        info = found[1] if found and found[0] == task else None
        return task, (info.name, info.version) if info else (None, None)
    if not isinstance(task, str):
        raise ConfigError(
            f"task={task!r} is neither a task name nor a Task; pass e.g. 'sst2' "
            "(see modernbert_tasks.list_tasks()), or data: train_file=..."
        )
    found_task = registry.get(task)  # UnknownTaskError with suggestions
    info = registry.tasks()[task][1]
    return found_task, (info.name, info.version)


def _columns(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return tuple(c.strip() for c in value.split(",") if c.strip())
    return tuple(value)


def _with_columns(task: Task, args: Mapping[str, Any]) -> Task:
    changes: dict[str, Any] = {}
    if (columns := _columns(args.get("text_columns"))) and columns != task.text_columns:
        changes["text_columns"] = columns
    if args.get("label_column") not in (None, task.label_column):
        changes["label_column"] = args["label_column"]
    return dataclasses.replace(task, **changes) if changes else task


def _infer(args: Mapping[str, Any]) -> Task:
    files = data_files_of(args)
    sources = [
        k
        for k, v in (
            ("data files", files),
            ("data_dir", args.get("data_dir")),
            ("dataset", args.get("dataset")),
        )
        if v
    ]
    if len(sources) > 1:
        raise ConfigError(
            f"Give the data one way: {' and '.join(sources)} were both given "
            "(CLI: --train-file/--validation-file, --data-dir or --dataset)."
        )
    cache_dir = args.get("cache_dir")
    return Task.from_data(
        files,
        data_dir=args.get("data_dir"),
        dataset=args.get("dataset"),
        dataset_config=args.get("dataset_config"),
        text_columns=_columns(args.get("text_columns")),
        label_column=args.get("label_column"),
        labels=args.get("labels"),
        problem_type=args.get("problem_type"),
        label_separator=args.get("label_separator"),
        label_columns=args.get("label_columns"),
        name=args.get("task_name"),
        revision=args.get("data_revision"),
        cache_dir=cache_dir and os.fspath(cache_dir),
    )
