"""The task contract: everything the engine needs to know about one dataset.

A `Task` is a frozen dataclass. Plugins create instances (or subclasses that override
`load_dataset`, `compute_metrics` or `format_text`) and hand them to `register`.
Nothing here imports torch or transformers, so listing tasks stays fast.

Just over 400 lines on purpose: `Task` is a plugin author's whole interface (fields, checks,
`from_data`), kept in one class in one file so it reads as one.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from .errors import TaskDefinitionError, hint, suggest

if TYPE_CHECKING:
    import datasets
    import numpy as np

__all__ = ["Task", "PROBLEM_TYPES", "SPLIT_ROLES"]

logger = logging.getLogger(__name__)

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
    label_separator: str | None = None  # multi-label cells given as text: "a,b" (None: ",")
    label_columns: tuple[str, ...] = ()  # one-hot multi-label: column k holds label k as 0/1

    # metrics: names from `modernbert_tasks.metrics.METRICS`, or "evaluate:<hub id or path>"
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
        object.__setattr__(self, "label_columns", tuple(self.label_columns))
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
        from .metrics import EVALUATE_PREFIX, METRICS

        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            self._fail(
                "name",
                self.name,
                "lower-case letters, digits, '_' or '-', starting "
                "with a letter, at most 64 characters (e.g. 'sst2', 'my-task')",
            )
        if self.problem_type not in PROBLEM_TYPES:
            self._fail(
                "problem_type",
                self.problem_type,
                f"one of {', '.join(PROBLEM_TYPES)}.{suggest(self.problem_type, PROBLEM_TYPES)}",
            )
        if self.problem_type == "regression":
            if len(self.labels) > 1:
                self._fail(
                    "labels", self.labels, "at most one name for a regression task (it has a single output)"
                )
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
            self._fail("text_columns", self.text_columns, "one column name, or two for sentence pairs")
        if not self.label_column or self.label_column in self.text_columns:
            self._fail("label_column", self.label_column, "a column name different from the text columns")
        if self.label_columns and (
            self.problem_type != "multi_label_classification"
            or len(self.label_columns) != len(self.labels)
            or set(self.label_columns) & set(self.text_columns)
        ):
            self._fail("label_columns", self.label_columns, "one column per label (a multi-label task)")
        unknown = set(self.splits) - set(SPLIT_ROLES)
        if unknown or not self.splits.get("train"):
            self._fail(
                "splits", dict(self.splits), f"a mapping with keys among {SPLIT_ROLES} and a 'train' split"
            )
        for metric in self.metrics:
            if metric not in METRICS and not metric.startswith(EVALUATE_PREFIX):
                self._fail(
                    "metrics",
                    self.metrics,
                    f"names among {sorted(METRICS)}, or '{EVALUATE_PREFIX}<name or path>' "
                    f"for a metric of the evaluate library.{suggest(metric, METRICS)}",
                )
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
        import datasets

        from . import data

        if data_files:
            files = data.split_files(data_files, self.splits)
        elif data_dir:
            files = data.find_split_files(data_dir, self.splits)
        elif self.hub_id:
            raw = data.load_hub_splits(
                self.hub_id,
                self.hub_config,
                revision or self.hub_revision,
                self.splits,
                cache_dir,
                self.local_hint(),
            )
            return datasets.DatasetDict(
                {
                    role: self.prepare_split(ds, role, f"hub dataset {self.hub_id!r} split {role!r}")
                    for role, ds in raw.items()
                }
            )
        else:
            raise data.DataError(
                f"Task {self.name!r} has no hub dataset; pass data_dir=... or "
                "data_files={'train': ..., 'validation': ...} (CLI: --data-dir, "
                "--train-file, --validation-file)."
            )
        return datasets.DatasetDict(
            {
                role: self.prepare_split(data.read_data_file(path, cache_dir), role, repr(str(path)))
                for role, path in files.items()
            }
        )

    def local_hint(self) -> str:
        """How to give this task's data as local files, in the interface's terms."""
        train, dev = self.splits.get("train") or "train", self.splits.get("eval") or "validation"
        files = f"files named {train}.tsv / {dev}.tsv (or .csv, .jsonl, .parquet)"
        return hint(
            f"data_dir='path/to/folder' with {files}, or train_file=... and validation_file=...",
            f"--data-dir PATH with {files}, or --train-file and --validation-file",
        )

    def prepare_split(self, ds: datasets.Dataset, role: str, source: str) -> datasets.Dataset:
        """Check columns, texts and labels; return the split with a numeric ``label`` column.

        A test split whose labels are all -1 (GLUE's hidden test labels) comes back unlabelled.
        """
        from . import data
        from . import label_columns as per_column

        ds = data.check_text_columns(ds, self.text_columns, source, self.name)
        keep = list(self.text_columns)
        if self.label_column not in ds.column_names and not self.label_columns:
            if role == "test":
                return ds.select_columns(keep)
            raise data.DataError(
                f"{source} has no label column {self.label_column!r}; its columns are "
                f"{ds.column_names}.{suggest(self.label_column, ds.column_names)} Add the labels "
                f"(one of {list(self.labels)}) or rename the column (or choose it: label_column=... / "
                "--label-column)."
            )
        if per_column.reads_label_columns(ds.column_names, self.label_columns, self.label_column):
            return per_column.with_label_columns(ds, keep, self.label_columns, role, source)
        raw = ds[self.label_column]
        if role == "test" and all(v == -1 for v in raw):
            return ds.select_columns(keep)
        values = data.encode_labels(
            raw,
            self.labels,
            self.problem_type,
            column=self.label_column,
            source=source,
            task_name=self.name,
            label_separator=self.label_separator,
        )
        return ds.select_columns(keep).add_column("label", values)

    @classmethod
    def from_data(
        cls,
        data_files: Mapping[str, Any] | str | os.PathLike | None = None,
        *,
        data_dir: str | os.PathLike | None = None,
        dataset: str | None = None,
        dataset_config: str | None = None,
        text_columns: str | Sequence[str] | None = None,
        label_column: str | None = None,
        labels: Sequence[str] | None = None,
        problem_type: str | None = None,
        label_separator: str | None = None,
        label_columns: Sequence[str] | None = None,
        name: str | None = None,
        revision: str | None = None,
        cache_dir: str | None = None,
        **fields: Any,
    ) -> Task:
        """A task inferred from the training data: columns, labels, problem type, metrics.

        Give local files (`data_files={'train': ..., 'validation': ...}` or a `data_dir`) or a
        hub `dataset`. Columns: the label column is `label_column` or one named label, labels,
        target, class, category or y; the text column is `text_columns` or the only other
        string column. Labels: `labels`, or the training split's values, numbers sorted
        numerically and strings alphabetically. Problem type: `problem_type`, or inferred
        (non-integer numbers: regression; lists or `label_separator`: multi-label; otherwise
        single-label). `label_columns`: one 0/1 column per label (multi-label), inferred when
        every column besides the text holds only 0/1. Any other `Task` field can be passed.
        """
        from . import data
        from . import label_columns as per_column

        if sum(x is not None for x in (data_files, data_dir, dataset)) != 1:
            raise data.DataError(
                "Task.from_data needs exactly one data source: data_files=..., "
                "data_dir=... or dataset='org/name' (CLI: --train-file, "
                "--data-dir or --dataset)."
            )
        splits = {"train": "train", "eval": "validation", "test": "test"}
        if dataset is not None:
            hint = "data_files={'train': 'train.csv', ...} or data_dir=...; CLI: --train-file/--data-dir."
            train = data.load_hub_splits(dataset, dataset_config, revision, splits, cache_dir, hint).get(
                "train"
            )
            source, default_name = (
                f"hub dataset {dataset!r}",
                dataset.split("/")[-1] + (f"-{dataset_config}" if dataset_config else ""),
            )
            if train is None:
                raise data.DataError(f"{source} has no 'train' split; it cannot be trained on.")
            described = source
        else:
            if data_files is not None:
                # split_files takes one file as str or Path
                files = data.split_files(
                    data_files if isinstance(data_files, Mapping | Path) else os.fspath(data_files), splits
                )
            else:
                assert data_dir is not None  # exactly one source was given, checked above
                files = data.find_split_files(data_dir, splits)
            if "train" not in files:
                raise data.DataError(
                    f"No training file among {sorted(map(str, files.values()))}. "
                    "Pass train_file=... (CLI: --train-file)."
                )
            path = files["train"]
            train, source = data.read_data_file(path, cache_dir), repr(str(path))
            described = repr(Path(path).name)  # the saved description travels: no local path
            # train.csv names nothing: its folder does
            generic = path.stem.lower() in sum(data.ROLE_ALIASES.values(), ())
            default_name = (
                Path(data_dir).resolve().name
                if data_dir is not None
                else path.resolve().parent.name
                if generic
                else path.stem
            )
        if isinstance(text_columns, str):
            text_columns = [c.strip() for c in text_columns.split(",")]
        found = per_column.label_columns_of(
            train, source, text_columns, label_column, label_columns, labels, problem_type, label_separator
        )
        if found is not None:
            (columns, label_columns), label_column = found, "label"
            labels, kind = tuple(label_columns), "multi_label_classification"
        else:
            columns, label_column = data.infer_columns(train, source, text_columns, label_column)
            per_column.require_text_columns(train.column_names, columns, source)
            inferred, kind = data.infer_labels(train[label_column], problem_type, label_separator, source)
            labels = tuple(labels) if labels else inferred
        fields.setdefault("metrics", _DEFAULT_METRICS[kind])
        fields.setdefault("main_metric", fields["metrics"][0])
        fields.setdefault("greater_is_better", fields["main_metric"] != "mse")
        task = cls(
            name=name or _task_name(default_name),
            hub_id=dataset,
            hub_config=dataset_config,
            hub_revision=revision,
            text_columns=tuple(columns),
            label_column=label_column,
            labels=labels,
            problem_type=kind,
            label_separator=label_separator,
            label_columns=tuple(label_columns or ()),
            description=f"Inferred from {described}.",
            **fields,
        )
        label = f"columns {list(task.label_columns)}" if task.label_columns else f"column {label_column!r}"
        logger.info(
            "Task %r inferred from %s: text %s, label %s, %s, labels %s.",
            *(task.name, source, list(task.text_columns), label, task.problem_type),
            list(task.labels) or "(a number)",
        )
        return task

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
        for key in ("text_columns", "labels", "metrics", "label_columns"):
            d[key] = list(d[key])
        return d


# what a task inferred from data reports, main metric first
_DEFAULT_METRICS = {
    # macro-F1 first: user data is often imbalanced, and accuracy hides a neglected class
    "single_label_classification": ("macro_f1", "accuracy"),
    "multi_label_classification": ("micro_f1", "macro_f1"),
    "regression": ("pearson", "spearman", "mse"),
}


def _task_name(raw: str) -> str:
    """A valid task name from a file or folder name: 'My Tickets.v2' -> 'my-tickets-v2'."""
    name = re.sub(r"[^a-z0-9_\-]+", "-", raw.lower()).strip("-_") or "data"
    return (name if name[0].isalpha() else f"data-{name}")[:64]


RegisterFn = Callable[[Task], None]
