"""From out-of-sample probabilities to likely label errors, with cleanlab.

`find_issues` ranks the rows whose given label the held-out model doubts (cleanlab's
`find_label_issues`, ranked by self-confidence: the probability of the given label), and
estimates the confident joint and the noise rate of every class. `write_noise_plot` draws the
per-class noise matrix when matplotlib is installed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError

__all__ = [
    "FILTERS",
    "RANKED_BY",
    "LabelIssues",
    "require_cleanlab",
    "check_filter",
    "find_issues",
    "write_noise_plot",
]

logger = logging.getLogger("modernbert_tasks")

# cleanlab.filter.find_label_issues(filter_by=...): which rows count as issues
FILTERS = (
    "prune_by_noise_rate",
    "prune_by_class",
    "both",
    "confident_learning",
    "predicted_neq_given",
    "low_normalized_margin",
    "low_self_confidence",
)
RANKED_BY = "self_confidence"  # worst first: the lowest probability of the given label
INSTALL_HINT = "pip install 'modernbert-tasks[audit]' (or: pip install 'cleanlab>=2.9')"


def require_cleanlab() -> None:
    """A one-line install hint when cleanlab is missing (checked before any training)."""
    try:
        import cleanlab  # noqa: F401
    except ImportError:
        raise ConfigError(
            f"The label audit needs cleanlab, which is not installed: {INSTALL_HINT}."
        ) from None


@dataclass
class LabelIssues:
    """What cleanlab found. Row indices are positions in the audited training split.

    ranked: the flagged rows, worst first. quality: every row's label quality (0..1, low is
    suspicious). given_probability: every row's probability of its given label (multi-label:
    of its least likely given state). suggested: every row's most likely label(s).
    noise_rate: per label, the estimated share of rows given that label whose label is wrong
    (multi-label: whose membership in it is wrong). confident_joint: cleanlab's counts of
    (given, likely true) pairs; noise_matrix: P(given | true), single-label only.
    """

    ranked: list[int]
    quality: np.ndarray
    given_probability: np.ndarray
    suggested: list[list[int]]
    noise_rate: dict[str, float]
    confident_joint: list[Any]
    noise_matrix: list[list[float]] | None = None
    filter_by: str = "prune_by_noise_rate"


def check_filter(filter_by: str) -> str:
    if filter_by not in FILTERS:
        raise ConfigError(
            f"filter_by={filter_by!r} is not a cleanlab filter; expected one of {', '.join(FILTERS)} "
            "(CLI: --filter-by), e.g. filter_by='prune_by_noise_rate'."
        )
    return filter_by


def find_issues(
    labels: Sequence[Any],
    probabilities: np.ndarray,
    names: Sequence[str],
    multi_label: bool,
    filter_by: str = "prune_by_noise_rate",
) -> LabelIssues:
    """`labels`: class ids (single-label) or multi-hot rows (multi-label); `probabilities`:
    the out-of-sample probabilities, one row per training row."""
    require_cleanlab()
    check_filter(filter_by)
    import cleanlab.count
    import cleanlab.filter

    probs = np.asarray(probabilities, dtype=np.float64)
    if multi_label:
        return _multi_label(np.asarray(labels, dtype=np.float64), probs, names, filter_by)
    given = np.asarray(labels, dtype=np.int64)
    probs = np.clip(probs, 1e-12, 1.0)
    probs = probs / probs.sum(axis=1, keepdims=True)
    ranked = cleanlab.filter.find_label_issues(
        given, probs, filter_by=filter_by, return_indices_ranked_by=RANKED_BY
    )
    given_p = probs[np.arange(len(given)), given]
    joint_counts = cleanlab.count.compute_confident_joint(given, probs)
    _, noise_matrix, _ = cleanlab.count.estimate_latent(joint_counts, given)
    joint = cleanlab.count.estimate_joint(given, probs, confident_joint=joint_counts)
    noise_rate = {}
    for k, name in enumerate(names):
        row = joint[k].sum()
        noise_rate[name] = float(1 - joint[k, k] / row) if row > 0 else 0.0
    return LabelIssues(
        ranked=[int(i) for i in ranked],
        quality=given_p,
        given_probability=given_p,
        suggested=[[int(k)] for k in probs.argmax(axis=1)],
        noise_rate=noise_rate,
        confident_joint=joint_counts.astype(int).tolist(),
        noise_matrix=np.asarray(noise_matrix, dtype=float).T.round(4).tolist(),
        filter_by=filter_by,
    )


def _multi_label(
    multi_hot: np.ndarray, probs: np.ndarray, names: Sequence[str], filter_by: str
) -> LabelIssues:
    import cleanlab.count
    import cleanlab.multilabel_classification as mlc
    import cleanlab.multilabel_classification.filter as mlc_filter

    given = [[int(k) for k in np.flatnonzero(row > 0.5)] for row in multi_hot]
    probs = np.clip(probs, 1e-6, 1 - 1e-6)
    ranked = mlc_filter.find_label_issues(
        given, probs, filter_by=filter_by, return_indices_ranked_by=RANKED_BY
    )
    quality = mlc.get_label_quality_scores(given, probs)
    state_p = np.where(multi_hot > 0.5, probs, 1 - probs)  # probability of each given state
    joint_counts = cleanlab.count.compute_confident_joint(given, probs, multi_label=True)
    noise_rate = {}
    for k, name in enumerate(names):  # joint_counts[k]: [[given 0 true 0, 0->1], [1->0, 1->1]]
        counts = np.asarray(joint_counts[k], dtype=float)
        total = counts.sum()
        noise_rate[name] = float((counts[0, 1] + counts[1, 0]) / total) if total else 0.0
    return LabelIssues(
        ranked=[int(i) for i in ranked],
        quality=np.asarray(quality),
        given_probability=state_p.min(axis=1),
        suggested=[[int(k) for k in np.flatnonzero(row > 0.5)] for row in probs],
        noise_rate=noise_rate,
        confident_joint=np.asarray(joint_counts).astype(int).tolist(),
        noise_matrix=None,
        filter_by=filter_by,
    )


def write_noise_plot(issues: LabelIssues, names: Sequence[str], path: Path) -> Path | None:
    """noise_matrix.png: P(given label | true label) as a heatmap (single-label), or each
    label's estimated noise rate as bars (multi-label). None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.info("matplotlib is not installed: no noise_matrix.png (pip install matplotlib).")
        return None
    size = max(4.0, 0.6 * len(names) + 2)
    fig, ax = plt.subplots(figsize=(size, size * 0.85))
    try:
        if issues.noise_matrix is not None:
            matrix = np.asarray(issues.noise_matrix)
            image = ax.imshow(matrix, cmap="Blues", vmin=0, vmax=1)
            ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
            ax.set_yticks(range(len(names)), names)
            ax.set_xlabel("given label")
            ax.set_ylabel("estimated true label")
            ax.set_title("Estimated noise matrix P(given | true)")
            for i in range(len(names)):
                for j in range(len(names)):
                    ax.text(
                        j,
                        i,
                        f"{matrix[i, j]:.2f}",
                        ha="center",
                        va="center",
                        color="white" if matrix[i, j] > 0.5 else "black",
                        fontsize=8,
                    )
            fig.colorbar(image, ax=ax, fraction=0.046)
        else:
            rates = [issues.noise_rate[n] for n in names]
            ax.barh(range(len(names)), rates, color="tab:blue")
            ax.set_yticks(range(len(names)), names)
            ax.set_xlabel("estimated share of rows with this label wrong")
            ax.set_title("Estimated noise rate per label")
        fig.tight_layout()
        fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)
    return path
