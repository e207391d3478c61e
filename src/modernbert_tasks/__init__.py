"""modernbert-tasks: fine-tune a ModernBERT encoder on a text-classification task in one call.

    >>> from modernbert_tasks import fine_tune, load_finetuned
    >>> result = fine_tune("sst2")                       # doctest: +SKIP
    >>> load_finetuned(result.model_path).predict(["a gem of a film"])  # doctest: +SKIP

Importing this package is cheap: torch and transformers load only when training or
predicting starts.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .errors import (
    ConfigError,
    DataError,
    DuplicateTaskError,
    ModelLoadError,
    ModernBertTasksError,
    OutputWriteError,
    PluginLoadError,
    RunLockedError,
    TaskDefinitionError,
    TrainingDiverged,
    TrainingInterrupted,
    UnknownTaskError,
)
from .hookspecs import hookimpl
from .plugins import get_task, list_plugins, list_tasks, register_plugin
from .task import Task

if TYPE_CHECKING:
    from .auditing import AuditResult, audit
    from .exporters.onnx import export_onnx
    from .inference.loading import load_finetuned
    from .inference.predictor import FineTunedModel
    from .training.engine import FineTuneResult, fine_tune
    from .training.search import SearchResult, search

__version__ = "0.1.0"

__all__ = [
    # tasks and plugins
    "Task",
    "hookimpl",
    "list_tasks",
    "get_task",
    "list_plugins",
    "register_plugin",
    # training and inference (imported lazily: they pull in torch)
    "fine_tune",
    "FineTuneResult",
    "search",
    "SearchResult",
    "load_finetuned",
    "FineTunedModel",
    "export_onnx",
    "audit",
    "AuditResult",
    # errors
    "ModernBertTasksError",
    "ConfigError",
    "DataError",
    "DuplicateTaskError",
    "ModelLoadError",
    "OutputWriteError",
    "PluginLoadError",
    "RunLockedError",
    "TaskDefinitionError",
    "TrainingDiverged",
    "TrainingInterrupted",
    "UnknownTaskError",
]

_LAZY = {
    "fine_tune": "training.engine",
    "FineTuneResult": "training.engine",
    "search": "training.search",
    "SearchResult": "training.search",
    "load_finetuned": "inference.loading",
    "export_onnx": "exporters.onnx",
    "FineTunedModel": "inference.predictor",
    "audit": "auditing",
    "AuditResult": "auditing",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'modernbert_tasks' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
