"""What a run is made of and what it returns: `PreparedRun` (everything `prepare` sets up
before `trainer.train()`) and `FineTuneResult`, plus the manifest a run's model is saved with."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import hardware, model_sources
from ..long_text import LongText
from ..options import ResolvedOptions, TrainOptions
from ..task import Task
from .exclusion import excluded_summary

if TYPE_CHECKING:
    import datasets
    from transformers import Trainer

__all__ = ["FineTuneResult", "PreparedRun", "MODEL_SUBDIR", "LOGS_SUBDIR", "RUN_METRICS"]

MODEL_SUBDIR = model_sources.MODEL_SUBDIR  # the final model: <output_dir>/model
LOGS_SUBDIR = "logs"  # TensorBoard: <output_dir>/logs
# keys of FineTuneResult.metrics that describe the training run rather than the model
RUN_METRICS = (
    "train_runtime",
    "train_samples_per_second",
    "train_steps_per_second",
    "train_loss",
    "epoch",
    "total_flos",
)


@dataclass
class FineTuneResult:
    """What a run produced. `to_dict()` is JSON-ready.

    metrics: the final model's evaluation: the task's metrics and "loss" (no "eval_" prefix),
        "test_*" when the test split has labels, and "train_runtime",
        "train_samples_per_second", "train_steps_per_second", "train_loss", "epoch".
    model_path: the saved model folder (load it with `load_finetuned`).
    best_checkpoint: the checkpoint the final model comes from (None without evaluation).
    log_history: the Trainer's log entries (losses, learning rates, evaluations).
    output_dir: the run folder (checkpoints, logs, model).
    """

    metrics: dict[str, float]
    model_path: Path
    best_checkpoint: Path | None
    log_history: list[dict[str, Any]]
    output_dir: Path
    # fine_tune(seeds=[...]): the per-seed figures and their summary (see training/seeds.py);
    # `metrics` are then those of the promoted (best) seed
    seeds: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {
            "metrics": dict(self.metrics),
            "model_path": str(self.model_path),
            "best_checkpoint": str(self.best_checkpoint) if self.best_checkpoint else None,
            "log_history": [dict(entry) for entry in self.log_history],
            "output_dir": str(self.output_dir),
        }
        if self.seeds is not None:
            out["seeds"] = self.seeds
        return out


@dataclass
class PreparedRun:
    """Everything `fine_tune` sets up before calling `trainer.train()`."""

    task: Task
    plugin: tuple[str | None, str | None]  # (name, version) of the plugin providing the task
    model_name: str
    output_dir: Path
    options: TrainOptions
    resolved: ResolvedOptions
    hardware: hardware.Hardware
    max_length: int
    trainer: Trainer
    checkpoint: str | None  # what training resumes from
    test_dataset: datasets.Dataset | None = None  # a labelled test split, scored at the end
    # what prediction reads of a text (the model's position limit), and the eval/test splits
    # tokenized to it for the final metrics (the training-length ones when nothing was cut)
    predict_max_length: int | None = None
    final_splits: dict[str, datasets.Dataset] = field(default_factory=dict)
    num_examples: dict[str, int] = field(default_factory=dict)
    held_out: dict[str, Any] | None = None  # the eval rows taken from train, when no eval split
    push: dict[str, Any] | None = None  # push_to_hub=True: repo_id, private, token
    source: model_sources.ModelSource | None = None  # the model, resolved once (search reloads)
    long_text: LongText = field(default_factory=LongText)  # train_long_text, resolved

    @property
    def model_path(self) -> Path:
        return self.output_dir / MODEL_SUBDIR

    def manifest(self, metrics: dict[str, float]) -> dict[str, Any]:
        """The manifest the final model is saved with (see artifacts/manifest.py)."""
        return _manifest(self, metrics)


def _manifest(run: PreparedRun, metrics: dict[str, float]) -> dict[str, Any]:
    from transformers import PreTrainedModel

    from ..artifacts.manifest import build_manifest

    model = run.trainer.model
    assert isinstance(model, PreTrainedModel)  # ModelSource loads a transformers model
    args = run.trainer.args.to_dict()
    training = {name: args.get(name) for name in run.resolved.trainer_kwargs}
    training.update(
        {
            f.name: getattr(run.options, f.name)
            for f in dataclasses.fields(run.options)
            if f.name != "callbacks"
        }
    )
    # "precision" records what training autocast to; the final metrics are fp32, as
    # load_finetuned predicts (fp32 labels do not depend on batching)
    training.update(
        {
            "precision": run.hardware.precision,
            "metrics_precision": "fp32",
            "attention": model.config._attn_implementation,
            "world_size": run.trainer.args.world_size,
            # a plugin's own format_text is applied at prediction only where the
            # plugin is installed; load_finetuned warns otherwise
            "format_text": "custom" if type(run.task).format_text is not Task.format_text else "text_prefix",
            "num_examples": run.num_examples,
            "held_out_eval": run.held_out,
            "excluded_rows": excluded_summary(run.options),
            "class_weight_values": _class_weight_values(run),
            "global_step": run.trainer.state.global_step,
        }
    )
    return build_manifest(
        run.task,
        plugin=run.plugin[0],
        plugin_version=run.plugin[1],
        max_length=run.max_length,
        metrics=metrics,
        base_model=model_sources.public_name(run.model_name),
        training=training,
        prediction={"max_length": run.predict_max_length or run.max_length, **run.long_text.to_dict()},
    )


def _class_weight_values(run: PreparedRun) -> dict[str, float] | None:
    """The loss weights the run trained with, by label (None: unweighted)."""
    loss = run.trainer.compute_loss_func
    weights = getattr(loss, "weights", None)
    return dict(zip(run.task.labels, weights, strict=True)) if weights else None
