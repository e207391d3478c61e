"""Ctrl-C during training: the first one stops cleanly with a checkpoint, the second aborts.

`fine_tune` adds a `GracefulInterrupt` callback to the Trainer and, for the duration of
`trainer.train()`, installs the SIGINT handler of `stop_on_sigint` (main thread only; the
previous handler is restored afterwards). The first Ctrl-C only sets a flag: the current
optimizer step finishes, the callback asks the Trainer to save a checkpoint and stop, and
`raise_if_interrupted` then raises `TrainingInterrupted` with the command that resumes. A
second Ctrl-C raises `KeyboardInterrupt` at once, without saving.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from transformers import TrainerCallback

from ..errors import TrainingInterrupted

if TYPE_CHECKING:
    from transformers import Trainer, TrainerControl, TrainerState, TrainingArguments

__all__ = ["GracefulInterrupt", "TrainingInterrupted", "stop_on_sigint", "RESUME_HINT"]

logger = logging.getLogger("modernbert_tasks")

RESUME_HINT = "fine_tune(..., resume=True) with the same output_dir (CLI: add --resume)"





class GracefulInterrupt(TrainerCallback):
    """Turns a requested stop into "save a checkpoint after this step, then stop"."""

    def __init__(self) -> None:
        self.requested = False
        self.stopped_at: int | None = None

    def request_stop(self) -> None:
        self.requested = True

    def on_step_end(self, args: TrainingArguments, state: TrainerState,
                    control: TrainerControl, **kwargs: Any) -> TrainerControl:
        if self.requested and self.stopped_at is None:
            # the Trainer saves right after on_step_end (in _maybe_log_save_evaluate)
            control.should_save = True
            control.should_training_stop = True
            self.stopped_at = state.global_step
        return control

    def raise_if_interrupted(self, trainer: Trainer) -> None:
        """After `trainer.train()` returns: raise if it stopped early because of Ctrl-C.

        A stop requested during the very last step changes nothing: the run is complete.
        """
        state = trainer.state
        if not self.requested or state.global_step >= state.max_steps:
            return
        folder = Path(trainer.args.output_dir) / f"checkpoint-{state.global_step}"
        saved = folder if (folder / "trainer_state.json").is_file() else None
        where = (f"saved checkpoint {str(saved)!r}" if saved else
                 f"no checkpoint could be saved in {trainer.args.output_dir!r}")
        message = (f"Training interrupted by Ctrl-C at step {state.global_step} of "
                   f"{state.max_steps}; {where}. To continue where it stopped, run "
                   f"{RESUME_HINT}.")
        logger.warning(message)
        raise TrainingInterrupted(message, saved, state.global_step)


@contextlib.contextmanager
def stop_on_sigint(callback: GracefulInterrupt) -> Iterator[None]:
    """While the block runs: first SIGINT -> `callback.request_stop()`, second -> abort.

    Only the main thread can install signal handlers; elsewhere (and where the current handler
    was not installed from Python, so it could not be restored) Ctrl-C keeps its behaviour.
    """
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or previous is None:
        yield
        return

    owner = os.getpid()

    def handler(signum: int, frame: Any) -> None:
        if os.getpid() != owner:
            # a forked DataLoader worker inherited this handler; a terminal's Ctrl-C reaches
            # the whole process group, and the main process alone decides when to stop
            return
        if callback.requested:
            signal.signal(signal.SIGINT, previous)
            raise KeyboardInterrupt("second Ctrl-C: training aborted without saving")
        callback.request_stop()
        logger.warning("Ctrl-C received: finishing the current step, then saving a checkpoint "
                       "and stopping. Press Ctrl-C again to abort at once without saving.")

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
