"""The manifest: a JSON file saved next to a fine-tuned model that says how to use it.

It records the task (in full, so the model loads and predicts with the task's plugin
uninstalled), the max length and text prefix used in training, the final metrics, the base
model, the training hyperparameters and the library versions. JSON only: nothing in it can
execute code when read.

    >>> manifest = build_manifest(
    ...     task, plugin="builtin", plugin_version="0.1.0", max_length=128,
    ...     metrics={"accuracy": 0.93}, base_model="answerdotai/ModernBERT-base",
    ...     training={"learning_rate": 3e-5})                       # doctest: +SKIP
    >>> write_manifest("out/model", manifest)                   # doctest: +SKIP
    >>> task_from_manifest(read_manifest("out/model"))          # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import fields
from datetime import datetime, timezone
from enum import Enum
from importlib import metadata
from pathlib import Path
from typing import Any

from ..errors import ModelLoadError, TaskDefinitionError
from ..task import Task

__all__ = [
    "MANIFEST_NAME",
    "MANIFEST_VERSION",
    "ManifestError",
    "build_manifest",
    "write_manifest",
    "read_manifest",
    "validate_manifest",
    "task_from_manifest",
]

MANIFEST_NAME = "modernbert_tasks.json"
MANIFEST_VERSION = 1
_VERSIONED_PACKAGES = ("modernbert-tasks", "transformers", "torch")


class ManifestError(ModelLoadError):
    """A manifest is unreadable, has an unsupported version, or has bad fields.

    `fields` lists the dotted names of the offending fields (e.g. ``["task.definition.labels"]``).
    """

    def __init__(self, message: str, fields: list[str] | None = None) -> None:
        # OSError would read a second positional argument as strerror; keep one argument
        super().__init__(message)
        self.fields = list(fields or [])

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


# --- schema -------------------------------------------------------------------------------
# (dotted field, required, expected type description, check). Small on purpose: required keys
# and their types. The Task's own validation checks the values when the task is rebuilt.
def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number_or_null(v: Any) -> bool:
    return v is None or (isinstance(v, int | float) and not isinstance(v, bool))


def _list_of_str(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _dict_of(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, dict) and all(
        isinstance(k, str) and check(x) for k, x in v.items())


def _type(*types: type) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, types)


_STR_OR_NULL = _type(str, type(None))
SCHEMA: tuple[tuple[str, bool, str, Callable[[Any], bool]], ...] = (
    ("manifest_version", True, "an integer", _is_int),
    ("created_at", True, "an ISO-8601 timestamp string", _type(str)),
    ("task", True, "an object", _type(dict)),
    ("task.name", True, "a string", _type(str)),
    ("task.version", True, "a string", _type(str)),
    ("task.plugin", True, "a string or null", _STR_OR_NULL),
    ("task.plugin_version", True, "a string or null", _STR_OR_NULL),
    ("task.definition", True, "an object (Task.to_dict())", _type(dict)),
    ("task.definition.name", True, "a string", _type(str)),
    ("task.definition.text_columns", True, "a list of strings", _list_of_str),
    ("task.definition.label_column", True, "a string", _type(str)),
    ("task.definition.labels", True, "a list of strings", _list_of_str),
    ("task.definition.problem_type", True, "a string", _type(str)),
    ("task.definition.metrics", True, "a list of strings", _list_of_str),
    ("task.definition.main_metric", True, "a string", _type(str)),
    ("task.definition.max_length", True, "an integer", _is_int),
    ("task.definition.text_prefix", True, "a string", _type(str)),
    ("task.definition.splits", False, "an object of strings or nulls", _dict_of(_STR_OR_NULL)),
    ("task.definition.hyperparameters", False, "an object", _type(dict)),
    ("task.definition.hub_id", False, "a string or null", _STR_OR_NULL),
    ("task.definition.greater_is_better", False, "true or false", _type(bool)),
    ("max_length", True, "an integer", _is_int),
    ("text_prefix", True, "a string", _type(str)),
    ("metrics", True, "an object of numbers (or null)", _dict_of(_is_number_or_null)),
    ("base_model", True, "a string", _type(str)),
    ("training", True, "an object", _type(dict)),
    ("versions", True, "an object of strings (or null)", _dict_of(_STR_OR_NULL)),
)
_MISSING = object()


def _lookup(manifest: Mapping[str, Any], dotted: str) -> Any:
    value: Any = manifest
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return value


def validate_manifest(manifest: Any, source: str = "manifest") -> dict[str, Any]:
    """Check the version and the schema; raise one `ManifestError` naming every bad field."""
    if not isinstance(manifest, dict):
        raise ManifestError(f"{source} must hold a JSON object, got {type(manifest).__name__}. "
                            "Re-save the model with modernbert-tasks, or delete the file to load "
                            "the folder as a plain Hugging Face model.")
    version = manifest.get("manifest_version", _MISSING)
    if _is_int(version) and version > MANIFEST_VERSION:
        raise ManifestError(
            f"{source} has manifest_version {version}, written by a newer modernbert-tasks; this "
            f"version reads manifest_version {MANIFEST_VERSION}. Upgrade: "
            "pip install -U modernbert-tasks.", ["manifest_version"])
    if _is_int(version) and version < 1:
        raise ManifestError(f"{source} has manifest_version {version}; expected "
                            f"{MANIFEST_VERSION}.", ["manifest_version"])
    problems: list[tuple[str, str]] = []
    for dotted, required, expected, check in SCHEMA:
        parent = dotted.rpartition(".")[0]
        if parent and _lookup(manifest, parent) is _MISSING:
            continue  # the parent is already reported as missing
        value = _lookup(manifest, dotted)
        if value is _MISSING:
            if required:
                problems.append((dotted, f"missing (expected {expected})"))
        elif not check(value):
            problems.append((dotted, f"is {_short(value)}; expected {expected}"))
    if problems:
        lines = "; ".join(f"{name!r} {what}" for name, what in problems)
        raise ManifestError(
            f"{source} is invalid: {lines}. Fix these fields (the schema is "
            "modernbert_tasks.manifest.SCHEMA), or re-save the model with modernbert-tasks.",
            [name for name, _ in problems])
    return manifest


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


# --- building and writing -----------------------------------------------------------------
def _package_version(name: str) -> str | None:
    # importlib.metadata: reading a version must not import torch
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _json_default(value: Any) -> Any:
    """Make TrainingArguments-style values JSON: enums, paths, sets, numpy scalars."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, Mapping):
        return dict(value)
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        return value.item()
    return str(value)  # e.g. a torch.dtype: recorded for people, never executed


def _metric_value(value: Any) -> Any:
    """numpy/torch scalars -> Python numbers; JSON has no NaN/inf, so those become null."""
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value  # anything else that is not a number is reported by the schema check


def _to_json(value: Any) -> Any:
    return json.loads(json.dumps(value, default=_json_default, allow_nan=True),
                      parse_constant=lambda _: None)


def build_manifest(
    task: Task,
    *,
    plugin: str | None,
    plugin_version: str | None,
    max_length: int,
    metrics: Mapping[str, float],
    base_model: str,
    training: Mapping[str, Any],
) -> dict[str, Any]:
    """Everything needed to reload and use a fine-tuned model, as a JSON-ready dict."""
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "task": {
            "name": task.name,
            "version": task.version,
            "plugin": plugin,
            "plugin_version": plugin_version,
            "definition": _to_json(task.to_dict()),
        },
        "max_length": int(max_length),
        "text_prefix": task.text_prefix,
        "metrics": {str(k): _metric_value(v) for k, v in metrics.items()},
        "base_model": str(base_model),
        "training": _to_json(dict(training)),
        "versions": {name: _package_version(name) for name in _VERSIONED_PACKAGES},
    }
    return validate_manifest(manifest, source="the new manifest")


def write_manifest(folder: str | Path, manifest: Mapping[str, Any]) -> Path:
    """Validate and write ``folder/modernbert_tasks.json`` atomically; return its path."""
    folder = Path(folder)
    validate_manifest(dict(manifest), source="the manifest to write")
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / MANIFEST_NAME
    text = json.dumps(manifest, indent=2, sort_keys=False, allow_nan=False) + "\n"
    # a temporary file in the same folder, then os.replace: readers never see half a file
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{MANIFEST_NAME}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


# --- reading ------------------------------------------------------------------------------
def read_manifest(folder: str | Path) -> dict[str, Any] | None:
    """The validated manifest in `folder`, or None when the folder has none."""
    path = Path(folder) / MANIFEST_NAME
    if not path.is_file():
        return None
    source = f"Manifest {str(path)!r}"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{source} is not UTF-8 text ({exc}). Re-save the model with "
                            "modernbert-tasks.") from None
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{source} is not valid JSON: {exc.msg} at line {exc.lineno} column "
                            f"{exc.colno}. Fix the file, or re-save the model with "
                            "modernbert-tasks.") from None
    return validate_manifest(manifest, source=source)


def task_from_manifest(manifest: Mapping[str, Any]) -> Task:
    """Rebuild the `Task` from the manifest alone: no plugin needs to be installed.

    The result is a plain `Task`: a plugin's overridden methods (custom metrics or text
    formatting) are not recorded, only its fields.
    """
    validate_manifest(dict(manifest))
    definition = dict(manifest["task"]["definition"])
    # fields added by a newer modernbert-tasks within the same manifest_version are skipped
    known = {f.name for f in fields(Task)}
    kwargs = {k: v for k, v in definition.items() if k in known}
    for key in ("text_columns", "labels", "metrics"):
        kwargs[key] = tuple(kwargs[key])
    try:
        return Task(**kwargs)
    except TaskDefinitionError as exc:
        raise ManifestError(f"The manifest's task definition is invalid: {exc} Fix "
                            "'task.definition' in the manifest, or re-save the model.",
                            ["task.definition"]) from None
