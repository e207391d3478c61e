"""`max_length="auto"`: a max length read from the training texts instead of guessed.

ModernBERT reads 8,192 tokens; a fixed 128 silently cuts long documents, and a fixed 8,192
wastes memory on tweets. "auto" takes the smallest length that covers 99.9% of the training
texts (the 99.9th percentile, inverted-CDF definition), rounds it up to a multiple of 8 (tensor
cores and padding both like it) and caps it at the model's positions. It logs the value and the
share of texts that it truncates.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import datasets
    from transformers import PreTrainedTokenizerBase

    from ..task import Task

__all__ = ["AUTO_PERCENTILE", "MAX_ROWS", "auto_max_length", "choose_max_length"]

logger = logging.getLogger(__name__)

AUTO_PERCENTILE = 99.9
MULTIPLE = 8
MIN_LENGTH = 8
MAX_ROWS = 200_000  # larger training splits are measured on a seeded sample of this many rows


def token_lengths(train: datasets.Dataset, task: Task, tokenizer: PreTrainedTokenizerBase,
                  seed: int = 0) -> list[int]:
    """Untruncated token counts (special tokens included) of the training texts."""
    rows = train
    if len(train) > MAX_ROWS:
        rows = train.shuffle(seed=seed).select(range(MAX_ROWS))
    lengths: list[int] = []
    for start in range(0, len(rows), 10_000):
        batch = rows[start:start + 10_000]
        texts = [[task.format_text(t) for t in batch[col]] for col in task.text_columns]
        encoded = tokenizer(*texts, truncation=False, padding=False, verbose=False)
        lengths.extend(len(ids) for ids in encoded["input_ids"])
    return lengths


def choose_max_length(lengths: list[int], limit: int | None,
                      percentile: float = AUTO_PERCENTILE) -> int:
    """The percentile of `lengths`, rounded up to a multiple of 8, within [8, limit]."""
    if not lengths:
        return limit or MIN_LENGTH
    # the smallest length that covers `percentile`% of the texts; the epsilon keeps 99.9% of
    # 1,000 texts at 999 despite binary floating point
    covered = max(1, math.ceil(percentile / 100 * len(lengths) - 1e-9))
    value = sorted(lengths)[covered - 1]
    value = max(MIN_LENGTH, math.ceil(value / MULTIPLE) * MULTIPLE)
    return min(value, limit) if limit else value


def auto_max_length(train: datasets.Dataset, task: Task, tokenizer: PreTrainedTokenizerBase,
                    limit: int | None, seed: int = 0) -> int:
    """`max_length="auto"` for this training split, logged with the share it truncates."""
    lengths = token_lengths(train, task, tokenizer, seed)
    value = choose_max_length(lengths, limit)
    cut = sum(n > value for n in lengths)
    capped = " (capped at the model's positions)" if limit and value == limit else ""
    logger.info("max_length='auto': %d tokens%s, the %gth percentile of %d training texts "
                "(longest %d); %d of them (%.2f%%) are truncated.", value, capped,
                AUTO_PERCENTILE, len(lengths), max(lengths, default=0), cut,
                100 * cut / max(len(lengths), 1))
    return value
