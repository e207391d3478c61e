"""After training: the final model's metrics, scored as prediction scores them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .run import RUN_METRICS

if TYPE_CHECKING:
    from .run import PreparedRun

__all__ = ["final_metrics", "train_metrics"]


def final_metrics(run: PreparedRun, calibration: dict[str, Any] | None = None) -> dict[str, float]:
    """The final (best) model on the eval split, and on the test split when it has labels.
    With train_long_text="chunks", per text with the fitted `calibration`
    (chunking.document_final_metrics).

    Scored in fp32 (TaskTrainer.evaluate), as `load_finetuned(...).evaluate` scores, so the
    figures printed at the end of training are the ones `evaluate` reproduces. Not sent to TensorBoard: the
    periodic evaluations are there already, and the Trainer closed its writer at the end of
    training, so one more log would open a second event file for the same step."""
    from transformers import EarlyStoppingCallback
    from transformers.integrations import TensorBoardCallback

    trainer = run.trainer
    trainer.remove_callback(TensorBoardCallback)
    # it would read the test split's "test_accuracy" as a missing "eval_accuracy" and warn
    # that early stopping is disabled; training is over anyway
    trainer.remove_callback(EarlyStoppingCallback)
    if run.long_text.chunks:
        from .chunking import document_final_metrics

        return document_final_metrics(run, calibration)
    keep = set(run.task.metrics) | {"loss"}
    metrics: dict[str, float] = {}
    for role in ("eval", "test"):
        dataset = run.final_splits.get(role)
        if dataset is None:
            continue
        result = trainer.evaluate(eval_dataset=dataset, metric_key_prefix=role)
        for key, value in result.items():
            name = key.removeprefix(f"{role}_")
            # the eval split's metrics go unprefixed: they are *the* metrics of the run
            metrics[name if role == "eval" and name in keep else key] = value
    return metrics


def train_metrics(metrics: dict[str, float]) -> dict[str, float]:
    return {k: metrics[k] for k in RUN_METRICS if k in metrics}
