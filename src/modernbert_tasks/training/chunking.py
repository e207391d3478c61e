"""train_long_text="chunks": every window of a text is a training row with the text's label,
and every evaluation is per text, its windows aggregated as prediction aggregates them
(`long_text.py`), so the metrics a run reports are the ones `evaluate` reproduces.

Tokenized splits keep a "document" column (the text's row in its split) that the Trainer
drops before the model sees a batch; evaluation reads the windows in order (TaskTrainer's
sequential sampler with chunks) and groups them by it. During training (best checkpoint, early
stopping) the windows are aggregated at temperature 1; the final metrics use the fitted
temperature, as prediction does.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..long_text import (
    LongText,
    aggregate_windows,
    as_logits,
    document_labels,
    encode_windows,
    fit_window_temperature,
    require_fast_tokenizer,
    resolve_long_text,
)

if TYPE_CHECKING:
    import datasets
    import numpy as np

    from ..options import TrainOptions
    from ..task import Task
    from .run import PreparedRun

__all__ = [
    "train_long_text",
    "DOCUMENT_COLUMN",
    "encode_windows_batch",
    "DocumentMetrics",
    "document_scores",
    "document_final_metrics",
    "calibrate_documents",
]

logger = logging.getLogger(__name__)

DOCUMENT_COLUMN = "document"
MODE_NAME = ("train_long_text", "--train-long-text")


def train_long_text(opts: TrainOptions, task: Task, tokenizer: Any, max_length: int) -> LongText:
    """The run's policy, checked against the tokenizer's special tokens once max_length is
    known (before any text is tokenized)."""
    policy = resolve_long_text(
        opts.train_long_text,
        opts.stride,
        opts.aggregate,
        max_length=max_length,
        special_tokens=tokenizer.num_special_tokens_to_add(pair=task.is_pair),
        problem_type=task.problem_type,
        mode_name=MODE_NAME,
    )
    if policy.chunks:
        require_fast_tokenizer(tokenizer, MODE_NAME)
    return policy


def encode_windows_batch(
    batch: dict[str, list],
    indices: list[int],
    task: Task,
    tokenizer: Any,
    max_length: int,
    padding: str,
    stride: int,
) -> dict[str, list]:
    """A `datasets.map` batch as windows: the model's inputs, "label" and "document" per window."""
    texts = [[task.format_text(t) for t in batch[col]] for col in task.text_columns]
    encoded, owners = encode_windows(
        tokenizer,
        texts[0],
        texts[1] if task.is_pair else None,
        max_length,
        stride,
        [i + 1 for i in indices],
        what="Row",
    )
    if padding == "max_length":
        encoded = dict(tokenizer.pad(encoded, padding="max_length", max_length=max_length))
    out: dict[str, list] = dict(encoded)
    if "label" in batch:
        out["label"] = [batch["label"][j] for j in owners]
    out[DOCUMENT_COLUMN] = [indices[j] for j in owners]
    return out


def _documents(dataset: datasets.Dataset) -> tuple[np.ndarray, int]:
    """(each window's text, renumbered 0..n-1 in order of appearance, the number of texts)."""
    import numpy as np

    raw = np.asarray(dataset[DOCUMENT_COLUMN], dtype=np.int64)
    _, owners = np.unique(raw, return_inverse=True)
    return owners.astype(np.int64), int(owners.max()) + 1 if len(owners) else 0


def _document_logits(
    window_logits: np.ndarray,
    window_labels: np.ndarray,
    owners: np.ndarray,
    n: int,
    task: Task,
    how: str,
    t: float,
) -> tuple[np.ndarray, np.ndarray]:
    probs = aggregate_windows(window_logits, owners, n, task.problem_type, t, how)
    return as_logits(probs, task.problem_type), document_labels(window_labels, owners, n)


class DocumentMetrics:
    """The Trainer's compute_metrics with chunks: the task's metrics per text. TaskTrainer sets
    `documents` from the split before each evaluation."""

    def __init__(self, task: Task, aggregate: str) -> None:
        self.task = task
        self.aggregate = aggregate
        self.documents: tuple[np.ndarray, int] | None = None

    def use(self, dataset: Any) -> None:
        self.documents = _documents(dataset)

    def __call__(self, prediction: Any) -> dict[str, float]:
        outputs = prediction.predictions
        outputs = outputs[0] if isinstance(outputs, tuple) else outputs
        assert self.documents is not None, "TaskTrainer.evaluate sets the documents first"
        owners, n = self.documents
        logits, labels = _document_logits(
            outputs, prediction.label_ids, owners, n, self.task, self.aggregate, 1.0
        )
        return self.task.compute_metrics(logits, labels)


def document_scores(run: PreparedRun, dataset: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(window logits, window labels, each window's text, the number of texts) of a split, from
    the trained model (fp32, windows in order)."""
    import numpy as np

    output = run.trainer.predict(dataset, metric_key_prefix="windows")
    logits = output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions
    assert isinstance(output.label_ids, np.ndarray)  # the split has one label column
    owners, n = _documents(dataset)
    return logits, output.label_ids, owners, n


def _loss(logits: np.ndarray, labels: np.ndarray, problem_type: str) -> float:
    """The loss evaluate reports on aggregated outputs (cross-entropy / BCE of the texts'
    probabilities, MSE of their mean values)."""
    import numpy as np

    from ..calibration import nll

    if problem_type == "regression":
        return float(np.mean((logits[:, 0].astype(np.float64) - labels) ** 2))
    return nll(logits, labels, problem_type)


def document_final_metrics(run: PreparedRun, calibration: dict[str, Any] | None) -> dict[str, float]:
    """The final model's metrics per text on the eval split (unprefixed) and a labelled test
    split ("test_"), aggregated with the fitted temperature as predict and evaluate do."""
    task, how = run.task, run.long_text.aggregate
    temperature = float((calibration or {}).get("temperature", 1.0))
    metrics: dict[str, float] = {}
    for role, prefix in (("eval", ""), ("test", "test_")):
        dataset = run.final_splits.get(role)
        if dataset is None:
            continue
        window_logits, window_labels, owners, n = document_scores(run, dataset)
        logits, labels = _document_logits(window_logits, window_labels, owners, n, task, how, temperature)
        figures = dict(task.compute_metrics(logits, labels))
        figures["loss"] = _loss(logits, labels, task.problem_type)
        figures["documents"], figures["windows"] = n, len(owners)
        metrics |= {f"{prefix}{k}": v for k, v in figures.items()}
        logger.info("The final %s metrics are per text: %d texts read in %d windows.", role, n, len(owners))
    return metrics


def calibrate_documents(run: PreparedRun) -> tuple[dict[str, Any] | None, dict[str, float]]:
    """`calibrating.calibrate_run` with chunks: the temperature that calibrates the texts'
    aggregated probabilities (applied to each window before aggregation), a tuned threshold on
    those probabilities, and ECE/Brier per text."""
    from .. import calibration as cal
    from ..metrics import METRICS

    task, opts, how = run.task, run.options, run.long_text.aggregate
    wanted = opts.temperature_scaling or opts.decision_threshold is not None
    if task.problem_type == "regression" or not wanted:
        return None, {}
    eval_split = run.final_splits.get("eval")
    if eval_split is None:
        if opts.decision_threshold is None:
            logger.info("No evaluation split: temperature scaling skipped.")
            return None, {}
        entry: dict[str, Any] = {"temperature": 1.0, "decision_threshold": opts.decision_threshold}
        return entry, {"decision_threshold": float(opts.decision_threshold)}
    windows, window_labels, owners, n = document_scores(run, eval_split)
    labels = document_labels(window_labels, owners, n)
    temperature = (
        fit_window_temperature(windows, owners, n, labels, task.problem_type, how)
        if opts.temperature_scaling
        else 1.0
    )
    raw = aggregate_windows(windows, owners, n, task.problem_type, 1.0, how)
    scaled = aggregate_windows(windows, owners, n, task.problem_type, temperature, how)
    threshold = opts.decision_threshold
    if threshold == "tune":
        threshold = cal.tune_threshold(
            scaled, labels, task.problem_type, task.main_metric, task.greater_is_better
        )
    figures = {
        "ece": cal.expected_calibration_error(raw, labels, task.problem_type),
        "brier": cal.brier_score(raw, labels, task.problem_type),
    }
    if temperature != 1.0:
        figures["ece_calibrated"] = cal.expected_calibration_error(scaled, labels, task.problem_type)
        figures["brier_calibrated"] = cal.brier_score(scaled, labels, task.problem_type)
    entry = {
        "temperature": temperature,
        "decision_threshold": threshold,
        "fitted_on": "eval",
        "num_examples": n,
        "aggregated_over_windows": how,
        "nll": cal.nll(as_logits(raw, task.problem_type), labels, task.problem_type),
        "nll_calibrated": cal.nll(as_logits(scaled, task.problem_type), labels, task.problem_type),
        **figures,
    }
    metrics: dict[str, Any] = {"temperature": temperature, **figures}
    if threshold is not None:
        assert not isinstance(threshold, str)  # 'tune-per-label' is refused before training
        metrics["decision_threshold"] = float(threshold)
        chosen = cal.decisions(scaled, task.problem_type, threshold)
        metrics[f"{task.main_metric}_at_threshold"] = METRICS[task.main_metric](
            chosen, labels.astype("int64")
        )
    logger.info(
        "Calibration per text on the evaluation split: temperature %.3f (NLL %.4f -> %.4f)%s",
        temperature,
        entry["nll"],
        entry["nll_calibrated"],
        f"; decision threshold {threshold}" if threshold is not None else "",
    )
    return entry, metrics
