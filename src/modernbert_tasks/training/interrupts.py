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

logger = logging.getLogger(__name__)

RESUME_HINT = "fine_tune(..., resume=True) with the same output_dir (CLI: add --resume)"


class GracefulInterrupt(TrainerCallback):
    """Turns a requested stop into "save a checkpoint after this step, then stop"."""

    def __init__(self) -> None:
        self.requested = False
        self.stopped_at: int | None = None
        self.cause = "Ctrl-C"  # or "SIGTERM" (what batch schedulers send)

    def request_stop(self, cause: str = "Ctrl-C") -> None:
        self.requested = True
        self.cause = cause

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> TrainerControl:
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
        from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

        from .checkpoints import STATE_FILE

        assert trainer.args.output_dir is not None  # training always sets one
        folder = Path(trainer.args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
        saved = folder if (folder / STATE_FILE).is_file() else None
        where = (
            f"saved checkpoint {str(saved)!r}"
            if saved
            else f"no checkpoint could be saved in {trainer.args.output_dir!r}"
        )
        message = (
            f"Training interrupted by {self.cause} at step {state.global_step} of "
            f"{state.max_steps}; {where}. To continue where it stopped, run "
            f"{RESUME_HINT}."
        )
        logger.warning(message)
        raise TrainingInterrupted(
            message, saved, state.global_step, signal_name="SIGTERM" if self.cause == "SIGTERM" else "SIGINT"
        )


@contextlib.contextmanager
def stop_on_sigint(callback: GracefulInterrupt) -> Iterator[None]:
    """While the block runs: the first SIGINT or SIGTERM -> `callback.request_stop()` (finish
    the step, checkpoint, stop); a second SIGINT aborts at once.

    SIGTERM is how SLURM, Kubernetes and `kill` stop a job, so it is treated like Ctrl-C.
    Only the main thread can install signal handlers; elsewhere (and where the current handler
    was not installed from Python, so it could not be restored) the signals keep their behaviour.
    """
    signals = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}
    previous = {sig: signal.getsignal(sig) for sig in signals}
    if threading.current_thread() is not threading.main_thread() or None in previous.values():
        yield
        return

    owner = os.getpid()

    def handler(signum: int, frame: Any) -> None:
        if os.getpid() != owner:
            # a forked DataLoader worker inherited this handler; a terminal's Ctrl-C reaches
            # the whole process group, and the main process alone decides when to stop
            return
        if callback.requested:
            if signum == signal.SIGINT:
                signal.signal(signal.SIGINT, previous[signal.SIGINT])
                raise KeyboardInterrupt("second Ctrl-C: training aborted without saving")
            return  # a repeated SIGTERM: the checkpoint is already on its way
        name = signals[signal.Signals(signum)]
        callback.request_stop(name)
        logger.warning(
            "%s received: finishing the current step, then saving a checkpoint and stopping.%s",
            name,
            " Press Ctrl-C again to abort at once without saving." if signum == signal.SIGINT else "",
        )

    for sig in signals:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, before in previous.items():
            signal.signal(sig, before)
