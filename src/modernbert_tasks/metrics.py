"""Metrics: built in and offline (numpy/scikit-learn/scipy), or any `evaluate` metric.

The built-in names (`METRICS`) need no network: `evaluate.load("accuracy")` downloads its
script from the hub, so the defaults never use it. A task may still name any metric of the
evaluate library as ``"evaluate:<hub id or local path>"`` (e.g. ``"evaluate:f1"`` or
``"evaluate:./metrics/error_rate"``): it is loaded with `evaluate.load` once, before training,
and must return one number. A built-in metric is a function ``(predictions, labels) -> float``
where predictions are already decoded: class ids for classification, 0/1 matrices for
multi-label, floats for regression.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from .errors import ConfigError

__all__ = ["METRICS", "EVALUATE_PREFIX", "decode_predictions", "compute_metrics", "load_evaluate_metrics"]

EVALUATE_PREFIX = "evaluate:"

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
    return {
        name: METRICS[name](preds, labels) if name in METRICS else _evaluate_value(name, preds, labels)
        for name in names
    }


@functools.lru_cache(maxsize=32)
def _load_evaluate(name: str) -> Any:
    import evaluate

    ref = name[len(EVALUATE_PREFIX) :]
    try:
        return evaluate.load(ref)
    except Exception as exc:  # evaluate raises many kinds (FileNotFoundError, ConnectionError...)
        raise ConfigError(
            f"metrics: {name!r} could not be loaded with evaluate.load({ref!r}) "
            f"({type(exc).__name__}: {' '.join(str(exc).split())[:300]}). A hub metric needs "
            "network once (it is cached after); offline, name a local metric folder or script, "
            f"e.g. '{EVALUATE_PREFIX}./metrics/my_metric'."
        ) from None


def load_evaluate_metrics(names: Iterable[str]) -> None:
    """Load the task's evaluate metrics now (before training), so a bad name fails at once."""
    for name in names:
        if name.startswith(EVALUATE_PREFIX):
            _load_evaluate(name)


def _evaluate_value(name: str, preds: np.ndarray, labels: np.ndarray) -> float:
    result = _load_evaluate(name).compute(predictions=preds.tolist(), references=labels.tolist())
    numbers = {k: v for k, v in (result or {}).items() if isinstance(v, int | float)}
    if len(numbers) != 1:
        raise ConfigError(
            f"metrics: {name!r} returned {sorted(result or {})}; a task metric "
            "must return exactly one number. Wrap it in a local metric that "
            "returns the one you want."
        )
    return float(next(iter(numbers.values())))
