"""What a saved folder says beyond its weights: its task (checked against config.json's
labels), the text prefix, and the two lengths. Shared by the torch and ONNX backends."""

from __future__ import annotations

import logging
from typing import Any

from ..artifacts.manifest import ManifestError, task_from_manifest
from ..errors import ConfigError, hint
from ..long_text import AGGREGATES, LONG_TEXT_MODES, LongText
from ..task import Task
from .chunks import reading

__all__ = ["model_settings", "task_for_manifest", "config_labels", "check_labels_match", "DEFAULT_MAX_LENGTH"]

logger = logging.getLogger(__name__)

DEFAULT_MAX_LENGTH = 512  # a model whose config names no position limit


def model_settings(
    manifest: dict[str, Any] | None,
    config: Any,
    tokenizer: Any,
    source: str,
    max_length: int | None = None,
    long_text: str | None = None,
    stride: int | None = None,
    aggregate: str | None = None,
) -> dict[str, Any]:
    """What predicting with a saved folder needs beyond its weights, for every backend: the
    task (checked against config.json's labels), the text prefix, the two lengths, and how
    long texts are read.

    max_length (what prediction reads) is `max_length` if given, else the manifest's
    prediction length, else the model's position limit; training_max_length is the shorter
    length training tokenized to for speed (None without a manifest). long_text (a
    `LongText`): the arguments given over the manifest's "prediction" entry, checked against
    max_length (a stride too large is refused here, before any text is read)."""
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
    prediction = (manifest or {}).get("prediction") or {}
    length = int(max_length or prediction.get("max_length") or limit)
    problem_type = task.problem_type if task is not None else None
    return {
        "task": task,
        "text_prefix": manifest["text_prefix"] if manifest else "",
        "max_length": length,
        "training_max_length": manifest["max_length"] if manifest else None,
        "long_text": reading(
            tokenizer,
            length,
            problem_type or config.problem_type or "single_label_classification",
            task.is_pair if task is not None else None,
            long_text,
            stride,
            aggregate,
            recorded_long_text(prediction, source, length),
            given_length=max_length is not None,
        ),
    }


def recorded_long_text(prediction: dict[str, Any], source: str, max_length: int) -> LongText:
    """The manifest's "prediction" long_text, stride and aggregate (truncate when absent: a
    model saved before they were recorded), each checked."""
    mode = prediction.get("long_text", "truncate")
    stride, how = prediction.get("stride"), prediction.get("aggregate", "mean")
    bad = [
        (f"prediction.{key}", value, expected)
        for key, value, ok, expected in (
            ("long_text", mode, mode in LONG_TEXT_MODES, f"one of {list(LONG_TEXT_MODES)}"),
            ("aggregate", how, how in AGGREGATES, f"one of {list(AGGREGATES)}"),
            (
                "stride",
                stride,
                stride is None or (type(stride) is int and 0 <= stride < max_length),
                f"null or an integer from 0 to {max_length - 1}",
            ),
        )
        if not ok
    ]
    if bad:
        raise ManifestError(
            f"The manifest in {source!r} says "
            + "; ".join(f"{key!r} is {value!r}, expected {expected}" for key, value, expected in bad)
            + ". Fix these fields, or re-save the model.",
            [key for key, _, _ in bad],
        )
    return LongText(mode, stride, how)


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
