"""Count the texts that tokenization truncated, and say so: silent truncation hides data loss.

Truncation itself stays on (texts longer than `max_length` are accepted); this only reports it.
It runs after tokenization and reads the token counts from the tokenized split, so a cached
tokenization costs nothing extra: only rows that reached `max_length` tokens -- truncated, or
exactly that long -- are tokenized again, without truncation, to tell the two apart.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import datasets
    from transformers import PreTrainedTokenizerBase

    from ..task import Task

__all__ = ["Truncation", "count_truncated", "report_truncation", "SPLIT_WORDS"]

logger = logging.getLogger(__name__)

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
        mask = np.asarray(tokenized.with_format("numpy", columns=["attention_mask"])
                          ["attention_mask"])
        return mask.sum(axis=1).tolist()
    return lengths.tolist()


def count_truncated(raw: datasets.Dataset, tokenized: datasets.Dataset, task: Task,
                    tokenizer: PreTrainedTokenizerBase, max_length: int) -> Truncation:
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
    return Truncation(truncated=truncated, total=len(counts), longest=longest,
                      max_length=max_length)


def report_truncation(raw: Mapping[str, datasets.Dataset],
                      tokenized: Mapping[str, datasets.Dataset], task: Task,
                      tokenizer: PreTrainedTokenizerBase,
                      max_length: int) -> dict[str, Truncation]:
    """Count per split and log one warning per split that lost tokens."""
    found = {}
    for role, ds in tokenized.items():
        result = count_truncated(raw[role], ds, task, tokenizer, max_length)
        found[role] = result
        if result.truncated:
            logger.warning(
                "%d of %d %s texts were longer than max_length=%d and were truncated (the "
                "longest has %d tokens). Pass a larger max_length to keep more of each text.",
                result.truncated, result.total, SPLIT_WORDS.get(role, role), max_length,
                result.longest)
    return found
