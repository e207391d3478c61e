"""One label per column (one-hot multi-label data such as ``text,toxic,obscene,insult``): the
options checked, the columns found, every cell read as 0/1, true/false or yes/no with the rows
of bad cells named, and the columns inferred when every column besides the text holds only 0/1.
See docs/your-own-data.md."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, DataError, hint, suggest
from .labels import MAX_ROWS_SHOWN, is_missing, rows

if TYPE_CHECKING:
    import datasets

__all__ = [
    "MULTI",
    "check_label_columns",
    "infer_label_columns",
    "label_columns_of",
    "require_text_columns",
    "text_columns_besides",
    "missing_columns",
    "reads_label_columns",
    "encode_label_columns",
    "with_label_columns",
    "cell_flag",
]

logger = logging.getLogger(__name__)

MULTI = "multi_label_classification"
_TRUE = ("1", "1.0", "true", "yes")
_FALSE = ("0", "0.0", "false", "no")
_ACCEPTED = "0/1, true/false or yes/no (any case)"
_FLAG = "label_columns=['toxic', 'insult'] (CLI: --label-columns toxic insult)"


def cell_flag(value: Any) -> float | None:
    """1.0 or 0.0 for a cell reading 0/1, true/false or yes/no (any case, spaces stripped);
    None for anything else (empty cells included)."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value) if not math.isnan(value) and value in (0, 1) else None
    if isinstance(value, str):
        text = value.strip().lower()
        return 1.0 if text in _TRUE else 0.0 if text in _FALSE else None
    return None


def check_label_columns(
    label_columns: Sequence[str],
    *,
    text_columns: Sequence[str] | None,
    label_column: str | None,
    labels: Sequence[str] | None,
    problem_type: str | None,
    label_separator: str | None,
) -> tuple[str, ...]:
    """The columns as a tuple, or a ConfigError for what contradicts one label per column."""
    columns = (label_columns,) if isinstance(label_columns, str) else tuple(label_columns)
    if not columns or not all(isinstance(c, str) and c for c in columns):
        raise ConfigError(f"label_columns={list(columns)!r}; expected column names, e.g. {_FLAG}.")
    twice = sorted({c for c in columns if columns.count(c) > 1})
    if twice:
        raise ConfigError(f"label_columns names {twice} twice; name each label column once.")
    clashes = [
        (
            label_column is not None,
            "label_column",
            "pass only one (label_column: one column of label names; label_columns: one 0/1 "
            "column per label)",
        ),
        (
            label_separator is not None,
            "label_separator",
            "drop label_separator (label columns hold 0/1, not names to split)",
        ),
        (
            labels is not None,
            "labels",
            "drop labels: the labels are the columns' names, in the order given (rename the "
            "columns to rename them)",
        ),
        (
            problem_type not in (None, MULTI),
            "problem_type",
            f"drop problem_type={problem_type!r} (one column per label is {MULTI})",
        ),
    ]
    for given, name, fix in clashes:
        if given:
            raise ConfigError(f"label_columns and {name} were both given; {fix}.")
    text = [c for c in columns if c in (text_columns or ())]
    if text:
        raise ConfigError(f"{text[0]!r} is both a text column and a label column; it can be one of them.")
    return columns


def _is_zero_one(values: Sequence[Any]) -> bool:
    return len(values) > 0 and all(
        isinstance(v, bool) or (isinstance(v, int | float) and v in (0, 1)) for v in values
    )


def _string_columns(ds: datasets.Dataset, exclude: Sequence[str]) -> list[str]:
    import datasets

    return [
        n
        for n in ds.column_names
        if n not in exclude
        and isinstance(ds.features[n], datasets.Value)
        and ds.features[n].dtype in ("string", "large_string")
    ]


def infer_label_columns(
    ds: datasets.Dataset, text_columns: Sequence[str] | None, named_label: str | None, source: str
) -> tuple[str, ...] | None:
    """The label columns when the caller named none and every column besides the text holds only
    0/1 (two columns at least, none named like a label column: that one wins). Said in one line."""
    if named_label is not None:
        return None
    text = list(text_columns) if text_columns else _string_columns(ds, ())
    rest = [n for n in ds.column_names if n not in text]
    if len(text) not in (1, 2) or len(rest) < 2 or not all(_is_zero_one(ds[n]) for n in rest):
        return None
    logger.info(
        "%s: columns %s hold only 0/1 besides the text column %r: multi-label, one label per "
        "column (pass label_columns=[...] / --label-columns to choose them).",
        source,
        rest,
        text[0] if len(text) == 1 else text,
    )
    return tuple(rest)


def label_columns_of(
    ds: datasets.Dataset,
    source: str,
    text_columns: Sequence[str] | None,
    label_column: str | None,
    label_columns: Sequence[str] | None,
    labels: Sequence[str] | None,
    problem_type: str | None,
    label_separator: str | None,
) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """(text columns, label columns) of one-column-per-label data: the caller's label columns,
    checked, or inferred (`infer_label_columns`); None for data with one label column."""
    if label_columns is not None:
        columns = check_label_columns(
            label_columns,
            text_columns=text_columns,
            label_column=label_column,
            labels=labels,
            problem_type=problem_type,
            label_separator=label_separator,
        )
    elif label_column is None and labels is None and problem_type in (None, MULTI) and not label_separator:
        found = infer_label_columns(ds, text_columns, _named_label_column(ds.column_names), source)
        if found is None:
            return None
        columns = found
    else:
        return None
    return text_columns_besides(ds, columns, text_columns, source), columns


def _named_label_column(names: Sequence[str]) -> str | None:
    from .data import LABEL_COLUMN_NAMES

    by_lower = {n.lower(): n for n in names}
    return next((by_lower[c] for c in LABEL_COLUMN_NAMES if c in by_lower), None)


def require_text_columns(names: Sequence[str], text_columns: Sequence[str], source: str) -> None:
    absent = [c for c in text_columns if c not in names]
    if absent:
        raise DataError(
            f"{source} has no column {absent[0]!r}; its columns are {list(names)}."
            f"{suggest(absent[0], names)} Choose the text column: text_columns=... (--text-column)."
        )


def text_columns_besides(
    ds: datasets.Dataset, label_columns: Sequence[str], text_columns: Sequence[str] | None, source: str
) -> tuple[str, ...]:
    """The text column(s): the given ones, else the only string column besides the labels."""
    names = ds.column_names
    missing_columns(names, label_columns, source)
    if text_columns:
        require_text_columns(names, text_columns, source)
        return tuple(text_columns)
    strings = _string_columns(ds, label_columns)
    if len(strings) != 1:
        found = f"{len(strings)} text columns {strings}" if strings else "no text column"
        raise DataError(
            f"{source}: cannot tell which column holds the text: {found} besides the label "
            f"columns {list(label_columns)} (columns: {names}). Choose it: text_columns='...' "
            "(CLI: --text-column NAME)."
        )
    return (strings[0],)


def missing_columns(names: Sequence[str], label_columns: Sequence[str], source: str) -> None:
    absent = [c for c in label_columns if c not in names]
    if absent:
        raise DataError(
            f"{source} has no label column(s) {absent} (label_columns={list(label_columns)}); "
            f"its columns are {list(names)}.{suggest(absent[0], names)} Name columns that exist "
            f"({hint('label_columns=[...]', '--label-columns NAME ...')}), or add the missing ones."
        )


def reads_label_columns(names: Sequence[str], label_columns: Sequence[str], label_column: str) -> bool:
    """Whether a split of a one-column-per-label task is read from its label columns (else from
    `label_column`, as list cells: e.g. evaluate(data=[(text, ["toxic"])]))."""
    return bool(label_columns) and (label_column not in names or any(c in names for c in label_columns))


def encode_label_columns(
    ds: datasets.Dataset, label_columns: Sequence[str], source: str
) -> list[list[float]]:
    """One multi-hot row per example, column k giving label k; every bad cell is an error that
    names its column, its value and its rows."""
    missing_columns(ds.column_names, label_columns, source)
    columns = [[cell_flag(v) for v in ds[c]] for c in label_columns]
    problems = []
    for name, flags in zip(label_columns, columns, strict=True):
        bad = [i for i, flag in enumerate(flags) if flag is None]
        if bad:
            cells = ds[name]
            shown = list(dict.fromkeys(_shown(cells[i]) for i in bad))[:MAX_ROWS_SHOWN]
            problems.append(f"column {name!r} holds {', '.join(shown)} in {rows(bad)}")
    if problems:
        raise DataError(
            f"{source}: label columns hold values other than {_ACCEPTED}: "
            f"{'; '.join(problems)}. Fix those cells (an empty cell is not 0: write 0)."
        )
    return [list(row) for row in zip(*columns, strict=True)]  # no None left: checked above


def _shown(value: Any) -> str:
    return "an empty cell" if is_missing(value) else repr(value)


def with_label_columns(
    ds: datasets.Dataset, keep: list[str], label_columns: Sequence[str], role: str, source: str
) -> datasets.Dataset:
    """The split with its text columns and a multi-hot ``label`` column; a test split without
    any label column comes back unlabelled."""
    if role == "test" and not any(c in ds.column_names for c in label_columns):
        return ds.select_columns(keep)
    return ds.select_columns(keep).add_column("label", encode_label_columns(ds, label_columns, source))
