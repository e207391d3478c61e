"""Checkpoints that survive crashes: find the last complete one, report failed writes.

The Trainer writes a checkpoint folder file by file and `trainer_state.json` last, so a folder
without it is a write that was cut short (killed process, full disk). `get_last_checkpoint`
from transformers would still pick it and resuming would then fail; `last_complete_checkpoint`
skips it. `reporting_write_errors` turns a failed write during training into an
`OutputWriteError` that says what failed, where, and how to resume, after removing the partial
checkpoint so the earlier ones stay the resumable state. `refusing_unsafe_checkpoint` explains a
checkpoint whose pickles hold more than tensors (transformers loads them with
``weights_only=True``), instead of torch's advice to retry unsafely.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

from transformers.trainer import TRAINER_STATE_NAME
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from ..errors import ModelLoadError, OutputWriteError

__all__ = [
    "OutputWriteError",
    "STATE_FILE",
    "checkpoint_folders",
    "last_complete_checkpoint",
    "partial_checkpoints",
    "is_disk_full",
    "reporting_write_errors",
    "refusing_unsafe_checkpoint",
]

logger = logging.getLogger("modernbert_tasks")

STATE_FILE = TRAINER_STATE_NAME  # written last: a checkpoint without it was cut short
_CHECKPOINT = re.compile(rf"^{PREFIX_CHECKPOINT_DIR}-(\d+)$")
_DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
# how a full disk reads when it reaches us through safetensors (Rust) or torch (C++)
_DISK_FULL_TEXT = ("no space left on device", "storagefull", "disk quota exceeded")


def checkpoint_folders(output_dir: str | os.PathLike) -> list[Path]:
    """checkpoint-<step> folders in `output_dir`, by step, oldest first."""
    root = Path(output_dir)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir()
             if (m := _CHECKPOINT.match(p.name)) and p.is_dir()]
    return [p for _, p in sorted(found)]


def partial_checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """Checkpoint folders whose write never finished (no trainer_state.json)."""
    return [p for p in checkpoint_folders(output_dir) if not (p / STATE_FILE).is_file()]


def last_complete_checkpoint(output_dir: str | os.PathLike) -> str | None:
    """The newest checkpoint that was written completely, or None."""
    complete = [p for p in checkpoint_folders(output_dir) if (p / STATE_FILE).is_file()]
    return os.fspath(complete[-1]) if complete else None


def is_disk_full(exc: BaseException) -> bool:
    """Whether `exc` (or an exception it was raised from) says the disk or quota is full."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _DISK_FULL_ERRNOS:
            return True
        if any(text in str(current).lower() for text in _DISK_FULL_TEXT):
            return True
        current = current.__cause__ or current.__context__
    return False


def _free_space(folder: Path) -> str:
    try:
        return f"{shutil.disk_usage(folder).free / 2**20:,.0f} MiB free"
    except OSError:
        return "unknown free space"


def _discard_partial(output_dir: Path) -> list[Path]:
    """Remove unfinished checkpoint folders: they cannot be resumed and hold disk space."""
    removed = []
    for folder in partial_checkpoints(output_dir):
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


@contextlib.contextmanager
def reporting_write_errors(output_dir: str | os.PathLike, resume_hint: str) -> Iterator[None]:
    """Around `trainer.train()`: a failed checkpoint write, or a full disk, becomes an
    `OutputWriteError` naming the folder, the cause and how to resume."""
    output_dir = Path(output_dir)
    before = {p.name for p in partial_checkpoints(output_dir)}
    try:
        yield
    except Exception as exc:
        partial = [p for p in partial_checkpoints(output_dir) if p.name not in before]
        disk_full = is_disk_full(exc)
        if not partial and not disk_full:
            raise
        _discard_partial(output_dir)
        last = last_complete_checkpoint(output_dir)
        what = (f"writing checkpoint {str(partial[-1])!r} failed" if partial else
                f"writing to {str(output_dir)!r} failed")
        cause = getattr(exc, "filename", None)
        where = f" (file {cause!r})" if cause else ""
        reason = (f"the disk is full ({type(exc).__name__}: {exc})" if disk_full
                  else f"{type(exc).__name__}: {exc}")
        space = _free_space(output_dir)
        free = (f" Free space on the disk that holds {str(output_dir)!r} (it has {space} now), "
                "lower save_total_limit, or choose an output_dir on a larger disk; then"
                if disk_full else f" Fix the cause (that disk has {space} now), then")
        state = (f" The unfinished checkpoint was removed; the last complete one, "
                 f"{str(Path(last).name)!r}, is intact." if partial and last else
                 f" The last complete checkpoint, {str(Path(last).name)!r}, is intact."
                 if last else " No complete checkpoint exists yet, so resuming starts over.")
        message = (f"Training stopped: {what}{where}: {reason}.{state}{free} resume with "
                   f"{resume_hint}.")
        logger.error(message)
        raise OutputWriteError(message) from exc


@contextlib.contextmanager
def refusing_unsafe_checkpoint(checkpoint: str | os.PathLike | None) -> Iterator[None]:
    """Around `trainer.train(resume_from_checkpoint=...)`: a checkpoint whose optimizer,
    scheduler or RNG pickles hold anything but tensors becomes a `ModelLoadError`."""
    import pickle

    try:
        yield
    except pickle.UnpicklingError as exc:
        if checkpoint is None:
            raise
        detail = next((line.strip() for line in str(exc).splitlines()
                       if "GLOBAL" in line or "Unsupported" in line), type(exc).__name__)
        raise ModelLoadError(
            f"Checkpoint {os.fspath(checkpoint)!r} holds pickled objects other than tensors "
            f"({detail}), so it was not loaded: unpickling them could run arbitrary code. If you "
            "did not write this checkpoint, do not trust it. Resume from another checkpoint "
            "(resume='path/to/checkpoint-N'), or start over with overwrite=True."
        ) from None
