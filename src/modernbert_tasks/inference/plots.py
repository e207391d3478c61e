"""Evaluation pictures: a confusion matrix and a reliability diagram (before/after calibration).

`write_evaluation_plots(model, folder, ...)` scores labelled data like `FineTunedModel.evaluate`
and writes ``confusion_matrix.png`` (single-label tasks) and ``reliability.png``. matplotlib is
an optional extra (``pip install 'modernbert-tasks[plot]'``); without it the call fails at once,
before any data is read, with a one-line install hint.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import calibration
from ..errors import ConfigError, hint

if TYPE_CHECKING:
    from .predictor import FineTunedModel

__all__ = [
    "PLOT_HINT",
    "require_matplotlib",
    "write_evaluation_plots",
    "plot_confusion_matrix",
    "plot_reliability",
]

PLOT_HINT = (
    "Plots need matplotlib, which is not installed: pip install 'modernbert-tasks[plot]' "
    "(or pip install matplotlib)."
)


def require_matplotlib():
    """pyplot on the file-only Agg backend, or a ConfigError with the install hint."""
    try:
        import matplotlib
    except ImportError:
        raise ConfigError(PLOT_HINT) from None
    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    return plt


def plot_confusion_matrix(matrix: list[list[int]], labels: tuple[str, ...], path: Path) -> Path:
    plt = require_matplotlib()
    cm = np.asarray(matrix)
    size = max(4.0, 0.6 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(
                j,
                i,
                str(cm[i, j]),
                ha="center",
                va="center",
                color="white" if cm[i, j] > cm.max() / 2 else "black",
            )
    ax.set_title(f"Confusion matrix ({int(cm.sum())} examples)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _bins(
    probs: np.ndarray, labels: np.ndarray, problem_type: str, n_bins: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    confidence, hit = calibration.confidence_and_hit(probs, labels, problem_type)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, n_bins - 1)
    conf = np.array([confidence[which == b].mean() if (which == b).any() else np.nan for b in range(n_bins)])
    acc = np.array([hit[which == b].mean() if (which == b).any() else np.nan for b in range(n_bins)])
    count = np.bincount(which, minlength=n_bins)
    return conf, acc, count


def plot_reliability(
    logits: np.ndarray,
    labels: np.ndarray,
    problem_type: str,
    temperature: float,
    path: Path,
    n_bins: int = calibration.N_BINS,
) -> Path:
    """Accuracy against confidence per bin, raw and temperature-scaled, with their ECE."""
    plt = require_matplotlib()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfect calibration")
    curves = [("before", 1.0)] + ([("after", temperature)] if temperature != 1.0 else [])
    for name, t in curves:
        probs = calibration.probabilities(logits, problem_type, t)
        ece = calibration.expected_calibration_error(probs, labels, problem_type, n_bins)
        conf, acc, _ = _bins(probs, labels, problem_type, n_bins)
        shown = ~np.isnan(conf)
        label = f"{name} (T={t:.3g}, ECE {ece:.4f})" if name == "after" else (f"{name} (ECE {ece:.4f})")
        ax.plot(conf[shown], acc[shown], marker="o", label=label)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence of the predicted label")
    ax.set_ylabel("accuracy")
    ax.set_title(f"Reliability diagram ({len(labels)} examples, {n_bins} bins)")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_evaluation_plots(
    model: FineTunedModel,
    folder: str | os.PathLike,
    data: Any = None,
    *,
    split: str = "eval",
    data_dir: str | os.PathLike | None = None,
    data_files: Any = None,
    batch_size: int = 64,
) -> dict[str, Path]:
    """Score labelled data (the same arguments as `evaluate`) and write the PNGs to `folder`.

    Returns {"confusion_matrix": path (single-label only), "reliability": path}."""
    require_matplotlib()  # fail before any work
    if model.problem_type == "regression":
        raise ConfigError("Plots show classification results; this model does regression.")
    if model.long_text.chunks:
        raise ConfigError(
            "Plots score each text once, up to max_length, and this model reads long texts in "
            "windows (long_text='chunks'), so they would not show the figures evaluate prints. "
            + hint(
                "Load it with long_text='truncate' to plot.",
                "Pass --long-text truncate with --plot, or leave --plot out.",
            )
        )
    task = model.evaluation_task
    ds = model.labelled_data(data, split=split, data_dir=data_dir, data_files=data_files)
    first = list(ds[task.text_columns[0]])
    second = list(ds[task.text_columns[1]]) if task.is_pair else None
    # fp32, as evaluate() scores: the plots show the figures it prints
    logits = model.logits(first, second, batch_size=batch_size, show_progress=None)
    labels = np.asarray(ds["label"])
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    if model.problem_type != "multi_label_classification":
        from sklearn.metrics import confusion_matrix

        probs = calibration.calibrate(logits, model.manifest, model.problem_type)
        chosen = calibration.decide(probs, model.manifest, model.problem_type)
        matrix = confusion_matrix(labels.astype(np.int64), chosen, labels=list(range(len(model.labels))))
        written["confusion_matrix"] = plot_confusion_matrix(
            matrix.tolist(), model.labels, out / "confusion_matrix.png"
        )
    entry = (model.manifest or {}).get("calibration") or {}
    written["reliability"] = plot_reliability(
        logits, labels, model.problem_type, float(entry.get("temperature", 1.0)), out / "reliability.png"
    )
    return written
