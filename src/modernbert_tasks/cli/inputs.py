"""Inputs for `predict` from a file: one text per line (.txt, or "-" for standard input) or a
table with the task's text columns, each input with its line number so results line up.

Light: no torch. The command line's `predict --file` reads through here.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import DataError, hint, suggest

if TYPE_CHECKING:
    from ..task import Task

__all__ = ["is_line_file", "read_lines", "read_inputs", "read_numbered_inputs", "prediction_records"]

STDIN = "-"


def is_line_file(path: str) -> bool:
    """One text per line: standard input ("-") or a .txt file."""
    return path == STDIN or path.endswith(".txt")


def _named(path: str) -> str:
    return hint(repr(path), f"--file {path!r}")


def read_lines(path: str) -> list[str]:
    """The lines of a UTF-8 text file, or of standard input for "-"."""
    if path == STDIN:
        return sys.stdin.read().splitlines()
    try:
        return Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DataError(f"{_named(path)} not found.") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{_named(path)} is not UTF-8 ({exc}). Re-save it as UTF-8.") from None


def read_inputs(path: str, task: Task | None, lines: list[str] | None = None) -> list[Any]:
    """Texts (or pairs) from a .txt file / stdin (blank lines left out; `lines` if already read),
    or from a table file with the task's columns."""
    if is_line_file(path):
        if lines is None:
            lines = read_lines(path)
        texts = [line for line in lines if line.strip()]
        if not texts:
            raise DataError(f"{_named(path)} holds no text (one text per line expected).")
        if task is not None and task.is_pair:
            raise DataError(
                f"Task {task.name!r} classifies text pairs, which a .txt file cannot "
                f"hold. Use a TSV/JSONL file with columns {list(task.text_columns)}, "
                + hint("or (text_a, text_b) tuples.", "or --pair TEXT_A TEXT_B.")
            )
        return texts
    from ..data import read_data_file

    if not Path(path).is_file():
        raise DataError(f"{_named(path)} not found.")
    table = read_data_file(path)
    columns = (
        list(task.text_columns)
        if task is not None
        else (
            ["text", "text_pair"]
            if "text_pair" in table.column_names
            else [table.column_names[0]]
            if "text" not in table.column_names
            else ["text"]
        )
    )
    for column in columns:
        if column not in table.column_names:
            raise DataError(
                f"{_named(path)} has no column {column!r} (the model reads "
                f"{columns}); its columns are {table.column_names}."
                f"{suggest(column, table.column_names)}"
            )
    if len(columns) == 2:
        return list(zip(table[columns[0]], table[columns[1]], strict=True))
    return list(table[columns[0]])


def read_numbered_inputs(path: str, task: Task | None) -> tuple[list[Any], list[int], list[int]]:
    """(inputs, the line number of each, the numbers of blank lines left out).

    A .txt file or stdin numbers its lines from 1, blank ones included; a table numbers its
    data rows from 1 (header excluded) and has no blank lines."""
    if is_line_file(path):
        raw = read_lines(path)
        inputs = read_inputs(path, task, lines=raw)
        numbered = [n for n, line in enumerate(raw, start=1) if line.strip()]
        blanks = [n for n, line in enumerate(raw, start=1) if not line.strip()]
        return inputs, numbered, blanks
    inputs = read_inputs(path, task)
    return inputs, list(range(1, len(inputs) + 1)), []


def prediction_records(
    inputs: Sequence[Any],
    predictions: Sequence[dict[str, Any]],
    lines: Sequence[int | None] | None = None,
    blanks: Sequence[int] = (),
) -> list[dict[str, Any]]:
    """One JSON-ready record per input, in input order: {"line"?, "text", "text_pair"?, ...the
    prediction}. With `blanks`, a {"line": n, "text": "", "skipped": "blank line"} record
    stands in for each blank line, so record n matches input line n."""
    lines = [None] * len(inputs) if lines is None else lines
    records = []
    for item, prediction, line in zip(inputs, predictions, lines, strict=True):
        text = {"text": item} if isinstance(item, str) else {"text": item[0], "text_pair": item[1]}
        records.append(({"line": line} if line else {}) | text | prediction)
    if blanks:
        records += [{"line": n, "text": "", "skipped": "blank line"} for n in blanks]
        records.sort(key=lambda r: r["line"])
    return records
