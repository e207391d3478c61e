"""The probabilities an audit hands to cleanlab, from its folds' saved predictions.

`held_out`: each row's probabilities from the one fold model that never saw it (confident
learning's textbook input; with repeats, the mean over the rounds). `fold_ensemble`: those
averaged with the mean of the k-1 (R(k-1) with repeats) in-sample probabilities of the fold
models that trained on the row. A flipped label that k-1 models
trained on and still doubt is strong evidence; a correct but hard row that the held-out model
gets wrong is usually learned by the models that saw it, so it drops down the ranking. The
in-sample half makes the probabilities lean towards the given labels, so cleanlab's estimate
of the noise (and with it the number of rows flagged) is lower than with `held_out` alone; fold
models that memorise their training rows (many epochs, a small model on few rows) lean so far
that flipped rows drop out of the list. Hence `held_out` stays the default; the measurement is
in docs/benchmarks.md#label-audit.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError

__all__ = ["PROBABILITIES", "DEFAULT_PROBABILITIES", "check_probabilities", "fold_probabilities", "combine"]

PROBABILITIES = ("held_out", "fold_ensemble")
DEFAULT_PROBABILITIES = "held_out"
IN_SAMPLE_ROWS = "in_sample_rows"  # keys of a fold's predictions file (the fold's training rows)
IN_SAMPLE_PROBABILITIES = "in_sample_probabilities"


def check_probabilities(value: Any) -> str:
    if value not in PROBABILITIES:
        raise ConfigError(
            f"probabilities={value!r} is not one of {', '.join(PROBABILITIES)}: 'held_out' ranks "
            "each row by the fold model that never saw it; 'fold_ensemble' averages that with "
            "the fold models that trained on it. Pass one of them (CLI: --probabilities "
            f"{DEFAULT_PROBABILITIES})."
        )
    return str(value)


def has_in_sample(saved: dict[str, Any]) -> bool:
    return IN_SAMPLE_ROWS in saved and IN_SAMPLE_PROBABILITIES in saved


def fold_probabilities(
    files: Sequence[Path], rows: int, num_labels: int, in_sample: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """(held-out probabilities, mean in-sample probabilities or None) from the folds' files.

    With repeats, each row is held out once per round: its held-out probabilities are the mean
    over the rounds' models that never saw it (a seed ensemble of out-of-sample predictions).
    """
    held_out = np.zeros((rows, num_labels))
    held_count = np.zeros(rows)
    total = np.zeros((rows, num_labels)) if in_sample else None
    count = np.zeros(rows)
    for path in files:
        saved = json.loads(Path(path).read_text(encoding="utf-8"))
        held_out[saved["rows"]] += np.asarray(saved["probabilities"], dtype=np.float64)
        held_count[saved["rows"]] += 1
        if total is not None:
            if not has_in_sample(saved):
                raise ConfigError(
                    f"{path} has no in-sample predictions, which probabilities='fold_ensemble' "
                    "needs. Pass overwrite=True to run the audit again (CLI: --overwrite), or "
                    "probabilities='held_out'."
                )
            trained = np.asarray(saved[IN_SAMPLE_ROWS], dtype=np.int64)
            total[trained] += np.asarray(saved[IN_SAMPLE_PROBABILITIES], dtype=np.float64)
            count[trained] += 1
    held_out /= np.maximum(held_count, 1)[:, None]  # each round holds every row out once
    if total is None:
        return held_out, None
    seen = count > 0  # every row is in k-1 folds' training (k >= 2), so all of them
    total[seen] /= count[seen, None]
    total[~seen] = held_out[~seen]
    return held_out, total


def combine(held_out: np.ndarray, in_sample: np.ndarray | None, method: str) -> np.ndarray:
    """What cleanlab ranks: the held-out probabilities, or their mean with the in-sample ones."""
    if method == "held_out" or in_sample is None:
        return held_out
    return (held_out + in_sample) / 2
