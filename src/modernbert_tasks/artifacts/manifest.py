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

import dataclasses
import json
import math
import os
import tempfile
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Any

from ..errors import ModelLoadError, TaskDefinitionError
from ..task import Task
from ..type_checks import matches_type, type_name
from ..versions import package_versions

__all__ = [
    "json_ready",
    "shareable_manifest",
    "MANIFEST_NAME",
    "MANIFEST_VERSION",
    "ManifestError",
    "Manifest",
    "TaskRecord",
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
# The manifest's shape as dataclasses, checked field by field with the same type checker the
# options use (`type_checks.matches_type`). The Task's own validation checks the definition's values
# when the task is rebuilt; here only the types, against Task's own field types.
@dataclass(frozen=True)
class TaskRecord:
    name: str
    version: str
    plugin: str | None
    plugin_version: str | None
    definition: dict[str, Any]  # Task.to_dict(), checked against Task's fields


@dataclass(frozen=True)
class Manifest:
    manifest_version: int
    created_at: str  # ISO-8601
    task: TaskRecord
    max_length: int  # what training tokenized to (a speed choice)
    text_prefix: str
    metrics: dict[str, float | None]  # JSON has no NaN: a non-finite value is null
    base_model: str
    training: dict[str, Any]
    versions: dict[str, str | None]
    calibration: dict[str, Any] | None = None  # temperature, threshold (training/calibrating)
    # how prediction reads texts: {"max_length": the model's position limit}; absent in
    # manifests from before 0.2 (prediction then reads up to the model's limit too)
    prediction: dict[str, Any] | None = None
    # lora=True: rank, alpha, dropout, target modules, trainable parameters (training/lora.py);
    # the weights are merged, so the folder loads as a plain model
    lora: dict[str, Any] | None = None


# the definition keys a manifest must have; Task's other fields are optional there
_DEFINITION_REQUIRED = (
    "name",
    "text_columns",
    "label_column",
    "labels",
    "problem_type",
    "metrics",
    "main_metric",
    "max_length",
    "text_prefix",
)


def _describe(hint: Any) -> str:
    """'an integer', 'a list of strings', 'a string or null', ...: for the error message."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if hint is type(None):
        return "null"
    if origin in (list, tuple):
        return f"a list of {_describe(args[0]).split(' ', 1)[-1]}s" if args else "a list"
    if origin is dict or hint is dict:
        return (
            f"an object of {_describe(args[1]).split(' ', 1)[-1]}s"
            if args and args[1] is not Any
            else "an object"
        )
    if dataclasses.is_dataclass(hint):
        return "an object"
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
    return names.get(hint, type_name(hint))


def _problems(
    data: Mapping[str, Any], shape: Mapping[str, tuple[Any, bool]], prefix: str = ""
) -> list[tuple[str, str]]:
    """(dotted field, what is wrong) for `data` against {field: (type hint, required)}."""
    found = []
    for name, (hint, required) in shape.items():
        dotted = f"{prefix}{name}"
        if name not in data:
            if required:
                found.append((dotted, f"missing (expected {_describe(hint)})"))
        elif isinstance(hint, type) and dataclasses.is_dataclass(hint):  # a nested entry's class
            if not isinstance(data[name], Mapping):
                found.append((dotted, f"is {_short(data[name])}; expected an object"))
            else:
                found += _problems(data[name], _shape_of(hint), f"{dotted}.")
        elif not matches_type(data[name], hint):
            found.append((dotted, f"is {_short(data[name])}; expected {_describe(hint)}"))
    if prefix == "task." and isinstance(data.get("definition"), Mapping):
        task_hints = typing.get_type_hints(Task)
        definition = {
            f.name: (task_hints[f.name], f.name in _DEFINITION_REQUIRED) for f in dataclasses.fields(Task)
        }
        found += _problems(data["definition"], definition, f"{prefix}definition.")
    return found


def _label_threshold_problems(manifest: Mapping[str, Any]) -> list[tuple[str, str]]:
    """calibration.label_thresholds ("tune-per-label"): one probability per label, in order."""
    values = (manifest.get("calibration") or {}).get("label_thresholds")
    if values is None:
        return []
    labels = manifest["task"]["definition"].get("labels", [])
    if (
        isinstance(values, list)
        and len(values) == len(labels)
        and all(isinstance(v, int | float) and not isinstance(v, bool) and 0 < v < 1 for v in values)
    ):
        return []
    return [
        (
            "calibration.label_thresholds",
            f"is {_short(values)}; expected {len(labels)} numbers between 0 and 1, one per label "
            f"of task.definition.labels",
        )
    ]


def _shape_of(cls: type) -> dict[str, tuple[Any, bool]]:
    hints = typing.get_type_hints(cls)
    return {f.name: (hints[f.name], f.default is dataclasses.MISSING) for f in dataclasses.fields(cls)}


def validate_manifest(manifest: Any, source: str = "manifest") -> dict[str, Any]:
    """Check the version and the schema; raise one `ManifestError` naming every bad field."""
    if not isinstance(manifest, dict):
        raise ManifestError(
            f"{source} must hold a JSON object, got {type(manifest).__name__}. "
            "Re-save the model with modernbert-tasks, or delete the file to load "
            "the folder as a plain Hugging Face model."
        )
    version: Any = manifest.get("manifest_version")  # JSON: checked below
    is_int = isinstance(version, int) and not isinstance(version, bool)
    if is_int and version > MANIFEST_VERSION:
        raise ManifestError(
            f"{source} has manifest_version {version}, written by a newer modernbert-tasks; this "
            f"version reads manifest_version {MANIFEST_VERSION}. Upgrade: "
            "pip install -U modernbert-tasks.",
            ["manifest_version"],
        )
    if is_int and version < 1:
        raise ManifestError(
            f"{source} has manifest_version {version}; expected {MANIFEST_VERSION}.", ["manifest_version"]
        )
    problems = _problems(manifest, _shape_of(Manifest)) or _label_threshold_problems(manifest)
    if problems:
        lines = "; ".join(f"{name!r} {what}" for name, what in problems)
        raise ManifestError(
            f"{source} is invalid: {lines}. Fix these fields (the schema is the Manifest "
            "dataclass in modernbert_tasks.artifacts.manifest), or re-save the model with "
            "modernbert-tasks.",
            [name for name, _ in problems],
        )
    return manifest


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


# --- building and writing -----------------------------------------------------------------
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


def json_ready(value: Any) -> Any:
    """`value` as plain JSON: enums, paths and numpy scalars converted, NaN/inf as null (JSON
    has neither; Python's json would write them and other readers reject the file)."""
    return json.loads(json.dumps(value, default=_json_default, allow_nan=True), parse_constant=lambda _: None)


def build_manifest(
    task: Task,
    *,
    plugin: str | None,
    plugin_version: str | None,
    max_length: int,
    metrics: Mapping[str, float],
    base_model: str,
    training: Mapping[str, Any],
    prediction: Mapping[str, Any] | None = None,
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
            "definition": json_ready(task.to_dict()),
        },
        "max_length": int(max_length),
        "text_prefix": task.text_prefix,
        "metrics": {str(k): _metric_value(v) for k, v in metrics.items()},
        "base_model": str(base_model),
        "training": json_ready(dict(training)),
        "versions": package_versions(_VERSIONED_PACKAGES),
    }
    if prediction is not None:
        manifest["prediction"] = json_ready(dict(prediction))
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


def _local_path(value: str) -> bool:
    return (
        os.path.isabs(value)
        or value.startswith(("./", "../", "~"))
        or (os.sep in value and os.path.exists(value))
    )


def _names_only(value: Any) -> Any:
    if isinstance(value, str):
        return Path(value).name if _local_path(value) else value
    if isinstance(value, Mapping):
        return {k: _names_only(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_names_only(v) for v in value]
    return value


def shareable_manifest(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest as it may leave this machine (push, the model card): every local path it
    records (data files, output and cache folders) reduced to its last component."""
    out = dict(manifest)
    out["training"] = _names_only(dict(manifest.get("training") or {}))
    out["base_model"] = _names_only(manifest["base_model"])
    return out


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
        raise ManifestError(
            f"{source} is not UTF-8 text ({exc}). Re-save the model with modernbert-tasks."
        ) from None
    except json.JSONDecodeError as exc:
        raise ManifestError(
            f"{source} is not valid JSON: {exc.msg} (line {exc.lineno}, column "
            f"{exc.colno}). Fix the file, or re-save the model with "
            "modernbert-tasks."
        ) from None
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
        raise ManifestError(
            f"The manifest's task definition is invalid: {exc} Fix "
            "'task.definition' in the manifest, or re-save the model.",
            ["task.definition"],
        ) from None
