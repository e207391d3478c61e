"""Calibrated probabilities: temperature scaling, a tuned decision threshold, ECE and Brier.

Temperature scaling (Guo et al. 2017) divides the logits by one number T fitted to minimise
the negative log-likelihood on the evaluation split. Dividing by T > 0 keeps the order of the
logits, so the predicted label of a single-label task never changes; only how confident the
probabilities are does. A decision threshold, by contrast, changes binary and multi-label
decisions: the (positive) label is given when its probability reaches the threshold. A
multi-label task may have one threshold per label ("tune-per-label": each label's F1).

The fitted values live in the manifest under "calibration":
``{"temperature": T, "decision_threshold": t or null, "label_thresholds": [t per label] (only
with "tune-per-label"), ...}``; `calibrate(logits, manifest)` and
`decide(probs, manifest, problem_type)` are what `predict` applies. numpy/scipy only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .task import Task

__all__ = [
    "probabilities",
    "nll",
    "fit_temperature",
    "expected_calibration_error",
    "brier_score",
    "decisions",
    "tune_threshold",
    "tune_label_thresholds",
    "stored_threshold",
    "calibrate",
    "decide",
    "fit_calibration",
    "calibration_metrics",
    "evaluation_report",
    "confidence_and_hit",
    "close_calls",
    "N_BINS",
    "TEMPERATURE_RANGE",
    "PER_LABEL",
    "MIN_POSITIVES",
]

N_BINS = 15
TEMPERATURE_RANGE = (0.05, 20.0)  # a search interval wide enough for any sane model
MULTI = "multi_label_classification"
PER_LABEL = "tune-per-label"  # decision_threshold: a threshold per label (multi-label)
MIN_POSITIVES = 5  # ... for labels with at least this many positives in the evaluation split
_GRID = np.round(np.arange(0.01, 1.0, 0.01), 2)  # the thresholds tuning tries


def probabilities(logits: np.ndarray, problem_type: str, temperature: float = 1.0) -> np.ndarray:
    """Softmax (single-label) or sigmoid (multi-label) of logits / temperature, float64."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    if problem_type == MULTI:
        return 1.0 / (1.0 + np.exp(-z))
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def nll(logits: np.ndarray, labels: np.ndarray, problem_type: str, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood (cross-entropy; BCE per label cell for multi-label)."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    if problem_type == MULTI:
        y = np.asarray(labels, dtype=np.float64)
        # log(1 + e^z) - y z, stable for large |z|
        return float(np.mean(np.logaddexp(0.0, z) - y * z))
    y = np.asarray(labels, dtype=np.int64)
    log_norm = np.logaddexp.reduce(z, axis=-1)
    return float(np.mean(log_norm - z[np.arange(len(y)), y]))


def fit_temperature(logits: np.ndarray, labels: np.ndarray, problem_type: str) -> float:
    """The T in TEMPERATURE_RANGE that minimises `nll` (a 1-D bounded search on log T)."""
    from scipy.optimize import minimize_scalar

    lo, hi = (math.log(t) for t in TEMPERATURE_RANGE)
    found = minimize_scalar(
        lambda log_t: nll(logits, labels, problem_type, math.exp(log_t)),
        bounds=(lo, hi),
        method="bounded",
        options={"xatol": 1e-4},
    )
    best = math.exp(found.x)
    # never worse than doing nothing (the search is bounded and approximate)
    return best if nll(logits, labels, problem_type, best) <= nll(logits, labels, problem_type) else 1.0


def confidence_and_hit(
    probs: np.ndarray, labels: np.ndarray, problem_type: str
) -> tuple[np.ndarray, np.ndarray]:
    if problem_type == MULTI:  # every (example, label) cell is one binary prediction
        p = probs.ravel()
        y = np.asarray(labels).ravel() > 0.5
        predicted = p >= 0.5
        return np.where(predicted, p, 1 - p), predicted == y
    top = probs.argmax(axis=-1)
    return probs.max(axis=-1), top == np.asarray(labels)


def expected_calibration_error(
    probs: np.ndarray, labels: np.ndarray, problem_type: str, n_bins: int = N_BINS
) -> float:
    """ECE: |accuracy - confidence| of the predicted label, averaged over 15 equal-width
    confidence bins weighted by their size (Guo et al. 2017)."""
    confidence, hit = confidence_and_hit(np.asarray(probs), labels, problem_type)
    if not len(confidence):
        return float("nan")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, n_bins - 1)
    total = 0.0
    for b in range(n_bins):
        inside = bins == b
        if inside.any():
            total += inside.sum() * abs(hit[inside].mean() - confidence[inside].mean())
    return float(total / len(confidence))


def brier_score(probs: np.ndarray, labels: np.ndarray, problem_type: str) -> float:
    """Mean squared error of the probabilities against one-hot labels, summed over classes
    (Brier 1950; 0 is perfect, 2 the worst). Multi-label: the mean over label cells."""
    probs = np.asarray(probs, dtype=np.float64)
    if problem_type == MULTI:
        return float(np.mean((probs - np.asarray(labels, dtype=np.float64)) ** 2))
    onehot = np.eye(probs.shape[1])[np.asarray(labels, dtype=np.int64)]
    return float(np.mean(np.sum((probs - onehot) ** 2, axis=1)))


def _is_binary(problem_type: str, probs: np.ndarray) -> bool:
    return problem_type != MULTI and probs.ndim == 2 and probs.shape[1] == 2


Threshold = float | np.ndarray | None  # one, one per label (multi-label), or none


def decisions(probs: np.ndarray, problem_type: str, threshold: Threshold) -> np.ndarray:
    """Predicted label ids (single-label) or a 0/1 matrix (multi-label; `threshold` may be
    one per label)."""
    if problem_type == MULTI:
        return (
            (probs >= threshold).astype(np.int64) if threshold is not None else (probs > 0.5).astype(np.int64)
        )
    t = 0.5 if threshold is None else float(threshold)
    if threshold is not None and _is_binary(problem_type, probs):
        return (probs[:, 1] >= t).astype(np.int64)
    return probs.argmax(axis=-1)


def tune_threshold(
    probs: np.ndarray, labels: np.ndarray, problem_type: str, metric: str, greater_is_better: bool = True
) -> float:
    """The threshold on a 0.01 grid that scores best on `metric` (ties: nearest to 0.5).

    Binary: on the positive class (label id 1). Multi-label: one threshold for every label
    (`tune_label_thresholds` gives each label its own, where it has enough positives)."""
    from .metrics import METRICS

    y = np.asarray(labels).astype(np.int64)
    scores = np.array([METRICS[metric](decisions(probs, problem_type, t), y) for t in _GRID])
    return _best(scores if greater_is_better else -scores)


def _best(scores: np.ndarray) -> float:
    """The grid threshold with the highest score; ties: the one nearest 0.5."""
    best = np.flatnonzero(scores == scores.max())
    return float(_GRID[best[np.argmin(np.abs(_GRID[best] - 0.5))]])


def tune_label_thresholds(
    probs: np.ndarray, labels: np.ndarray, fallback: float, min_positives: int = MIN_POSITIVES
) -> tuple[list[float], list[int]]:
    """(one threshold per label, the label ids that kept `fallback`): each label's threshold on
    the 0.01 grid maximises that label's F1 (ties: nearest 0.5); a label with fewer than
    `min_positives` positives keeps `fallback`, as too few examples would only be fitted."""
    y = np.asarray(labels) > 0.5
    thresholds, kept = [], []
    for k in range(probs.shape[1]):
        positives = int(y[:, k].sum())
        if positives < min_positives:
            thresholds.append(float(fallback))
            kept.append(k)
            continue
        chosen = probs[:, k, None] >= _GRID[None, :]  # examples x thresholds
        tp = (chosen & y[:, k, None]).sum(axis=0)
        fp = chosen.sum(axis=0) - tp
        thresholds.append(_best(2 * tp / (2 * tp + fp + (positives - tp))))
    return thresholds, kept


# --- what predict applies -----------------------------------------------------------------------
def _entry(manifest: Mapping[str, Any] | None) -> Mapping[str, Any]:
    entry = (manifest or {}).get("calibration") or {}
    return entry if isinstance(entry, Mapping) else {}


def stored_threshold(manifest: Mapping[str, Any] | None) -> Threshold:
    """What decides: the per-label thresholds when stored, else the one threshold, else None."""
    entry = _entry(manifest)
    if entry.get("label_thresholds") is not None:
        return np.asarray(entry["label_thresholds"], dtype=np.float64)
    threshold = entry.get("decision_threshold")
    return None if threshold is None else float(threshold)


def calibrate(logits: np.ndarray, manifest: Mapping[str, Any] | None, problem_type: str) -> np.ndarray:
    """Probabilities from logits with the manifest's temperature (1 when there is none)."""
    return probabilities(logits, problem_type, float(_entry(manifest).get("temperature", 1.0)))


def close_calls(
    logits: np.ndarray, manifest: Mapping[str, Any] | None, problem_type: str, margin: float
) -> np.ndarray:
    """Rows whose decision is within `margin` (probability) of going the other way: the top-2
    gap (single-label), the distance to the decision threshold (binary with a threshold, and
    every label of a multi-label task). Regression has no decision: every row is close."""
    if problem_type == "regression":
        return np.ones(len(logits), dtype=bool)
    probs = calibrate(logits, manifest, problem_type)
    threshold = stored_threshold(manifest)
    if problem_type == MULTI:
        t = 0.5 if threshold is None else threshold
        return np.asarray((np.abs(probs - t) < margin).any(axis=-1))
    if threshold is not None and _is_binary(problem_type, probs):
        return np.abs(probs[:, 1] - float(threshold)) < margin
    top2 = np.sort(probs, axis=-1)[:, -2:]
    return (top2[:, 1] - top2[:, 0]) < margin


def decide(probs: np.ndarray, manifest: Mapping[str, Any] | None, problem_type: str) -> np.ndarray:
    """Decisions with the manifest's decision threshold(s) (argmax / 0.5 when there is none)."""
    return decisions(probs, problem_type, stored_threshold(manifest))


# --- fitting after training ---------------------------------------------------------------------
def calibration_metrics(
    logits: np.ndarray, labels: np.ndarray, problem_type: str, temperature: float, prefix: str = ""
) -> dict[str, float]:
    """ECE and Brier of the raw probabilities and of the temperature-scaled ones."""
    raw = probabilities(logits, problem_type)
    out = {
        f"{prefix}ece": expected_calibration_error(raw, labels, problem_type),
        f"{prefix}brier": brier_score(raw, labels, problem_type),
    }
    if temperature != 1.0:
        scaled = probabilities(logits, problem_type, temperature)
        out[f"{prefix}ece_calibrated"] = expected_calibration_error(scaled, labels, problem_type)
        out[f"{prefix}brier_calibrated"] = brier_score(scaled, labels, problem_type)
    return out


def fit_calibration(
    logits: np.ndarray,
    labels: np.ndarray,
    task: Task,
    *,
    temperature_scaling: bool,
    decision_threshold: float | str | None,
    min_positives: int = MIN_POSITIVES,
) -> dict[str, Any]:
    """The manifest's "calibration" entry, fitted on the evaluation split's logits.

    "tune-per-label" tunes the one threshold as "tune" does (on the main metric), then each
    label's own (`tune_label_thresholds`); labels with too few positives keep the one."""
    problem_type = task.problem_type
    temperature = fit_temperature(logits, labels, problem_type) if temperature_scaling else 1.0
    threshold = decision_threshold
    probs = probabilities(logits, problem_type, temperature)
    if threshold in ("tune", PER_LABEL):
        threshold = tune_threshold(probs, labels, problem_type, task.main_metric, task.greater_is_better)
    per_label: dict[str, Any] = {}
    if decision_threshold == PER_LABEL:
        assert isinstance(threshold, float)  # tuned just above
        values, kept = tune_label_thresholds(probs, labels, threshold, min_positives)
        per_label = {
            "label_thresholds": values,
            "labels_kept_global": [task.labels[k] for k in kept],
            "threshold_min_positives": min_positives,
        }
    return {
        "temperature": temperature,
        "decision_threshold": threshold,
        **per_label,
        "fitted_on": "eval",
        "num_examples": int(len(labels)),
        "nll": nll(logits, labels, problem_type),
        "nll_calibrated": nll(logits, labels, problem_type, temperature),
        **calibration_metrics(logits, labels, problem_type, temperature),
    }


def evaluation_report(
    logits: np.ndarray,
    labels: np.ndarray,
    manifest: Mapping[str, Any] | None,
    problem_type: str,
    metrics: tuple[str, ...] = (),
) -> dict[str, float]:
    """What `FineTunedModel.evaluate` adds: ECE and Brier before and after the stored
    temperature, and with a stored decision threshold each metric at that threshold."""
    from .metrics import METRICS

    entry = _entry(manifest)
    temperature = float(entry.get("temperature", 1.0))
    out = calibration_metrics(logits, labels, problem_type, temperature)
    if "temperature" in entry:
        out["temperature"] = temperature
    threshold = entry.get("decision_threshold")
    if threshold is not None:
        out["decision_threshold"] = float(threshold)
        chosen = decide(calibrate(logits, manifest, problem_type), manifest, problem_type)
        for name in metrics:
            if name in METRICS:  # an evaluate: metric is scored at the default decision only
                out[f"{name}_at_threshold"] = METRICS[name](chosen, np.asarray(labels).astype(np.int64))
    return out
