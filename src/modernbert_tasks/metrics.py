"""Metrics computed offline with numpy/scikit-learn/scipy.

`evaluate.load("accuracy")` downloads its script from the hub, so no metric here may need it.
A metric is a function ``(predictions, labels) -> float`` where predictions are already
decoded: class ids for classification, 0/1 matrices for multi-label, floats for regression.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["METRICS", "decode_predictions", "compute_metrics"]

MetricFn = Callable[[np.ndarray, np.ndarray], float]


def _accuracy(p: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(p == y)) if p.ndim == 1 else float(np.mean(np.all(p == y, axis=1)))


def _sk(name: str, **kw) -> MetricFn:
    def fn(p: np.ndarray, y: np.ndarray) -> float:
        import sklearn.metrics as skm

        return float(getattr(skm, name)(y, p, **kw))

    return fn


def _pearson(p: np.ndarray, y: np.ndarray) -> float:
    from scipy.stats import pearsonr

    return float(pearsonr(p.ravel(), y.ravel())[0])


def _spearman(p: np.ndarray, y: np.ndarray) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(p.ravel(), y.ravel())[0])


METRICS: dict[str, MetricFn] = {
    "accuracy": _accuracy,
    "f1": _sk("f1_score", zero_division=0),  # binary: positive class is label id 1
    "macro_f1": _sk("f1_score", average="macro", zero_division=0),
    "micro_f1": _sk("f1_score", average="micro", zero_division=0),
    "precision": _sk("precision_score", zero_division=0),
    "recall": _sk("recall_score", zero_division=0),
    "matthews_correlation": _sk("matthews_corrcoef"),
    "pearson": _pearson,
    "spearman": _spearman,
    "mse": _sk("mean_squared_error"),
}


def decode_predictions(outputs: np.ndarray, problem_type: str) -> np.ndarray:
    """Model outputs (logits) -> the predictions the metrics compare with labels."""
    outputs = np.asarray(outputs)
    if problem_type == "regression":
        return outputs.reshape(len(outputs), -1)[:, 0].astype(np.float64)
    if problem_type == "multi_label_classification":
        return (outputs > 0).astype(np.int64)  # sigmoid(x) > 0.5  <=>  x > 0
    return outputs.argmax(axis=-1)


def compute_metrics(
    names: tuple[str, ...], outputs: np.ndarray, labels: np.ndarray, problem_type: str
) -> dict[str, float]:
    preds = decode_predictions(outputs, problem_type)
    labels = np.asarray(labels)
    if problem_type == "regression":
        labels = labels.astype(np.float64).ravel()
    elif problem_type == "multi_label_classification":
        labels = labels.astype(np.int64)
    return {name: METRICS[name](preds, labels) for name in names}
