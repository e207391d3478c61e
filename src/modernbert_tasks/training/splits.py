"""The splits a run reads: the task's data (subsampled as asked, with a held-out evaluation
share when it has none), the fixed max_length check, and the eval/test splits as prediction
reads them for the final metrics."""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, DataError
from ..options import TrainOptions
from ..task import Task
from .batching import subsample, tokenize_splits
from .exclusion import exclude_flagged_rows
from .task_source import data_files_of

if TYPE_CHECKING:
    import datasets
    from transformers import PretrainedConfig

__all__ = ["load_splits", "fixed_max_length", "final_splits"]

logger = logging.getLogger(__name__)


def load_splits(task: Task, opts: TrainOptions) -> tuple[datasets.DatasetDict, dict | None]:
    """The task's splits (subsampled as asked) and, when the data has no evaluation split,
    a description of the share of training data held out for it (None otherwise)."""
    import datasets

    values = {f.name: getattr(opts, f.name) for f in dataclasses.fields(opts)}
    splits = task.load_dataset(
        data_dir=None if opts.data_dir is None else os.fspath(opts.data_dir),
        data_files=data_files_of(values),
        cache_dir=None if opts.cache_dir is None else os.fspath(opts.cache_dir),
        revision=opts.data_revision,
    )
    if "train" not in splits:
        raise DataError(
            f"Task {task.name!r}: the data has no training split (found "
            f"{sorted(splits)}). Add a train file (e.g. train.csv) to data_dir, or "
            "pass train_file=... (CLI: --train-file)."
        )
    splits, held_out = dict(splits), None
    splits["train"] = exclude_flagged_rows(splits["train"], task, opts)  # exclude_rows=...
    if "eval" not in splits and opts.validation_fraction > 0:
        splits["train"], splits["eval"], held_out = _hold_out(splits["train"], task, opts)
    limits = {"train": opts.max_train_samples, "eval": opts.max_eval_samples}
    out = {}
    for role, ds in splits.items():
        if role == "test" and "label" not in ds.column_names:
            continue  # unlabelled test data cannot be scored
        out[role] = subsample(ds, limits.get(role), opts.seed, f"max_{role}_samples")
    return datasets.DatasetDict(out), held_out


def _hold_out(train: datasets.Dataset, task: Task, opts: TrainOptions):
    from ..data import hold_out

    if not 0 < opts.validation_fraction < 1:
        raise ConfigError(
            f"validation_fraction={opts.validation_fraction} must be between 0 and "
            "1 (e.g. 0.1 holds out 10%), or 0 to train without evaluation."
        )
    stratified = task.problem_type == "single_label_classification"
    rest, held = hold_out(train, opts.validation_fraction, opts.seed, stratified)
    info = {
        "fraction": opts.validation_fraction,
        "seed": opts.seed,
        "stratified": stratified,
        "rows": len(held),
        "from_rows": len(train),
    }
    logger.warning(
        "No evaluation split in the data: holding out %d of %d training rows (%g%%, "
        "%sseed %d) for evaluation. Pass validation_file=... (--validation-file) to "
        "use your own, or validation_fraction=0 to train without evaluation.",
        len(held),
        len(train),
        100 * opts.validation_fraction,
        "stratified by label, " if stratified else "",
        opts.seed,
    )
    return rest, held, info


def fixed_max_length(opts: TrainOptions, task: Task, config: PretrainedConfig, model_name: str) -> int:
    assert not isinstance(opts.max_length, str)  # "auto" is read from the data instead (engine)
    max_length = opts.max_length or task.max_length
    limit = getattr(config, "max_position_embeddings", None)
    if limit and max_length > limit:
        raise ConfigError(
            f"max_length={max_length} exceeds what {model_name!r} supports "
            f"({limit} positions). Pass max_length={limit} or less."
        )
    return max_length


def final_splits(
    splits: datasets.DatasetDict,
    tokenized: datasets.DatasetDict,
    task: Task,
    tokenizer: Any,
    max_length: int,
    predict_max_length: int,
    opts: TrainOptions,
) -> dict[str, datasets.Dataset]:
    """The eval and test splits as prediction reads them: max_length is a speed choice for
    training, so a text it cut is scored at the end up to the model's limit, as predict and
    evaluate read it, and the printed figures are the ones they reproduce."""
    import datasets

    from .lengths import count_truncated

    out = {}
    for role in ("eval", "test"):
        if role not in tokenized:
            continue
        out[role] = tokenized[role]
        if (
            predict_max_length > max_length
            and count_truncated(splits[role], tokenized[role], task, tokenizer, max_length).truncated
        ):
            out[role] = tokenize_splits(
                datasets.DatasetDict({role: splits[role]}),
                task,
                tokenizer,
                predict_max_length,
                "longest",
                None if opts.cache_dir is None else os.fspath(opts.cache_dir),
            )[role]
            logger.info(
                "The final %s metrics read each text up to %d tokens, as predict and "
                "evaluate do (training and its periodic evaluations: %d).",
                role,
                predict_max_length,
                max_length,
            )
    return out
