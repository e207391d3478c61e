"""The parity check of an export: the exported graph and the torch model score the same texts
(a sample of the eval split the manifest records, or fixed texts) and are compared."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ModernBertTasksError

if TYPE_CHECKING:
    import numpy as np

    from ..inference.predictor import FineTunedModel

__all__ = ["ParityError", "ParityReport", "parity_texts", "check_parity", "FALLBACK_TEXTS", "FP32_TOLERANCE"]

FP32_TOLERANCE = 1e-3  # measured: ORT fp32 is within 1e-6 of torch; 1e-3 leaves room for kernels
# Used when the task's eval split cannot be read: short, mixed and one longer than any
# max_length, so truncation and (for ModernBERT) the sliding-window mask are exercised.
FALLBACK_TEXTS = (
    "Hi.",
    "The movie was great and I loved every minute of it.",
    "Terrible.",
    "I am not sure how I feel about this product; it has some good parts but also a lot of "
    "problems that annoy me.",
    "Okay",
    "Shipping was fast, packaging fine.",
    "Would not recommend to anyone, ever, under any circumstances whatsoever.",
    "meh",
    " ".join(f"word{i}" for i in range(600)),
)


class ParityError(ModernBertTasksError):
    """The exported graph does not reproduce the torch model."""


@dataclass
class ParityReport:
    """How one exported file compares with the torch model on the same texts."""

    file: str
    quantization: str
    num_texts: int
    source: str  # where the texts came from
    max_abs_diff: float
    label_agreement: float | None  # share of identical labels; None for regression
    metric: str | None = None  # the task's main metric, when the texts have labels
    torch_value: float | None = None
    onnx_value: float | None = None
    passed: bool = True

    @property
    def metric_change(self) -> float | None:
        if self.torch_value is None or self.onnx_value is None:
            return None
        return self.onnx_value - self.torch_value

    def line(self) -> str:
        agree = (
            "n/a"
            if self.label_agreement is None
            else f"{self.label_agreement:.4f} ({round(self.label_agreement * self.num_texts)}"
            f"/{self.num_texts} labels)"
        )
        text = (
            f"{self.file} ({self.quantization}): max |logit diff| {self.max_abs_diff:.2e}, "
            f"label agreement {agree}"
        )
        if self.metric_change is not None:
            text += (
                f", {self.metric} {self.onnx_value:.4f} vs torch {self.torch_value:.4f} "
                f"({self.metric_change:+.4f})"
            )
        return text


def parity_texts(
    reference: FineTunedModel, sample: int | None, data: Any, data_dir: Any
) -> tuple[list[str], list[str] | None, np.ndarray | None, str]:
    """Texts (and labels) from the eval split; the fixed texts when it cannot be read."""
    from ..inference.evaluation import label_array

    training = (reference.manifest or {}).get("training", {})
    data_files = None
    named = ""  # which data the texts come from, for the report
    if data is None and data_dir is None and reference.task is not None:
        data, data_dir, data_files, named = _recorded_data(training)
    reason = "no task recorded in the model folder and no data given"
    if reference.task is not None or data is not None or data_dir is not None:
        try:
            task = reference.evaluation_task
            ds = reference.labelled_data(data, data_dir=data_dir, data_files=data_files)
            total = len(ds)
            if sample is not None and total > sample:
                ds = ds.shuffle(seed=0).select(range(sample))
            first = list(ds[task.text_columns[0]])
            second = list(ds[task.text_columns[1]]) if task.is_pair else None
            labels = label_array(ds["label"], reference.problem_type) if "label" in ds.column_names else None
            return first, second, labels, f"{len(first)} of {total} eval-split texts{named}"
        except Exception as exc:  # reported: the check still runs, on the fixed texts
            reason = (
                f"the eval split could not be read ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})"
            )
    first = list(FALLBACK_TEXTS)
    second = list(reversed(FALLBACK_TEXTS)) if reference.is_pair else None
    return first, second, None, f"{len(first)} fixed texts, one longer than max_length ({reason})"


def _recorded_data(training: dict[str, Any]) -> tuple[Any, Any, Any, str]:
    """(data file, data_dir, data_files, " from ...") for the data training read, from the
    manifest, where it still exists: the validation file, else the training file (a held-out
    share of it was the eval split), else data_dir or data_files."""
    for key in ("validation_file", "train_file"):
        path = training.get(key)
        if isinstance(path, str) and Path(path).is_file():
            return path, None, None, f" from {key} {path!r}"
    recorded = training.get("data_dir")
    if isinstance(recorded, str) and Path(recorded).is_dir():
        return None, recorded, None, f" from data_dir {recorded!r}"
    files = training.get("data_files")
    if files:
        return None, None, files, " from the recorded data_files"
    return None, None, None, ""


def check_parity(
    reference: FineTunedModel,
    folder: Path,
    files: dict[str, Path],
    first: list[str],
    second: list[str] | None,
    labels: Any,
    source: str,
    tolerance: float,
) -> list[ParityReport]:
    import numpy as np

    from ..inference.onnx_model import load_onnx

    expected = reference.logits(first, second)
    task = reference.evaluation_task
    main = task.main_metric if labels is not None else None
    torch_value = _main_metric(task, expected, labels)
    reports = []
    for quantization, file in files.items():
        onnx_model = load_onnx(folder, quantization=quantization)
        got = onnx_model.logits(first, second)
        diff = float(np.abs(got - expected).max()) if len(first) else 0.0
        agreement = _label_agreement(reference.problem_type, expected, got)
        report = ParityReport(
            file=file.name,
            quantization=quantization,
            num_texts=len(first),
            source=source,
            max_abs_diff=diff,
            label_agreement=agreement,
            metric=main,
            torch_value=torch_value,
            onnx_value=_main_metric(task, got, labels),
        )
        if quantization == "fp32":
            report.passed = diff <= tolerance and agreement in (None, 1.0)
        reports.append(report)
    failed = [r for r in reports if not r.passed]
    if failed:
        raise ParityError(
            f"The exported ONNX model does not reproduce the torch model on {source}: "
            f"{failed[0].line()} (allowed: logit diff <= {tolerance:g} and identical labels). "
            "Nothing was written. Try the other exporter (dynamo=True/False) or report the "
            f"model type ({reference.model.config.model_type})."
        )
    return reports


def _label_agreement(problem_type: str, a: np.ndarray, b: np.ndarray) -> float | None:
    if problem_type == "regression" or len(a) == 0:
        return None
    if problem_type == "multi_label_classification":
        return float(((a > 0) == (b > 0)).all(axis=1).mean())  # logit > 0 <=> probability > 0.5
    return float((a.argmax(axis=1) == b.argmax(axis=1)).mean())


def _main_metric(task: Any, logits: np.ndarray, labels: Any) -> float | None:
    if labels is None or len(logits) == 0:
        return None
    value = task.compute_metrics(logits, labels).get(task.main_metric)
    return None if value is None else float(value)
