"""The three tasks. Their data ship in this package, so they need no hub and no data_dir."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modernbert_tasks import Task

__all__ = ["DATA_DIR", "PackagedTask", "PARAPHRASE", "NLI", "STS", "TASKS"]

DATA_DIR = Path(__file__).resolve().parent / "data"


class PackagedTask(Task):
    """A `Task` whose files live in ``DATA_DIR/<name>/``; data_dir/data_files still win."""

    def load_dataset(
        self,
        data_dir: str | None = None,
        data_files: Mapping[str, Any] | None = None,
        cache_dir: str | None = None,
        revision: str | None = None,
    ):
        if not data_dir and not data_files:
            data_dir = str(DATA_DIR / self.name)
        return super().load_dataset(
            data_dir=data_dir, data_files=data_files, cache_dir=cache_dir, revision=revision
        )


# Shared defaults for a ~400M encoder on a few hundred short pairs: more epochs than GLUE
# recipes because each epoch is only ~30 steps.
_SMALL_DATA = {
    "learning_rate": 5e-5,
    "num_train_epochs": 8,
    "per_device_train_batch_size": 16,
    "weight_decay": 0.01,
}

PARAPHRASE = PackagedTask(
    name="pairs-paraphrase",
    description="MRPC-style paraphrase detection on short news-like sentence pairs "
    "(480 train / 120 validation rows, TSV).",
    version="1.0.0",
    splits={"train": "train", "eval": "validation"},
    text_columns=("sentence1", "sentence2"),
    label_column="label",  # 0/1 ids, as in GLUE MRPC
    labels=("not_paraphrase", "paraphrase"),
    metrics=("accuracy", "f1"),
    main_metric="f1",  # f1 of the 'paraphrase' class, the number MRPC results report
    hyperparameters=_SMALL_DATA,
    max_length=64,
)

NLI = PackagedTask(
    name="pairs-nli",
    description="Three-way natural language inference (entailment/neutral/contradiction) on "
    "scene descriptions (480 train / 120 validation rows, JSON Lines).",
    version="1.0.0",
    splits={"train": "train", "eval": "validation"},
    text_columns=("premise", "hypothesis"),
    label_column="label",  # label names in the file
    labels=("entailment", "neutral", "contradiction"),  # MNLI's order
    metrics=("accuracy", "macro_f1"),
    main_metric="macro_f1",
    hyperparameters=_SMALL_DATA,
    max_length=64,
)

STS = PackagedTask(
    name="pairs-sts",
    description="STS-B-style semantic similarity: a score from 0 (unrelated) to 5 (same "
    "meaning) for two scene descriptions (480 train / 120 validation rows, CSV).",
    version="1.0.0",
    splits={"train": "train", "eval": "validation"},
    text_columns=("sentence1", "sentence2"),
    label_column="score",
    labels=("similarity",),  # one output: the predicted score
    problem_type="regression",
    metrics=("pearson", "spearman"),
    main_metric="pearson",
    hyperparameters=_SMALL_DATA,
    max_length=64,
)

TASKS = (PARAPHRASE, NLI, STS)
