"""`evaluate` and what it reads: labelled data checked against the task, scored in fp32 by
default, reported as the task's metrics, loss, per-class figures and calibration."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import calibration
from ..errors import ConfigError, DataError, clipped_repr
from ..hardware import EVALUATE_PRECISIONS
from ..task import Task
from .chunks import temperature_applied

if TYPE_CHECKING:
    import datasets
    import numpy as np

    from ..long_text import LongText

__all__ = ["Evaluation", "label_array"]


class Evaluation:
    """The evaluation half of `FineTunedModel` (which provides the scoring it calls)."""

    # set by FineTunedModel.__init__
    task: Task | None
    manifest: dict[str, Any] | None
    labels: tuple[str, ...]
    problem_type: str
    max_length: int
    path: str

    if TYPE_CHECKING:  # FineTunedModel's scoring

        def _scores(
            self,
            first: list[str],
            second: list[str] | None,
            batch_size: int,
            show_progress: bool | None,
            precision: str | None = None,
            full_lengths: dict[int, int] | None = None,
            policy: LongText | None = None,
            numbers: list[int] | None = None,
        ) -> np.ndarray: ...

        def reading(
            self, long_text: str | None = None, stride: int | None = None, aggregate: str | None = None
        ) -> LongText: ...

        last_windows: list[int]

        def _logits(
            self,
            first: list[str],
            second: list[str] | None,
            batch_size: int,
            show_progress: bool | None,
            bf16: bool | None = None,
            full_lengths: dict[int, int] | None = None,
        ) -> np.ndarray: ...

        def _report_truncation(self, full: dict[int, int], total: int) -> None: ...

    def evaluate(
        self,
        data: str | os.PathLike | datasets.Dataset | Sequence[tuple[Any, Any]] | None = None,
        *,
        split: str = "eval",
        data_dir: str | os.PathLike | None = None,
        data_files: Mapping[str, Any] | None = None,
        data_file: str | os.PathLike | None = None,
        batch_size: int = 64,
        show_progress: bool | None = None,
        precision: str = "fp32",
        long_text: str | None = None,
        stride: int | None = None,
        aggregate: str | None = None,
    ) -> dict[str, Any]:
        """The task's metrics on labelled data, plus loss and num_examples.

        `data` is a file (TSV/CSV/JSON(L)/parquet with the task's columns), a
        `datasets.Dataset`, or a list of (text, label) / ((text_a, text_b), label). Without
        `data`, the task's `split` ('train', 'eval' or 'test') is loaded from `data_dir`,
        `data_files`, or the task's hub dataset. A folder without manifest reads the columns
        'sentence' and 'label' (or label names from config.json). Classification adds "per_class"
        ({label: {precision, recall, f1, support}}, at the decisions predict makes: with the
        stored thresholds, and each label's "threshold" for multi-label); multi-label adds
        "micro" and "macro" averages of those; single-label adds "confusion_matrix" (rows: true
        label, columns: predicted, both in `labels` order).

        `data_file` is `data` under the CLI's name (`--data-file`). `precision` is "fp32" by
        default whatever the model was loaded with, so the figures are the ones training
        printed, on every machine; "mixed" (labels as fp32, probabilities and loss from bf16)
        or "bf16" trade that for speed.

        `long_text`, `stride`, `aggregate`: as in `predict` (default: the model's). With
        "chunks" every figure is per text, from its aggregated probabilities (the temperature
        applied to each window, so there are no "_calibrated" figures), and "windows" counts
        the windows read.
        """
        if data_file is not None:
            if data is not None:
                raise ConfigError("Pass the evaluation file once: data= or data_file=, not both.")
            data = data_file
        if precision not in EVALUATE_PRECISIONS:
            raise ConfigError(
                f"precision={precision!r} is not supported by evaluate(); expected "
                f"one of {', '.join(EVALUATE_PRECISIONS)} (default fp32: the "
                "figures training printed)."
            )
        policy = self.reading(long_text, stride, aggregate)  # checked before any data is read
        task = self.evaluation_task
        ds = self.labelled_data(data, split=split, data_dir=data_dir, data_files=data_files)
        if "label" not in ds.column_names:
            raise DataError(
                f"The evaluation data has no labels (column {task.label_column!r}); "
                "evaluate needs labelled data. Use predict() for unlabelled texts."
            )
        first = list(ds[task.text_columns[0]])
        second = list(ds[task.text_columns[1]]) if task.is_pair else None
        full: dict[int, int] = {}
        logits = self._scores(first, second, batch_size, show_progress, precision, full, policy)
        self._report_truncation(full, len(first))
        labels = label_array(ds["label"], self.problem_type)
        results: dict[str, Any] = dict(task.compute_metrics(logits, labels))
        results["loss"] = _loss(logits, labels, self.problem_type)
        results["num_examples"] = len(first)
        manifest = self.manifest
        if policy.chunks:  # per text: aggregated probabilities, the temperature already in
            results["windows"] = int(sum(self.last_windows))
            manifest = temperature_applied(manifest)
        if self.problem_type != "regression":
            results.update(
                _classification_report(logits, labels, self.labels, self.problem_type, self.manifest)
            )
            # ECE/Brier before and after the stored temperature; metrics at a stored threshold
            results.update(
                calibration.evaluation_report(logits, labels, manifest, self.problem_type, task.metrics)
            )
        return results

    def logits(
        self,
        first: Sequence[str],
        second: Sequence[str] | None = None,
        *,
        batch_size: int = 64,
        show_progress: bool | None = False,
        precision: str = "fp32",
    ) -> np.ndarray:
        """Raw model outputs (float32, input order) for texts, or pairs split into `first` and
        `second`: no calibration, no decisions. fp32 by default; "bf16" under autocast."""
        if precision not in ("fp32", "bf16"):
            raise ConfigError(f"precision={precision!r}; logits() takes 'fp32' or 'bf16'.")
        return self._logits(
            list(first),
            None if second is None else list(second),
            batch_size,
            show_progress,
            bf16=precision == "bf16",
        )

    @property
    def evaluation_task(self) -> Task:
        """The task whose columns and metrics labelled data is read and scored with: the
        model's own, or (no manifest) a stand-in reading 'sentence' and 'label'."""
        if self.task is not None:
            return self.task
        # no manifest: a stand-in task so files are read and checked the same way
        regression = self.problem_type == "regression"
        return Task(
            name="model",
            labels=() if regression else self.labels,
            problem_type=self.problem_type,
            max_length=max(self.max_length, 8),
            metrics=("pearson", "spearman", "mse") if regression else ("accuracy", "macro_f1"),
            main_metric="pearson" if regression else "accuracy",
        )

    def labelled_data(
        self, data: Any = None, *, split: str = "eval", data_dir: Any = None, data_files: Any = None
    ) -> datasets.Dataset:
        """The data `evaluate` would score (same arguments), checked against the task: the
        task's text columns and a "label" column of label ids."""
        import datasets

        from ..data import read_data_file

        task = self.evaluation_task

        if data is None:
            return self._task_split(task, split, data_dir, data_files)
        if data_dir is not None or data_files is not None:
            raise ConfigError("Pass either data or data_dir/data_files to evaluate(), not both.")
        if isinstance(data, str | os.PathLike):
            path = Path(data).expanduser()
            if not path.is_file():
                raise DataError(
                    f"Evaluation file {str(path)!r} not found. Pass a TSV/CSV/JSONL/"
                    "parquet file with the task's text and label columns."
                )
            return task.prepare_split(read_data_file(path), "eval", source=repr(str(path)))
        if isinstance(data, datasets.DatasetDict):
            data = data[_role(split, data)]
        if isinstance(data, datasets.Dataset):
            return task.prepare_split(data, "eval", source="the given Dataset")
        if isinstance(data, Sequence):
            return task.prepare_split(_rows_to_dataset(data, task), "eval", source="the given list")
        raise ConfigError(
            f"evaluate(data=...) got {type(data).__name__}; expected a file path, a "
            "datasets.Dataset, or a list of (text, label) pairs."
        )

    def _task_split(self, task: Task, split: str, data_dir: Any, data_files: Any) -> datasets.Dataset:
        if self.task is None and data_dir is None and data_files is None:
            raise ConfigError(
                f"{self.path!r} has no manifest, so it has no task dataset to evaluate on. Pass "
                "data= (a file, a Dataset or a list of (text, label)), or data_dir/data_files."
            )
        splits = task.load_dataset(
            data_dir=None if data_dir is None else str(data_dir), data_files=data_files
        )
        return splits[_role(split, splits)]


_ROLE_ALIASES = {"validation": "eval", "dev": "eval", "valid": "eval"}


def _role(split: str, available: Mapping[str, Any]) -> str:
    role = _ROLE_ALIASES.get(split, split)
    if role not in available:
        raise DataError(
            f"Split {split!r} is not available; the data has {sorted(available)}. Pass split= one of those."
        )
    return role


def _rows_to_dataset(rows: Sequence[Any], task: Task) -> datasets.Dataset:
    """[(text, label)] or [((a, b), label)] / [(a, b, label)] -> a Dataset with task columns."""
    import datasets

    columns: dict[str, list[Any]] = {c: [] for c in (*task.text_columns, task.label_column)}
    width = len(task.text_columns)
    for i, row in enumerate(rows):
        if not isinstance(row, Sequence) or isinstance(row, str):
            row = None
        elif width == 2 and len(row) == 2 and isinstance(row[0], Sequence) and not isinstance(row[0], str):
            row = (*row[0], row[1])
        if row is None or len(row) != width + 1:
            shape = "((text_a, text_b), label)" if width == 2 else "(text, label)"
            raise DataError(f"evaluate(data=...) item {i} is {clipped_repr(rows[i])}; expected {shape}.")
        for column, value in zip(columns, row, strict=True):
            columns[column].append(value)
    if not rows:
        raise DataError("evaluate(data=...) got an empty list; expected labelled examples.")
    return datasets.Dataset.from_dict(columns)


def label_array(values: Any, problem_type: str) -> np.ndarray:
    """Labels as the loss and the metrics take them: float32 for regression and multi-label
    (one-hot rows), int64 ids otherwise."""
    import numpy as np

    if problem_type == "regression":
        return np.asarray(values, dtype=np.float32)
    if problem_type == "multi_label_classification":
        return np.asarray(values, dtype=np.float32)
    return np.asarray(values, dtype=np.int64)


def _loss(logits: np.ndarray, labels: np.ndarray, problem_type: str) -> float:
    """The loss the model trains with (as in transformers' sequence classification heads)."""
    import torch
    import torch.nn.functional as F

    x, y = torch.from_numpy(logits), torch.from_numpy(labels)
    if problem_type == "regression":
        return float(F.mse_loss(x[:, 0], y))
    if problem_type == "multi_label_classification":
        return float(F.binary_cross_entropy_with_logits(x, y))
    return float(F.cross_entropy(x, y))


def _classification_report(
    logits: np.ndarray,
    labels: np.ndarray,
    names: Sequence[str],
    problem_type: str,
    manifest: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """Per-class figures (and the confusion matrix, or micro and macro averages) at the
    decisions predict makes: the stored temperature and thresholds."""
    import numpy as np
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    preds = calibration.decide(calibration.calibrate(logits, manifest, problem_type), manifest, problem_type)
    truth = labels.astype("int64")
    ids = list(range(len(names)))
    multi = problem_type == "multi_label_classification"

    def figures(average: str | None) -> Any:
        return precision_recall_fscore_support(truth, preds, labels=ids, average=average, zero_division=0)

    precision, recall, f1, support = figures(None)
    per_class = {
        name: {
            "precision": float(precision[k]),
            "recall": float(recall[k]),
            "f1": float(f1[k]),
            "support": int(support[k]),
        }
        for k, name in enumerate(names)
    }
    report: dict[str, Any] = {"per_class": per_class}
    if not multi:
        report["confusion_matrix"] = confusion_matrix(truth, preds, labels=ids).tolist()
        return report
    stored = calibration.stored_threshold(manifest)
    thresholds = np.broadcast_to(0.5 if stored is None else stored, (len(names),))
    for name, threshold in zip(names, thresholds, strict=True):
        per_class[name]["threshold"] = float(threshold)
    for average in ("micro", "macro"):
        p, r, f, _ = figures(average)
        report[average] = {
            "precision": float(p),
            "recall": float(r),
            "f1": float(f),
            "support": int(support.sum()),
        }
    return report
