"""After training: fit temperature scaling (and decision thresholds) on the evaluation split.

The maths is in `calibration.py` (shared with prediction); this runs the trained model over the evaluation
split (and a labelled test split, which then gives held-out calibration figures), and returns
the manifest's "calibration" entry plus the figures for `FineTuneResult.metrics`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError

if TYPE_CHECKING:
    import numpy as np

    from ..options import TrainOptions
    from ..task import Task
    from .run import PreparedRun

__all__ = ["check_calibration_options", "calibrate_run"]

logger = logging.getLogger(__name__)


def check_calibration_options(opts: TrainOptions, task: Task, has_eval_split: bool) -> None:
    """Refuse a decision threshold the task cannot use, before training starts."""
    threshold = opts.decision_threshold
    if threshold is None:
        return
    binary = task.problem_type == "single_label_classification" and task.num_labels == 2
    if not (binary or task.problem_type == "multi_label_classification"):
        raise ConfigError(
            f"decision_threshold={threshold!r} applies to binary and multi-label tasks; task "
            f"{task.name!r} is {task.problem_type} with {task.num_labels} label(s). Drop "
            "decision_threshold (single-label tasks predict the most probable label)."
        )
    if threshold == "tune-per-label" and task.problem_type != "multi_label_classification":
        raise ConfigError(
            f"decision_threshold='tune-per-label' tunes one threshold per label of a multi-label "
            f"task; task {task.name!r} is binary, with one threshold: pass decision_threshold='tune'."
        )
    if threshold == "tune-per-label" and opts.train_long_text == "chunks":
        raise ConfigError(
            "decision_threshold='tune-per-label' is not supported with train_long_text='chunks' yet "
            "(the per-text calibration tunes one threshold): pass decision_threshold='tune', or "
            "train_long_text='truncate' (CLI: --train-long-text truncate)."
        )
    if threshold in ("tune", "tune-per-label") and not has_eval_split:
        raise ConfigError(
            f"decision_threshold={threshold!r} picks the threshold on the evaluation split, "
            "and this data has none. Add one (validation.tsv, validation_file=..., "
            "validation_fraction > 0) or pass a number, e.g. "
            "decision_threshold=0.3."
        )


def _logits_and_labels(run: PreparedRun, dataset: Any) -> tuple[np.ndarray, np.ndarray]:
    import numpy as np

    output = run.trainer.predict(dataset, metric_key_prefix="calibration")
    logits = output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions
    assert isinstance(output.label_ids, np.ndarray)  # the split has one label column
    return logits, output.label_ids


def calibrate_run(run: PreparedRun) -> tuple[dict[str, Any] | None, dict[str, float]]:
    """(the manifest's "calibration" entry or None, metrics to add to the run's metrics)."""
    from .. import calibration as cal
    from ..metrics import METRICS

    if run.long_text.chunks:  # per text, windows aggregated as predict does
        from .chunking import calibrate_documents

        return calibrate_documents(run)
    task, opts = run.task, run.options
    wanted = opts.temperature_scaling or opts.decision_threshold is not None
    if task.problem_type == "regression" or not wanted:
        return None, {}
    eval_split, test_split = run.final_splits.get("eval"), run.final_splits.get("test")
    if eval_split is None:
        if opts.decision_threshold is None:
            logger.info("No evaluation split: temperature scaling skipped.")
            return None, {}
        entry: dict[str, Any] = {"temperature": 1.0, "decision_threshold": opts.decision_threshold}
        return entry, {"decision_threshold": float(opts.decision_threshold)}
    logits, labels = _logits_and_labels(run, eval_split)
    entry = cal.fit_calibration(
        logits,
        labels,
        task,
        temperature_scaling=opts.temperature_scaling,
        decision_threshold=opts.decision_threshold,
        min_positives=opts.threshold_min_positives,
    )
    temperature, threshold = entry["temperature"], cal.stored_threshold({"calibration": entry})
    metrics = {"temperature": temperature}
    metrics |= {k: entry[k] for k in ("ece", "brier", "ece_calibrated", "brier_calibrated") if k in entry}
    splits = [("", logits, labels)]
    if test_split is not None:  # held out from the fit: the honest calibration figures
        test_logits, test_labels = _logits_and_labels(run, test_split)
        metrics |= cal.calibration_metrics(
            test_logits, test_labels, task.problem_type, temperature, prefix="test_"
        )
        splits.append(("test_", test_logits, test_labels))
    if threshold is not None:
        metrics["decision_threshold"] = float(entry["decision_threshold"])
        for prefix, split_logits, split_labels in splits:
            probs = cal.probabilities(split_logits, task.problem_type, temperature)
            chosen = cal.decisions(probs, task.problem_type, threshold)
            for name in (m for m in task.metrics if m in METRICS):
                metrics[f"{prefix}{name}_at_threshold"] = METRICS[name](chosen, split_labels.astype("int64"))
    logger.info(
        "Calibration on the evaluation split: temperature %.3f (NLL %.4f -> %.4f, ECE %.4f -> %.4f)%s",
        temperature,
        entry["nll"],
        entry["nll_calibrated"],
        entry["ece"],
        entry.get("ece_calibrated", entry["ece"]),
        f"; decision threshold {entry['decision_threshold']}" if threshold is not None else "",
    )
    if "label_thresholds" in entry:
        _say_label_thresholds(entry, task)
    return entry, metrics


def _say_label_thresholds(entry: dict[str, Any], task: Task) -> None:
    pairs = ", ".join(
        f"{name} {t:.2f}" for name, t in zip(task.labels, entry["label_thresholds"], strict=True)
    )
    logger.info("Per-label decision thresholds (each label's F1 on the evaluation split): %s.", pairs)
    kept = entry["labels_kept_global"]
    if kept:
        logger.info(
            "%s kept the global threshold %.2f: fewer than %d positive examples in the evaluation "
            "split (threshold_min_positives).",
            ", ".join(kept),
            entry["decision_threshold"],
            entry["threshold_min_positives"],
        )
