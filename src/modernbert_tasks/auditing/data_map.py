"""The data map of an audit (dataset cartography, Swayamdipta et al. 2020; the area under the
margin, Pleiss et al. 2020): how each training row's given label fares while the folds train.

With `audit(..., data_map=True)` every fold's Trainer gets a `TrainingDynamics` callback. At
`points` evenly spaced steps per epoch (and at the last step) it predicts the fold's training
rows with the model as it is (eval mode, no gradients) and records, per row, the probability
of the given label and the margin: the given label's logit minus the largest other logit (for
multi-label, the row's worst label: its logit signed by the given 0/1, and the probability of
the given 0/1). The records go to <fold>/training_dynamics.json after each point, so a fold
resumed from a checkpoint keeps the points before it.

Each row trains in k-1 folds (R(k-1) with repeats=R); `data_map` pools them: confidence is the
mean probability of the given label over every point of every fold that trained on the row,
variability the standard deviation over a fold's points (averaged over the folds), aum the mean
margin, correctness the share of points where the model predicted the given label. A wrong
label is learned late, if at all: low confidence and a low (negative) aum. The audit writes
them to data_map.csv.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from .folds import DATA_MAP_FILE, write_json

__all__ = [
    "DATA_MAP_FILE",
    "DYNAMICS_FILE",
    "DEFAULT_POINTS",
    "DataMap",
    "TrainingDynamics",
    "check_points",
    "training_dynamics",
    "check_recorded",
    "data_map",
    "fold_callback",
    "write_data_map",
]

logger = logging.getLogger(__name__)

DYNAMICS_FILE = "training_dynamics.json"  # in each fold's folder
DEFAULT_POINTS = 4  # per epoch: docs/benchmarks.md#label-audit has the cost
BATCH_SIZE = 64
DATA_MAP_COLUMNS = ("row", "given_label", "confidence", "variability", "aum", "correctness", "points")


def check_points(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(
            f"data_map_points={value!r} must be an integer >= 1: how many times per epoch "
            "each fold predicts its training rows for the data map, e.g. data_map_points=4 "
            "(CLI: --data-map-points 4)."
        )
    return value


def record_steps(steps_per_epoch: int, max_steps: int, points: int) -> set[int]:
    """`points` evenly spaced steps in every epoch, and the last step."""
    per_epoch = max(1, steps_per_epoch)
    steps = {max_steps}
    for epoch in range(math.ceil(max_steps / per_epoch)):
        for j in range(1, points + 1):
            step = epoch * per_epoch + round(per_epoch * j / points)
            if 0 < step <= max_steps:
                steps.add(step)
    return steps


def training_dynamics(
    inputs: Sequence[Any],
    rows: Sequence[int],
    given: Sequence[Any],
    multi_label: bool,
    path: Path,
    points: int = DEFAULT_POINTS,
) -> Any:
    """The `TrainingDynamics` callback: a transformers TrainerCallback (imported only here, so
    that importing the audit does not import transformers)."""
    from transformers import TrainerCallback

    class TrainingDynamicsCallback(TrainingDynamics, TrainerCallback):
        pass

    return TrainingDynamicsCallback(inputs, rows, given, multi_label, path, points)


class TrainingDynamics:
    """Records p(given label) and the margin of a fold's training rows during its training
    (the Trainer's on_train_begin and on_step_end; `training_dynamics` makes it a callback).

    inputs: the fold's training rows as predict takes them (texts, or (text, text) pairs);
    rows: their row numbers in the user's file; given: their label ids (or multi-hot rows);
    path: where the records go; points: records per epoch.
    """

    def __init__(
        self,
        inputs: Sequence[Any],
        rows: Sequence[int],
        given: Sequence[Any],
        multi_label: bool,
        path: Path,
        points: int = DEFAULT_POINTS,
    ) -> None:
        self.inputs, self.rows, self.given = list(inputs), list(rows), list(given)
        self.multi_label, self.path, self.points = multi_label, Path(path), points
        self.records: list[dict[str, Any]] = []
        self.steps: set[int] = set()
        self._tokenizer: Any = None
        self._batches: list[tuple[list[int], list[dict[str, Any]]]] = []

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        loader = kwargs.get("train_dataloader")
        per_epoch = len(loader) // max(1, args.gradient_accumulation_steps) if loader is not None else 0
        if per_epoch < 1:  # an iterable loader: the state's figures
            per_epoch = max(1, state.max_steps // max(1, math.ceil(state.num_train_epochs)))
        self.steps = record_steps(per_epoch, state.max_steps, self.points)
        self.records = []
        if state.global_step > 0 and self.path.is_file():  # resumed: keep the points before it
            saved = json.loads(self.path.read_text(encoding="utf-8"))
            if saved.get("rows") == self.rows:
                self.records = [r for r in saved["points"] if r["step"] <= state.global_step]
        self._tokenizer = kwargs["processing_class"]
        self._batches = self._encode(self._tokenizer, _max_length(loader))

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step not in self.steps or any(r["step"] == state.global_step for r in self.records):
            return
        start = time.perf_counter()
        p_given, margin = self._score(kwargs["model"])
        self.records.append(
            {
                "step": state.global_step,
                "epoch": round(float(state.epoch or 0.0), 4),
                "seconds": round(time.perf_counter() - start, 3),
                "p_given": [round(float(x), 6) for x in p_given],
                "margin": [round(float(x), 5) for x in margin],
            }
        )
        if state.is_world_process_zero:
            write_json(self.path, {"rows": self.rows, "points": self.records})

    def _encode(self, tokenizer: Any, max_length: int | None) -> list[tuple[list[int], list[dict[str, Any]]]]:
        """The rows tokenized once, in batches of similar length (padded when scored)."""
        pairs = bool(self.inputs) and isinstance(self.inputs[0], tuple | list)
        first = [x[0] for x in self.inputs] if pairs else self.inputs
        second = [x[1] for x in self.inputs] if pairs else None
        limit = max_length or tokenizer.model_max_length
        encoded = tokenizer(first, second, truncation=True, max_length=limit)
        names = [k for k in tokenizer.model_input_names if k in encoded]  # ModernBERT: no token_type_ids
        features = [{k: encoded[k][i] for k in names} for i in range(len(self.inputs))]
        order = sorted(range(len(features)), key=lambda i: len(features[i]["input_ids"]))
        batches = []
        for start in range(0, len(order), BATCH_SIZE):
            index = order[start : start + BATCH_SIZE]
            batches.append((index, [features[i] for i in index]))
        return batches

    def _score(self, model: Any) -> tuple[np.ndarray, np.ndarray]:
        import torch

        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        logits = np.zeros((len(self.inputs), 0), dtype=np.float64)
        try:
            with torch.no_grad():
                for index, features in self._batches:
                    batch = self._tokenizer.pad(features, return_tensors="pt")
                    out = model(**{k: v.to(device) for k, v in batch.items()}).logits.float().cpu().numpy()
                    if logits.shape[1] == 0:
                        logits = np.zeros((len(self.inputs), out.shape[1]), dtype=np.float64)
                    logits[index] = out
        finally:
            model.train(was_training)
        return given_scores(logits, self.given, self.multi_label)


def _max_length(loader: Any) -> int | None:
    """The run's truncation length: its longest tokenized training row (the cap, if any row
    was cut)."""
    dataset = getattr(loader, "dataset", None)
    try:
        return max(len(ids) for ids in dataset["input_ids"])  # type: ignore[index]
    except (TypeError, KeyError, ValueError):
        return None


def given_scores(
    logits: np.ndarray, given: Sequence[Any], multi_label: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the probability of the given label and the margin (see the module's text)."""
    if multi_label:
        sign = 2.0 * np.asarray(given, dtype=np.float64) - 1.0
        signed = logits * sign
        return (1.0 / (1.0 + np.exp(-signed))).min(axis=1), signed.min(axis=1)
    ids = np.asarray(given, dtype=np.int64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    at = np.arange(len(ids))
    others = logits.copy()
    others[at, ids] = -np.inf
    return probs[at, ids], logits[at, ids] - others.max(axis=1)


class DataMap:
    """Per training row: confidence, variability, aum, correctness, and the points pooled."""

    def __init__(self, rows: int) -> None:
        self.sums = np.zeros((4, rows))  # p_given, margin, correct, fold stds
        self.points = np.zeros(rows, dtype=np.int64)
        self.folds = np.zeros(rows, dtype=np.int64)

    def add(self, rows: list[int], p_given: np.ndarray, margin: np.ndarray) -> None:
        """One fold: (points, rows) arrays."""
        self.sums[0, rows] += p_given.sum(axis=0)
        self.sums[1, rows] += margin.sum(axis=0)
        self.sums[2, rows] += (margin > 0).sum(axis=0)
        self.sums[3, rows] += p_given.std(axis=0)
        self.points[rows] += p_given.shape[0]
        self.folds[rows] += 1

    def _mean(self, k: int, count: np.ndarray) -> np.ndarray:
        return np.divide(self.sums[k], count, out=np.full(len(count), np.nan), where=count > 0)

    @property
    def confidence(self) -> np.ndarray:
        return self._mean(0, self.points)

    @property
    def aum(self) -> np.ndarray:
        return self._mean(1, self.points)

    @property
    def correctness(self) -> np.ndarray:
        return self._mean(2, self.points)

    @property
    def variability(self) -> np.ndarray:
        return self._mean(3, self.folds)


def data_map(files: Sequence[Path], rows: int) -> DataMap:
    """The folds' training dynamics pooled per row (see the module's text)."""
    result = DataMap(rows)
    for path in files:
        if not Path(path).is_file():
            raise ConfigError(
                f"{path} is missing: this fold was trained without data_map=True, so its training "
                "dynamics were not recorded. Pass overwrite=True to run the audit again with the "
                "data map (CLI: --overwrite), or leave data_map out."
            )
        saved = json.loads(Path(path).read_text(encoding="utf-8"))
        if not saved["points"]:
            continue
        p_given = np.asarray([r["p_given"] for r in saved["points"]], dtype=np.float64)
        margin = np.asarray([r["margin"] for r in saved["points"]], dtype=np.float64)
        result.add(list(saved["rows"]), p_given, margin)
    return result


def fold_callback(
    fold_dir: Path,
    trained: list[int],
    inputs: Sequence[Any],
    given: Sequence[Any],
    multi_label: bool,
    points: int,
    format_text: Callable[[str], str],
) -> Any:
    """The callback recording one fold's training rows (`trained`, row numbers) into its
    folder; texts formatted as training formats them (the task's format_text)."""
    formatted = [
        tuple(format_text(t) for t in x) if isinstance(x, tuple | list) else format_text(x)
        for x in (inputs[i] for i in trained)
    ]
    return training_dynamics(
        formatted, trained, [given[i] for i in trained], multi_label, fold_dir / DYNAMICS_FILE, points
    )


def check_recorded(out: Path, done: dict[str, Path]) -> None:
    """data_map=True on resume: the folds done earlier (by name) must have recorded their
    dynamics."""
    for name, fold_dir in done.items():
        path = fold_dir / DYNAMICS_FILE
        if not path.is_file():
            raise ConfigError(
                f"data_map=True, but {name} of the audit in {out} was trained without it "
                f"({path} is missing). Pass overwrite=True to run the audit again with the data "
                "map (CLI: --overwrite), or leave data_map out."
            )


def write_data_map(
    out: Path,
    fold_dirs: Sequence[Path],
    given: Sequence[Any],
    labels: Sequence[str],
    multi_label: bool,
    summary_file: Path,
) -> tuple[DataMap, Path]:
    """data_map.csv from the folds' records (one line per training row, in the file's order),
    and its entry in audit.json."""
    result = data_map([fold_dir / DYNAMICS_FILE for fold_dir in fold_dirs], len(given))
    path = out / DATA_MAP_FILE
    staged = path.with_suffix(".tmp")
    with staged.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(DATA_MAP_COLUMNS)
        columns = (result.confidence, result.variability, result.aum, result.correctness)
        for i, value in enumerate(given):
            name = (
                ",".join(labels[j] for j, v in enumerate(value) if v > 0.5)
                if multi_label
                else labels[int(value)]
            )
            writer.writerow([i, name, *(f"{c[i]:.4f}" for c in columns), int(result.points[i])])
    staged.replace(path)
    summary = json.loads(summary_file.read_text(encoding="utf-8"))
    summary["data_map"] = {
        "file": DATA_MAP_FILE,
        "columns": list(DATA_MAP_COLUMNS),
        "points": int(result.points.sum()),
    }
    write_json(summary_file, summary)
    logger.info("Data map: %s (%d rows).", path, len(given))
    return result, path
