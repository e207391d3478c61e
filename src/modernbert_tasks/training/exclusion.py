"""`exclude_rows=` / `exclude_top=`: train without the rows a label audit flagged.

    fine_tune(train_file="tickets.csv", exclude_rows="runs/audit/label_issues.csv", exclude_top=50)
    modernbert-tasks train --train-file tickets.csv --exclude-rows runs/audit/label_issues.csv

The file is a CSV with a ``row`` column (the 0-based index of a data row in the training file,
header not counted, as pandas numbers them) and a ``text`` column holding that row's text (two
text columns joined by `PAIR_JOIN`). `audit` writes such a file, worst row first
(label_issues.csv); any CSV with these two columns works. Every listed row is checked against
the training split before training: a row past its end, or a text that differs, means the file
belongs to other data, and the run is refused. When an ``audit.json`` lies beside the file, its
row count must match too.

The rows are removed from the training split as loaded, before an evaluation share is held
out and before max_train_samples; the manifest records the file's name and how many rows went.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, DataError, hint

if TYPE_CHECKING:
    import datasets

    from ..options import TrainOptions
    from ..task import Task

__all__ = [
    "ROW_COLUMN",
    "TEXT_COLUMN",
    "PAIR_JOIN",
    "row_text",
    "read_row_file",
    "write_row_file",
    "exclude_flagged_rows",
    "excluded_summary",
]

logger = logging.getLogger("modernbert_tasks")

ROW_COLUMN = "row"
TEXT_COLUMN = "text"
PAIR_JOIN = " [SEP] "  # how the text of a two-column (pair) row is written in one cell
AUDIT_SUMMARY = "audit.json"  # written by `audit` beside label_issues.csv: holds "rows"


def row_text(example: Mapping[str, Any], text_columns: Sequence[str]) -> str:
    """The text of one row as a row file holds it."""
    return PAIR_JOIN.join("" if example[c] is None else str(example[c]) for c in text_columns)


def write_row_file(
    path: str | os.PathLike, rows: Sequence[Mapping[str, Any]], columns: Sequence[str]
) -> Path:
    """A CSV of `rows` (dicts with at least row and text), written atomically."""
    path = Path(path)
    staged = path.with_suffix(f".{os.getpid()}.tmp")
    with open(staged, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(staged, path)
    return path


def read_row_file(path: str | os.PathLike, top: int | None = None) -> list[tuple[int, str]]:
    """(row, text) of the file's first `top` rows (all of them when None)."""
    file = Path(path).expanduser()
    where = hint(f"exclude_rows={os.fspath(path)!r}", f"--exclude-rows {os.fspath(path)}")
    if not file.is_file():
        raise ConfigError(
            f"{where}: no such file. Pass the label_issues.csv an audit wrote "
            "(modernbert-tasks audit ... writes it into its output folder)."
        )
    try:
        return _read_rows(file, where, top)
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{where} is not UTF-8 text ({exc.reason} at byte {exc.start}). Save it as "
            "'CSV UTF-8', or pass the label_issues.csv the audit wrote."
        ) from None


def _read_rows(file: Path, where: str, top: int | None) -> list[tuple[int, str]]:
    # utf-8-sig: a spreadsheet's "CSV UTF-8" starts with a byte-order mark
    with open(file, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in (ROW_COLUMN, TEXT_COLUMN) if c not in (reader.fieldnames or [])]
        if missing:
            raise ConfigError(
                f"{where} has no {' or '.join(repr(c) for c in missing)} column "
                f"(its columns: {reader.fieldnames}). Expected the label_issues.csv "
                "an audit wrote, or a CSV with the columns row and text."
            )
        out: list[tuple[int, str]] = []
        for line, record in enumerate(reader, start=2):
            if top is not None and len(out) >= top:
                break
            try:
                row = int(record[ROW_COLUMN])
            except (TypeError, ValueError):
                raise ConfigError(
                    f"{where}, line {line}: row {record[ROW_COLUMN]!r} is not a "
                    "row number; expected an integer >= 0."
                ) from None
            if row < 0:
                raise ConfigError(
                    f"{where}, line {line}: row {row} is negative; expected the 0-based index of a data row."
                )
            out.append((row, record[TEXT_COLUMN] or ""))
    return out


def exclude_flagged_rows(train: datasets.Dataset, task: Task, opts: TrainOptions) -> datasets.Dataset:
    """The training split without the rows `opts.exclude_rows` lists (its first
    `opts.exclude_top`), after checking that the file describes this data."""
    if opts.exclude_rows is None:
        if opts.exclude_top is not None:
            raise ConfigError(
                f"exclude_top={opts.exclude_top} needs the file of rows to take them "
                "from: "
                + hint(
                    "exclude_rows='runs/audit/label_issues.csv'", "--exclude-rows runs/audit/label_issues.csv"
                )
                + "."
            )
        return train
    if opts.exclude_top is not None and opts.exclude_top < 0:
        raise ConfigError(
            f"exclude_top={opts.exclude_top} is negative; expected the number of "
            "rows to exclude from the top of the file (e.g. exclude_top=50), or "
            "None for all of them."
        )
    where = hint(
        f"exclude_rows={os.fspath(opts.exclude_rows)!r}", f"--exclude-rows {os.fspath(opts.exclude_rows)}"
    )
    _check_audit_size(Path(opts.exclude_rows).expanduser(), len(train), where)
    listed = read_row_file(opts.exclude_rows, opts.exclude_top)
    for row, text in listed:
        if row >= len(train):
            raise DataError(
                f"{where} lists row {row}, but the training data has {len(train)} "
                f"rows (0..{len(train) - 1}): the file was written for other data. Audit this "
                "data again, or pass the matching training file."
            )
        actual = row_text(train[row], task.text_columns)
        if actual.strip() != text.strip():
            raise DataError(
                f"{where} does not match the training data at row {row}: the file "
                f"says {_clip(text)!r}, the data holds {_clip(actual)!r}. The file was "
                "written for other data (or the data changed since). Audit this data "
                "again, or pass the matching training file."
            )
    doomed = {row for row, _ in listed}
    if len(doomed) == len(train):
        raise DataError(
            f"{where} would exclude all {len(train)} training rows. Pass "
            "exclude_top=N to exclude only the N most likely errors."
        )
    logger.info(
        "Excluding %d of %d training rows listed in %s.",
        len(doomed),
        len(train),
        Path(opts.exclude_rows).name,
    )
    return train.select([i for i in range(len(train)) if i not in doomed])


def excluded_summary(opts: TrainOptions) -> dict[str, Any] | None:
    """The manifest's record of the exclusion: {"file", "rows", "exclude_top"} or None."""
    if opts.exclude_rows is None:
        return None
    rows = {row for row, _ in read_row_file(opts.exclude_rows, opts.exclude_top)}
    return {"file": Path(opts.exclude_rows).name, "rows": len(rows), "exclude_top": opts.exclude_top}


def _check_audit_size(file: Path, rows: int, where: str) -> None:
    summary = file.parent / AUDIT_SUMMARY
    if not (file.is_file() and summary.is_file()):
        return
    try:
        audited = json.loads(summary.read_text(encoding="utf-8")).get("rows")
    except (OSError, ValueError, AttributeError):
        return  # not an audit's summary: the text checks still apply
    if isinstance(audited, int) and audited != rows:
        raise DataError(
            f"{where} comes from an audit of {audited} rows (see {str(summary)!r}), "
            f"but the training data has {rows} rows: the file was written for other "
            "data. Audit this data again, or pass the matching training file."
        )


def _clip(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."
