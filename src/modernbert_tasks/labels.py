"""Labels as users' files write them: inferred (names, numbers, lists, separators) and encoded
by name before anything else, so star ratings 1-5 never shift by one; see
docs/your-own-data.md for the rules."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from typing import Any

from .errors import DataError

__all__ = ["infer_labels", "encode_labels", "is_missing", "rows", "MAX_ROWS_SHOWN"]

logger = logging.getLogger(__name__)

MAX_ROWS_SHOWN = 10


def rows(indices: Sequence[int]) -> str:
    shown = ", ".join(str(i + 1) for i in indices[:MAX_ROWS_SHOWN])
    more = f" and {len(indices) - MAX_ROWS_SHOWN} more" if len(indices) > MAX_ROWS_SHOWN else ""
    return f"{len(indices)} row(s): {shown}{more} (data rows counted from 1, header excluded)"


def is_missing(value: Any) -> bool:
    return (
        value is None
        or (isinstance(value, float) and math.isnan(value))
        or (isinstance(value, str) and not value.strip())
    )


def _as_name(value: Any) -> str:
    """The text a cell is matched by: stripped, and 5.0 -> '5' (CSV readers make floats)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def infer_labels(
    values: Sequence[Any],
    problem_type: str | None = None,
    label_separator: str | None = None,
    source: str = "the training data",
) -> tuple[tuple[str, ...], str]:
    """(label names in id order, problem type) from the training split's label cells.

    Order: numbers sorted numerically, otherwise strings sorted. Non-integer numbers mean
    regression; lists or a separator mean multi-label; anything else single-label.
    """
    present = [v for v in values if isinstance(v, list | tuple) or not is_missing(v)]
    if not present:
        raise DataError(f"{source}: the label column is empty.")
    multi = label_separator is not None or any(isinstance(v, list | tuple) for v in present)
    if problem_type == "multi_label_classification" or (problem_type is None and multi):
        sep = label_separator or ","
        items = {
            _as_name(i)
            for v in present
            for i in (v if isinstance(v, list | tuple) else str(v).split(sep))
            if str(i).strip()
        }
        return _sorted_names(items), "multi_label_classification"
    names = {_as_name(v) for v in present}
    numbers = {n: _number(n) for n in names}
    numeric = all(x is not None for x in numbers.values())
    if problem_type == "regression" or (
        problem_type is None
        and numeric
        and any(x is not None and not float(x).is_integer() for x in numbers.values())
    ):
        if not numeric:
            bad = sorted(n for n, x in numbers.items() if x is None)[:5]
            raise DataError(f"{source}: regression needs numeric labels; found {bad}.")
        return (), "regression"
    if len(names) < 2:
        raise DataError(
            f"{source}: the label column holds a single value {sorted(names)}; "
            "classification needs at least two labels."
        )
    return _sorted_names(names), "single_label_classification"


def _sorted_names(names: set[str]) -> tuple[str, ...]:
    if all(_number(n) is not None for n in names):
        return tuple(sorted(names, key=lambda n: (float(n), n)))
    return tuple(sorted(names))


_DIGITS = re.compile(r"^-?\d+$")


def encode_labels(
    values: Sequence[Any],
    labels: Sequence[str],
    problem_type: str,
    *,
    column: str,
    source: str,
    task_name: str,
    label_separator: str | None = None,
) -> list[Any]:
    """Label cells -> ids (single-label), multi-hot lists (multi-label) or floats (regression)."""
    missing = [i for i, v in enumerate(values) if is_missing(v) and not isinstance(v, list)]
    if missing:
        raise DataError(
            f"{source}: label column {column!r} is empty or NaN in {rows(missing)}. "
            "Remove those rows or give them a label."
        )
    if problem_type == "regression":
        numbers = [_number(_as_name(v)) for v in values]
        not_numbers = [i for i, v in enumerate(numbers) if v is None]
        if not_numbers:
            raise DataError(
                f"{source}: label column {column!r} must hold numbers for regression "
                f"task {task_name!r}; {values[not_numbers[0]]!r} is not, in {rows(not_numbers)}."
            )
        return numbers
    name_to_id = {name: i for i, name in enumerate(labels)}
    ids_allowed = not any(_DIGITS.match(n) for n in labels)
    stripped = 0

    def one(value: Any) -> int | None:
        nonlocal stripped
        text = _as_name(value)
        if isinstance(value, str) and text != value:
            stripped += 1
        if text in name_to_id:
            return name_to_id[text]
        if ids_allowed and _DIGITS.match(text) and not isinstance(value, bool):
            number = int(text)
            return number if 0 <= number < len(labels) else None
        return None

    bad: list[tuple[int, Any]] = []
    out: list[Any]
    if problem_type == "multi_label_classification":
        out = []
        for i, value in enumerate(values):
            items = (
                value
                if isinstance(value, list | tuple)
                else [s for s in str(value).split(label_separator or ",") if s.strip()]
            )
            ids = [one(item) for item in items]
            if None in ids:
                bad.append((i, value))
            out.append([1.0 if k in ids else 0.0 for k in range(len(labels))])
    else:
        out = [one(v) for v in values]
        bad = [(i, values[i]) for i, v in enumerate(out) if v is None]
    if bad:
        shown = list(dict.fromkeys(repr(v) for _, v in bad))[:MAX_ROWS_SHOWN]
        expected = (
            f"an id 0..{len(labels) - 1} or a name in {list(labels)}"
            if ids_allowed
            else f"a name in {list(labels)} (the names are digit strings, so cells are never read as ids)"
        )
        raise DataError(
            f"{source}: label(s) {', '.join(shown)} in {rows([i for i, _ in bad])} are not among "
            f"task {task_name!r}'s labels: expected {expected}. Fix those labels, or use labels that "
            "match the data (labels=[...] / --labels)."
        )
    if stripped:
        logger.warning(
            "%s: %d label cell(s) in column %r had surrounding whitespace, which was "
            "ignored (e.g. 'sales ' is 'sales').",
            source,
            stripped,
            column,
        )
    return out
