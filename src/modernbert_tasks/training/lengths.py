"""How many tokens texts have: `max_length="auto"` read from the training texts, and the texts
that a max_length truncated, counted and said (silent truncation hides data loss).

ModernBERT reads 8,192 tokens; a fixed 128 silently cuts long documents, and a fixed 8,192
wastes memory on tweets. "auto" takes the smallest length that covers 99.9% of the training
texts (the 99.9th percentile, inverted-CDF definition), rounds it up to a multiple of 8 (tensor
cores and padding both like it) and caps it at the model's positions. It logs the value and the
share of texts that it truncates.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import datasets
    from transformers import PreTrainedTokenizerBase

    from ..task import Task

__all__ = [
    "AUTO_PERCENTILE",
    "MAX_ROWS",
    "auto_max_length",
    "choose_max_length",
    "untruncated_lengths",
    "tokenized_lengths",
    "Truncation",
    "count_truncated",
    "report_truncation",
    "SPLIT_WORDS",
]

logger = logging.getLogger(__name__)

AUTO_PERCENTILE = 99.9
MULTIPLE = 8
MIN_LENGTH = 8
MAX_ROWS = 200_000  # larger training splits are measured on a seeded sample of this many rows


def untruncated_lengths(
    train: datasets.Dataset, task: Task, tokenizer: PreTrainedTokenizerBase, seed: int = 0
) -> list[int]:
    """Untruncated token counts (special tokens included) of the training texts."""
    rows = train
    if len(train) > MAX_ROWS:
        rows = train.shuffle(seed=seed).select(range(MAX_ROWS))
    lengths: list[int] = []
    for start in range(0, len(rows), 10_000):
        batch = rows[start : start + 10_000]
        texts = [[task.format_text(t) for t in batch[col]] for col in task.text_columns]
        encoded = tokenizer(*texts, truncation=False, padding=False, verbose=False)
        lengths.extend(len(ids) for ids in encoded["input_ids"])
    return lengths


def choose_max_length(lengths: list[int], limit: int | None, percentile: float = AUTO_PERCENTILE) -> int:
    """The percentile of `lengths`, rounded up to a multiple of 8, within [8, limit]."""
    if not lengths:
        return limit or MIN_LENGTH
    # the smallest length that covers `percentile`% of the texts; the epsilon keeps 99.9% of
    # 1,000 texts at 999 despite binary floating point
    covered = max(1, math.ceil(percentile / 100 * len(lengths) - 1e-9))
    value = sorted(lengths)[covered - 1]
    value = max(MIN_LENGTH, math.ceil(value / MULTIPLE) * MULTIPLE)
    return min(value, limit) if limit else value


def auto_max_length(
    train: datasets.Dataset, task: Task, tokenizer: PreTrainedTokenizerBase, limit: int | None, seed: int = 0
) -> int:
    """`max_length="auto"` for this training split, logged with the share it truncates."""
    lengths = untruncated_lengths(train, task, tokenizer, seed)
    value = choose_max_length(lengths, limit)
    cut = sum(n > value for n in lengths)
    capped = " (capped at the model's positions)" if limit and value == limit else ""
    logger.info(
        "max_length='auto': %d tokens%s, the %gth percentile of %d training texts "
        "(longest %d); %d of them (%.2f%%) are truncated.",
        value,
        capped,
        AUTO_PERCENTILE,
        len(lengths),
        max(lengths, default=0),
        cut,
        100 * cut / max(len(lengths), 1),
    )
    return value


# --- truncation -------------------------------------------------------------------------
# Truncation itself stays on (texts longer than max_length are accepted); this only reports it.
# It reads the token counts from the tokenized split, so a cached tokenization costs nothing
# extra: only rows that reached max_length tokens are tokenized again, without truncation.
SPLIT_WORDS = {"train": "training", "eval": "evaluation", "test": "test"}


@dataclass(frozen=True)
class Truncation:
    """How many of a split's texts were cut, and the longest one's full length in tokens."""

    truncated: int
    total: int
    longest: int
    max_length: int


def _token_counts(tokenized: datasets.Dataset) -> list[int]:
    """Non-padding tokens per row (texts padded to max_length carry an attention mask)."""
    import numpy as np
    import pyarrow.compute as pc

    table = tokenized.data
    lengths = pc.list_value_length(table.column("input_ids")).to_numpy(zero_copy_only=False)
    if "attention_mask" in table.column_names and len(lengths) and lengths.min() == lengths.max():
        # fixed width: padding="max_length", so count the mask instead
        mask = np.asarray(tokenized.with_format("numpy", columns=["attention_mask"])["attention_mask"])
        return mask.sum(axis=1).tolist()
    return lengths.tolist()


def count_truncated(
    raw: datasets.Dataset,
    tokenized: datasets.Dataset,
    task: Task,
    tokenizer: PreTrainedTokenizerBase,
    max_length: int,
) -> Truncation:
    """Compare each row of `tokenized` (from `raw`, same order) with its untruncated length."""
    counts = _token_counts(tokenized)
    candidates = [i for i, n in enumerate(counts) if n >= max_length]
    longest = max(counts, default=0)
    truncated = 0
    if candidates:
        rows = raw.select(candidates)
        texts = [[task.format_text(t) for t in rows[col]] for col in task.text_columns]
        full = tokenizer(*texts, truncation=False, padding=False, verbose=False)["input_ids"]
        truncated = sum(len(ids) > max_length for ids in full)
        longest = max(longest, *(len(ids) for ids in full))
    return Truncation(truncated=truncated, total=len(counts), longest=longest, max_length=max_length)


def report_truncation(
    raw: Mapping[str, datasets.Dataset],
    tokenized: Mapping[str, datasets.Dataset],
    task: Task,
    tokenizer: PreTrainedTokenizerBase,
    max_length: int,
) -> dict[str, Truncation]:
    """Count per split and log one warning per split that lost tokens."""
    found = {}
    for role, ds in tokenized.items():
        result = count_truncated(raw[role], ds, task, tokenizer, max_length)
        found[role] = result
        if result.truncated:
            logger.warning(
                "%d of %d %s texts were longer than max_length=%d and were truncated (the "
                "longest has %d tokens). Pass a larger max_length to keep more of each text.",
                result.truncated,
                result.total,
                SPLIT_WORDS.get(role, role),
                max_length,
                result.longest,
            )
    return found


def tokenized_lengths(dataset: datasets.Dataset, column: str) -> list[int]:
    """Tokens per row, read from Arrow in one call (not row by row in Python)."""
    import pyarrow.compute as pc

    return pc.list_value_length(dataset.with_format("arrow")[column]).to_pylist()
