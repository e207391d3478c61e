"""Stop a diverging run before it saves NaN weights.

A learning rate far too high makes the loss NaN within a few steps; the Trainer would go on,
save checkpoints of NaN weights, fit a temperature on NaN logits and only then fail. Here the
loss the Trainer logs anyway (already on the host: no extra sync per step) is checked at every
logging step, and the weights are checked once before each checkpoint is written, so no
checkpoint and no model with non-finite weights reaches the disk.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from transformers import TrainerCallback

from ..errors import TrainingDiverged, hint

if TYPE_CHECKING:
    import torch
    from transformers import TrainerControl, TrainerState, TrainingArguments

__all__ = ["StopOnDivergence", "first_non_finite"]

# what a logged entry may carry that must be finite for the run to be sound
WATCHED = ("loss", "grad_norm")


def first_non_finite(model: torch.nn.Module) -> str | None:
    """The name of the first parameter holding NaN or inf, or None."""
    import torch

    with torch.no_grad():
        for name, param in model.named_parameters():
            if not bool(torch.isfinite(param).all()):
                return name
    return None


class StopOnDivergence(TrainerCallback):
    """Raises `TrainingDiverged` at the first logged non-finite loss or gradient norm, and
    before a checkpoint of non-finite weights would be saved."""

    def __init__(self, learning_rate: float) -> None:
        self.learning_rate = learning_rate
        self.last_finite: tuple[int, float] | None = None

    def _fail(self, what: str, step: int) -> None:
        before = (
            f"; the last finite loss was {self.last_finite[1]:.4g} at step {self.last_finite[0]}"
            if self.last_finite
            else ""
        )
        raise TrainingDiverged(
            f"Training diverged: {what} at step {step}{before}. learning_rate="
            f"{self.learning_rate:g} is probably too high: "
            + hint(
                "pass a lower one, e.g. learning_rate=3e-5.", "pass a lower one, e.g. --learning-rate 3e-5."
            )
            + " No checkpoint or model with non-finite weights was saved."
        )

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        for key in WATCHED:
            value = (logs or {}).get(key)
            if isinstance(value, float) and not math.isfinite(value):
                self._fail(f"the {key.replace('_', ' ')} became {value}", state.global_step)
        if logs is not None and isinstance(logs.get("loss"), float):
            self.last_finite = (state.global_step, logs["loss"])

    def _check_weights(self, state: TrainerState, model: torch.nn.Module | None) -> None:
        bad = first_non_finite(model) if model is not None else None
        if bad is not None:
            self._fail(f"parameter {bad!r} became non-finite", state.global_step)

    # the Trainer saves right after these two when should_save is set: one pass over the
    # weights per checkpoint, none per step
    def on_step_end(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        model: torch.nn.Module | None = None,
        **kwargs: Any,
    ) -> None:
        if control.should_save:
            self._check_weights(state, model)

    on_epoch_end = on_step_end  # save_strategy="epoch" sets should_save here instead

    def on_train_end(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        model: torch.nn.Module | None = None,
        **kwargs: Any,
    ) -> None:
        self._check_weights(state, model)  # the weights fine_tune is about to save
