"""The task contract: everything the engine needs to know about one dataset.

A `Task` is a frozen dataclass. Plugins create instances (or subclasses that override
`load_dataset`, `compute_metrics` or `format_text`) and hand them to `register`.
Nothing here imports torch or transformers, so listing tasks stays fast.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from .errors import TaskDefinitionError, suggest

if TYPE_CHECKING:
    import datasets
    import numpy as np

__all__ = ["Task", "PROBLEM_TYPES", "SPLIT_ROLES"]

PROBLEM_TYPES = ("single_label_classification", "multi_label_classification", "regression")
SPLIT_ROLES = ("train", "eval", "test")
_NAME_RE = re.compile(r"^[a-z][a-z0-9_\-]{0,63}$")


def _frozen(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class Task:
    """A text-classification (or regression) task.

    Fields are grouped as: identity, data source, columns and labels, metrics, and defaults.
    """

    # identity
    name: str
    description: str = ""
    version: str = "1.0.0"

    # data source: a hub dataset by default; `data_dir`/`data_files` always work too
    hub_id: str | None = None
    hub_config: str | None = None
    hub_revision: str | None = None
    splits: Mapping[str, str | None] = field(
        default_factory=lambda: {"train": "train", "eval": "validation", "test": "test"}
    )

    # columns and labels
    text_columns: tuple[str, ...] = ("sentence",)
    label_column: str = "label"
    labels: tuple[str, ...] = ()
    problem_type: str = "single_label_classification"

    # metrics: names from `modernbert_tasks.metrics.METRICS`
    metrics: tuple[str, ...] = ("accuracy",)
    main_metric: str = "accuracy"
    greater_is_better: bool = True

    # defaults: TrainingArguments fields the task wants changed from the engine's defaults
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)
    max_length: int = 128
    text_prefix: str = ""

    def __post_init__(self) -> None:
        # normalise containers so a Task is immutable all the way down
        object.__setattr__(self, "text_columns", tuple(self.text_columns))
        object.__setattr__(self, "labels", tuple(self.labels))
        object.__setattr__(self, "metrics", tuple(self.metrics))
        object.__setattr__(self, "splits", _frozen(self.splits))
        object.__setattr__(self, "hyperparameters", _frozen(self.hyperparameters))
        self._validate()

    # --- validation -------------------------------------------------------------------------
    def _fail(self, field_name: str, value: Any, expected: str) -> None:
        raise TaskDefinitionError(
            f"Task {self.name!r}: field {field_name!r} is {value!r}; expected {expected}."
        )

    def _validate(self) -> None:
        from .metrics import METRICS

        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            self._fail("name", self.name, "lower-case letters, digits, '_' or '-', starting "
                       "with a letter, at most 64 characters (e.g. 'sst2', 'my-task')")
        if self.problem_type not in PROBLEM_TYPES:
            self._fail("problem_type", self.problem_type,
                       f"one of {', '.join(PROBLEM_TYPES)}.{suggest(self.problem_type, PROBLEM_TYPES)}")
        if self.problem_type == "regression":
            if len(self.labels) > 1:
                self._fail("labels", self.labels,
                           "at most one name for a regression task (it has a single output)")
        else:
            if not self.labels:
                self._fail("labels", self.labels, "a non-empty tuple of label names")
            if len(set(self.labels)) != len(self.labels):
                self._fail("labels", self.labels, "unique label names")
            if self.problem_type == "single_label_classification" and len(self.labels) < 2:
                self._fail("labels", self.labels, "at least two labels for classification")
        if not 1 <= len(self.text_columns) <= 2 or not all(
            isinstance(c, str) and c for c in self.text_columns
        ):
            self._fail("text_columns", self.text_columns,
                       "one column name, or two for sentence pairs")
        if not self.label_column or self.label_column in self.text_columns:
            self._fail("label_column", self.label_column,
                       "a column name different from the text columns")
        unknown = set(self.splits) - set(SPLIT_ROLES)
        if unknown or not self.splits.get("train"):
            self._fail("splits", dict(self.splits),
                       f"a mapping with keys among {SPLIT_ROLES} and a 'train' split")
        for metric in self.metrics:
            if metric not in METRICS:
                self._fail("metrics", self.metrics,
                           f"names among {sorted(METRICS)}.{suggest(metric, METRICS)}")
        if self.main_metric not in self.metrics:
            self._fail("main_metric", self.main_metric, f"one of the task's metrics {self.metrics}")
        if not isinstance(self.max_length, int) or self.max_length < 8:
            self._fail("max_length", self.max_length, "an integer >= 8")

    # --- derived properties -----------------------------------------------------------------
    @property
    def num_labels(self) -> int:
        return 1 if self.problem_type == "regression" else len(self.labels)

    @property
    def is_pair(self) -> bool:
        return len(self.text_columns) == 2

    @property
    def id2label(self) -> dict[int, str]:
        names = self.labels or ("score",)
        return dict(enumerate(names))

    @property
    def label2id(self) -> dict[str, int]:
        return {v: k for k, v in self.id2label.items()}

    # --- overridable behaviour --------------------------------------------------------------
    def load_dataset(
        self,
        data_dir: str | None = None,
        data_files: Mapping[str, Any] | None = None,
        cache_dir: str | None = None,
        revision: str | None = None,
    ) -> datasets.DatasetDict:
        """Load the splits keyed by role ('train', 'eval', 'test'), labels encoded as ids.

        Local files win over the hub: pass `data_dir` (files named after the split, e.g.
        `train.tsv`, `validation.csv`) or `data_files` ({'train': path, ...}).
        """
        from .data import load_task_dataset

        return load_task_dataset(self, data_dir=data_dir, data_files=data_files,
                                 cache_dir=cache_dir, revision=revision)

    def format_text(self, text: str) -> str:
        """Applied to every text before tokenization (the prefix, by default)."""
        return self.text_prefix + text if self.text_prefix else text

    def compute_metrics(self, outputs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
        """Model outputs (logits) and gold label ids -> {metric name: value}."""
        from .metrics import compute_metrics

        return compute_metrics(self.metrics, outputs, labels, self.problem_type)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (used by `list_tasks` and the manifest)."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        for key in ("splits", "hyperparameters"):
            d[key] = dict(d[key])
        for key in ("text_columns", "labels", "metrics"):
            d[key] = list(d[key])
        return d


RegisterFn = Callable[[Task], None]
