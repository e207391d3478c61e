"""Early stopping on the task's main metric: transformers' `EarlyStoppingCallback`, checked.

The callback reads `metric_for_best_model` (the engine sets it to the task's main metric) and
needs evaluations during training and `load_best_model_at_end`, so the final model is the best
one seen, not the last one. Asking for it without those is a `ConfigError` naming the fix.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..errors import ConfigError

if TYPE_CHECKING:
    from transformers import EarlyStoppingCallback, TrainingArguments

    from ..options import TrainOptions

__all__ = ["early_stopping_callback"]

logger = logging.getLogger(__name__)


def early_stopping_callback(
    opts: TrainOptions, args: TrainingArguments, has_eval_split: bool
) -> EarlyStoppingCallback | None:
    """The callback for `early_stopping_patience`, or None when it is not asked for."""
    from transformers import EarlyStoppingCallback

    patience = opts.early_stopping_patience
    if patience is None:
        return None
    asked = f"early_stopping_patience={patience}"
    if not has_eval_split:
        raise ConfigError(
            f"{asked} needs an evaluation split to watch, and this data has none. Add one "
            "(validation.tsv in data_dir, validation_file=..., or validation_fraction > 0), or "
            "drop early_stopping_patience."
        )
    if args.eval_strategy == "no":
        raise ConfigError(
            f"{asked} needs evaluations during training, but eval_strategy='no'. "
            "Pass eval_strategy='steps' (the default) or 'epoch'."
        )
    if not args.load_best_model_at_end:
        raise ConfigError(
            f"{asked} needs load_best_model_at_end=True (the default), so the "
            "final model is the best one evaluated; pass that, or drop "
            "early_stopping_patience."
        )
    logger.info(
        "Early stopping: after %d evaluation(s) without %s improving by more than %g.",
        patience,
        args.metric_for_best_model,
        opts.early_stopping_threshold,
    )
    return EarlyStoppingCallback(
        early_stopping_patience=patience, early_stopping_threshold=opts.early_stopping_threshold
    )
