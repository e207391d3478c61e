"""What a saved folder says beyond its weights: its task (checked against config.json's
labels), the text prefix, and the two lengths. Shared by the torch and ONNX backends."""

from __future__ import annotations

import logging
from typing import Any

from ..artifacts.manifest import ManifestError, task_from_manifest
from ..errors import ConfigError, hint
from ..task import Task

__all__ = ["model_settings", "task_for_manifest", "config_labels", "check_labels_match", "DEFAULT_MAX_LENGTH"]

logger = logging.getLogger(__name__)

DEFAULT_MAX_LENGTH = 512  # a model whose config names no position limit


def model_settings(
    manifest: dict[str, Any] | None, config: Any, tokenizer: Any, source: str, max_length: int | None = None
) -> dict[str, Any]:
    """What predicting with a saved folder needs beyond its weights, for every backend: the
    task (checked against config.json's labels), the text prefix, and the two lengths.

    max_length (what prediction reads) is `max_length` if given, else the manifest's
    prediction length, else the model's position limit; training_max_length is the shorter
    length training tokenized to for speed (None without a manifest)."""
    from ..model_sources import position_limit

    limit = position_limit(config, tokenizer) or DEFAULT_MAX_LENGTH
    if max_length is not None and (
        isinstance(max_length, bool) or not isinstance(max_length, int) or not 8 <= max_length <= limit
    ):
        raise ConfigError(
            f"max_length={max_length!r}; expected an integer from 8 to {limit} "
            f"(the most tokens this model reads). "
            + hint(
                "Leave it out to read up to the model's limit.",
                "Leave out --max-length to read up to the model's limit.",
            )
        )
    task = task_for_manifest(manifest) if manifest else None
    if task is not None:
        check_labels_match(task, config, source)
    recorded = ((manifest or {}).get("prediction") or {}).get("max_length")
    return {
        "task": task,
        "text_prefix": manifest["text_prefix"] if manifest else "",
        "max_length": int(max_length or recorded or limit),
        "training_max_length": manifest["max_length"] if manifest else None,
    }


def task_for_manifest(manifest: dict[str, Any]) -> Task:
    """The manifest's task; the installed plugin's own object when it is the same definition,
    so that its overridden `load_dataset`/`format_text`/`compute_metrics` apply too."""
    task = task_from_manifest(manifest)
    try:
        from ..plugins import registry

        registered = registry.tasks().get(task.name)
    except Exception:  # a broken plugin set must not stop a self-contained model from loading
        return task
    if registered is not None and registered[0].to_dict() == task.to_dict():
        return registered[0]
    if manifest.get("training", {}).get("format_text") == "custom":
        logger.warning(
            "Task %r was trained with its plugin's own format_text, and that plugin (%s) is not "
            "installed here: predictions apply only the text_prefix, so they may differ from "
            "training. Install the plugin to reproduce training's text formatting.",
            task.name,
            manifest.get("task", {}).get("plugin"),
        )
    return task


def config_labels(config: Any) -> list[str]:
    return [str(config.id2label[i]) for i in range(config.num_labels)]


def check_labels_match(task: Task, config: Any, source: str) -> None:
    if task.problem_type == "regression":
        if config.num_labels != 1:
            raise ManifestError(
                f"The manifest in {source!r} describes regression task {task.name!r} (1 output) "
                f"but config.json has num_labels={config.num_labels}. The manifest does not "
                "belong to these weights; re-save the model.",
                ["task.definition.problem_type"],
            )
        return
    expected, found = list(task.labels), config_labels(config)
    if expected != found:
        raise ManifestError(
            f"The manifest in {source!r} lists labels {expected} for task {task.name!r}, but "
            f"config.json's id2label gives {found}. The manifest and the weights disagree: "
            "re-save the model, or fix one of the two files so the label order matches.",
            ["task.definition.labels"],
        )
