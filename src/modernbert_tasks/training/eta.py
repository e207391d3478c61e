"""After the first few steps, say how long training will take, and on a CPU, when that is
more than an hour, how to get a quick first result instead.

A first `modernbert-tasks train sst2` on a laptop is ModernBERT-large on 67,349 rows for 3
epochs: many hours, and nothing else says so before it is too late.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from transformers import TrainerCallback

from ..errors import hint

if TYPE_CHECKING:
    from transformers import TrainerControl, TrainerState, TrainingArguments

__all__ = ["TimeEstimate", "format_duration"]

logger = logging.getLogger(__name__)

TIMED_STEPS = 5  # steps timed after the first (which pays for warm-up, so it is not counted)
LONG_ON_CPU = 3600.0  # seconds; above this a CPU run gets the quick-start suggestion
DEMO_SAMPLES = 1000  # the recipe's own demo subset (docs/recipe.md)


def format_duration(seconds: float) -> str:
    """1h 02m 03s, 4m 05s or 6.1s."""
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    return f"{minutes}m {secs:02d}s" if minutes else f"{seconds:.1f}s"


class TimeEstimate(TrainerCallback):
    """Logs one estimate of the training time, once `TIMED_STEPS` steps have been timed."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.start: tuple[int, float] | None = None  # (step, time) after the first step
        self.done = False

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if self.done or not state.is_world_process_zero:
            return
        now = self.clock()
        if self.start is None:
            self.start = (state.global_step, now)
            return
        timed = state.global_step - self.start[0]
        remaining = state.max_steps - state.global_step
        if timed < TIMED_STEPS and remaining > 0:
            return
        self.done = True
        per_step = (now - self.start[1]) / timed
        total = per_step * state.max_steps
        logger.info(
            "Training time: about %s for %d steps (%.2f s per step over the first "
            "%d; evaluations come on top).",
            format_duration(total),
            state.max_steps,
            per_step,
            state.global_step,
        )
        if args.device.type == "cpu" and per_step * remaining > LONG_ON_CPU:
            logger.warning(
                "That is long for a CPU. For a first result in minutes, train on the recipe's "
                "demo subset: %s (or use a GPU).",
                hint(f"max_train_samples={DEMO_SAMPLES}", f"--max-train-samples {DEMO_SAMPLES}"),
            )
