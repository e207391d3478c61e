"""What `predict` takes: one text or many, one pair or many, checked against the model's task
(a pair task refuses single texts and the other way round), split into first and second texts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import DataError, clipped_repr, hint
from ..task import Task

__all__ = ["split_inputs"]


def split_inputs(inputs: Any, task: Task | None) -> tuple[list[str], list[str] | None]:
    """(first texts, second texts or None) from what `predict` was given: one text, texts, one
    (text_a, text_b) pair or pairs, checked against the task (pairs or single texts)."""
    pair_task = task.is_pair if task is not None else None
    if isinstance(inputs, str):
        inputs = [inputs]
    elif (
        isinstance(inputs, tuple)
        and len(inputs) == 2
        and pair_task
        and all(isinstance(x, str) for x in inputs)
    ):
        inputs = [inputs]  # a single (text_a, text_b) pair
    if not isinstance(inputs, Sequence):
        inputs = list(inputs)  # e.g. a generator or a pandas Series
    if not inputs:
        return [], None
    is_pair = not isinstance(inputs[0], str)
    want = task.text_columns if task else None
    if pair_task is not None and is_pair != pair_task:
        assert task is not None and want is not None  # pair_task is None without a task
        if pair_task:
            raise DataError(
                f"Task {task.name!r} classifies pairs of texts ({want[0]!r}, "
                f"{want[1]!r}); got single texts. "
                + hint(
                    "Pass a list of (text_a, text_b) tuples.",
                    'Pass --pair "first text" "second text", or a --file whose records '
                    f"have {want[0]!r} and {want[1]!r} fields.",
                )
            )
        raise DataError(
            f"Task {task.name!r} classifies single texts ({want[0]!r}); got "
            f"{type(inputs[0]).__name__} {clipped_repr(inputs[0])}. "
            + hint("Pass a list of strings.", "Pass the texts without --pair.")
        )
    first: list[str] = []
    second: list[str] = []  # stays empty for single texts
    for i, item in enumerate(inputs):
        if is_pair:
            if (
                not isinstance(item, Sequence)
                or isinstance(item, str)
                or len(item) != 2
                or not all(isinstance(x, str) for x in item)
            ):
                raise DataError(
                    f"Input {i} is {clipped_repr(item)}; expected a (text_a, text_b) "
                    "pair of strings like every other input."
                )
            first.append(item[0])
            second.append(item[1])
        else:
            if not isinstance(item, str):
                raise DataError(
                    f"Input {i} is {type(item).__name__} {clipped_repr(item)}; expected "
                    "a string like every other input."
                )
            first.append(item)
    return first, second if is_pair else None
