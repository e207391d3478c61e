"""Imbalanced labels: the training split's label distribution, and class-weighted losses.

`class_weights="balanced"` gives class c the weight n / (k x n_c) (scikit-learn's definition),
so on the training split the weights average to 1 and the loss keeps its scale. For multi-label
tasks the weight of a label multiplies its positive term (`pos_weight` of BCE); "balanced" is
then n_negative / n_positive per label. The loss goes through the Trainer's own hook
(`compute_loss_func`), so the training loop, gradient accumulation and DDP are untouched.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError

if TYPE_CHECKING:
    import datasets
    import torch

    from ..task import Task

__all__ = [
    "label_counts",
    "log_label_distribution",
    "resolve_class_weights",
    "WeightedLoss",
    "RARE_CLASS_RATIO",
]

logger = logging.getLogger(__name__)

RARE_CLASS_RATIO = 0.1  # warn when the rarest class has under 10% of the most common's examples


def label_counts(train: datasets.Dataset, task: Task) -> list[int] | None:
    """Examples per label id (positives per label for multi-label); None for regression."""
    import numpy as np

    if task.problem_type == "regression" or "label" not in train.column_names:
        return None
    labels = np.asarray(train.with_format("numpy", columns=["label"])["label"])
    if task.problem_type == "multi_label_classification":
        return [int(v) for v in labels.reshape(len(labels), -1).sum(axis=0).round()]
    return [int(v) for v in np.bincount(labels.astype(np.int64), minlength=task.num_labels)]


def log_label_distribution(counts: list[int] | None, task: Task) -> None:
    """One line with every label's share; a warning when the rarest is under 10% of the top."""
    if not counts:
        return
    total = sum(counts)
    shares = ", ".join(
        f"{name} {n} ({n / max(total, 1):.1%})" for name, n in zip(task.labels, counts, strict=True)
    )
    logger.info("Training labels: %s", shares)
    rarest, top = min(counts), max(counts)
    if top and rarest < RARE_CLASS_RATIO * top:
        name = task.labels[counts.index(rarest)]
        logger.warning(
            "The labels are imbalanced: %r has %d training examples, under %d%% of the most "
            "common label's %d. Accuracy can look good while %r is never predicted: watch "
            "macro_f1 or per-class recall, and consider class_weights='balanced'.",
            name,
            rarest,
            int(RARE_CLASS_RATIO * 100),
            top,
            name,
        )


def resolve_class_weights(
    spec: str | Mapping[str, float] | None, task: Task, counts: list[int] | None, num_rows: int
) -> list[float] | None:
    """The weight of each label id, in id order, or None for an unweighted loss.

    `counts` come from `label_counts` on the `num_rows` training examples."""
    if spec is None:
        return None
    if task.problem_type == "regression":
        raise ConfigError(
            f"class_weights={spec!r} applies to classification, but task "
            f"{task.name!r} is a regression task. Drop class_weights."
        )
    if spec == "balanced":
        assert counts is not None  # classification training data always has a label column
        missing = [name for name, n in zip(task.labels, counts, strict=True) if n == 0]
        if missing:
            raise ConfigError(
                f"class_weights='balanced' cannot weight labels with no training "
                f"examples ({missing}). Pass a {{label: weight}} mapping instead."
            )
        if task.problem_type == "multi_label_classification":
            return [(num_rows - c) / c for c in counts]
        return [num_rows / (len(counts) * c) for c in counts]
    assert not isinstance(spec, str)  # options accept no other string than 'balanced'
    unknown = sorted(set(spec) - set(task.labels))
    if unknown:
        raise ConfigError(
            f"class_weights names {unknown}, which are not labels of task "
            f"{task.name!r}; expected some of {list(task.labels)}."
        )
    return [float(spec.get(name, 1.0)) for name in task.labels]


class WeightedLoss:
    """`compute_loss_func` for the Trainer: class-weighted cross-entropy (or BCE).

    The Trainer treats a `compute_loss_func` loss as already normalised over the accumulated
    batch, so the weighted sum is divided by `num_items_in_batch` (examples, or example x label
    cells for multi-label) when given, else by this batch's count.
    """

    def __init__(self, weights: list[float], problem_type: str) -> None:
        self.weights = list(weights)
        self.problem_type = problem_type

    def __call__(
        self, outputs: Any, labels: torch.Tensor, num_items_in_batch: torch.Tensor | int | None = None
    ) -> torch.Tensor:
        import torch
        import torch.nn.functional as F

        logits = outputs["logits"] if isinstance(outputs, Mapping) else outputs[0]
        weights = torch.tensor(self.weights, dtype=torch.float32, device=logits.device)
        if self.problem_type == "multi_label_classification":
            per_item = F.binary_cross_entropy_with_logits(
                logits.float(), labels.float(), pos_weight=weights, reduction="none"
            )
            count = labels.numel()
        else:
            per_item = F.cross_entropy(logits.float(), labels.long(), weight=weights, reduction="none")
            count = labels.shape[0]
        denominator = num_items_in_batch if num_items_in_batch is not None else count
        if isinstance(denominator, torch.Tensor):
            denominator = denominator.to(per_item.device)
        return per_item.sum() / denominator
