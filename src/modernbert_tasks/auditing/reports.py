"""What an audit writes: label_issues.csv (worst first), audit.json (the summary) and, on
request, a cleaned copy of the training file in its own format."""

from __future__ import annotations

import csv
import dataclasses
import logging
import os
from pathlib import Path
from typing import Any

from ..errors import ConfigError, hint
from ..task import Task
from ..training.exclusion import ROW_COLUMN, TEXT_COLUMN, write_row_file
from ..training.task_source import data_files_of
from .folds import ISSUES_FILE, write_json
from .issues import RANKED_BY, LabelIssues

__all__ = ["ISSUE_COLUMNS", "write_issues", "write_summary", "cleaned_source", "write_cleaned_copy"]

logger = logging.getLogger(__name__)

ISSUE_COLUMNS = (
    ROW_COLUMN,
    TEXT_COLUMN,
    "given_label",
    "suggested_label",
    "given_label_probability",
    "quality",
)


def _label_text(value: Any, labels: list[str], multi_label: bool) -> str:
    if multi_label:
        return ",".join(labels[k] for k, v in enumerate(value) if v > 0.5)
    return labels[int(value)]


def write_issues(
    path: Path, issues: LabelIssues, texts: list[str], given: list[Any], labels: list[str], multi_label: bool
) -> Path:
    rows = []
    for i in issues.ranked:
        suggested = issues.suggested[i]
        rows.append(
            {
                ROW_COLUMN: i,
                TEXT_COLUMN: texts[i],
                "given_label": _label_text(given[i], labels, multi_label),
                "suggested_label": ",".join(labels[k] for k in suggested),
                "given_label_probability": f"{issues.given_probability[i]:.4f}",
                "quality": f"{issues.quality[i]:.4f}",
            }
        )
    return write_row_file(path, rows, ISSUE_COLUMNS)


def write_summary(
    path: Path,
    plan: dict[str, Any],
    issues: LabelIssues,
    labels: list[str],
    task: Task,
    probabilities: str = "held_out",
) -> Path:
    summary = {
        "task": task.name,
        "problem_type": task.problem_type,
        "rows": plan["rows"],
        "folds": plan["folds"],
        "repeats": plan.get("repeats", 1),
        "seed": plan["seed"],
        "labels": labels,
        "flagged": len(issues.ranked),
        "method": {
            "probabilities": probabilities,
            "filter_by": issues.filter_by,
            "ranked_by": RANKED_BY,
            "cleanlab": _cleanlab_version(),
        },
        "noise_rate": {k: round(v, 4) for k, v in issues.noise_rate.items()},
        "confident_joint": issues.confident_joint,
        "confident_joint_axes": (
            "[given label][likely true label]"
            if issues.noise_matrix is not None
            else "[label][given 0/1][likely true 0/1]"
        ),
        "noise_matrix": issues.noise_matrix,
        "noise_matrix_axes": "[true label][given label]: P(given | true)"
        if issues.noise_matrix is not None
        else None,
        "issues_file": ISSUES_FILE,
    }
    write_json(path, summary)
    return path


def cleaned_source(task: Task, opts: Any) -> Path:
    """The local training file a cleaned copy is made from; refuses hub data (checked before
    the audit trains anything)."""
    from ..data import find_split_files

    values = {f.name: getattr(opts, f.name) for f in dataclasses.fields(opts)}
    files = data_files_of(values) or {}
    source = files.get("train")
    if source is None and opts.data_dir:
        source = find_split_files(opts.data_dir, task.splits).get("train")
    if source is None:
        raise ConfigError(
            "write_cleaned=True copies a local training file, and this data comes "
            "from the hub. Train with "
            + hint("exclude_rows='runs/audit/label_issues.csv'", "--exclude-rows runs/audit/label_issues.csv")
            + " instead."
        )
    return Path(source)


def write_cleaned_copy(source: Path, opts: Any, out: Path, flagged: list[int]) -> Path:
    """The training file without the flagged rows, in its own format, every column kept."""
    from ..data import read_data_file

    raw = read_data_file(source, opts.cache_dir and os.fspath(opts.cache_dir))
    doomed = set(flagged)
    kept = raw.select([i for i in range(len(raw)) if i not in doomed])
    ext = source.suffix.lower()
    target = out / f"{source.stem}.cleaned{source.suffix}"
    if ext in (".csv", ".tsv"):
        tab = ext == ".tsv"
        with open(target, "w", newline="", encoding="utf-8") as fh:
            if tab:  # GLUE-style TSV: no quoting at all, as read_data_file reads it
                writer = csv.writer(
                    fh, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_NONE, quotechar=None
                )
            else:
                writer = csv.writer(fh, delimiter=",", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
            writer.writerow(kept.column_names)
            for record in kept:
                writer.writerow(["" if record[c] is None else record[c] for c in kept.column_names])
    elif ext == ".parquet":
        kept.to_parquet(os.fspath(target))
    else:  # .json / .jsonl: one object a line
        target = target.with_suffix(".jsonl")
        kept.to_json(os.fspath(target), lines=True, force_ascii=False)
    logger.info(
        "Wrote %s: %d of %d rows (the %d flagged rows removed).", target, len(kept), len(raw), len(doomed)
    )
    return target


def _cleanlab_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("cleanlab")
    except Exception:  # noqa: BLE001 - only a record
        return None
