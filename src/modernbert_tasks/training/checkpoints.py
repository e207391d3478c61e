"""The run folder and its checkpoints: one run per folder (resume, overwrite or refuse), and
checkpoints that survive crashes (find the last complete one, report failed writes).

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

from ..errors import ConfigError, ModelLoadError, OutputWriteError
from ..options import TrainOptions, default_output_dir
from ..task import Task
from .run import LOGS_SUBDIR, MODEL_SUBDIR
from .task_source import resolve_task

__all__ = [
    "OutputWriteError",
    "STATE_FILE",
    "checkpoint_folders",
    "last_complete_checkpoint",
    "partial_checkpoints",
    "is_disk_full",
    "reporting_write_errors",
    "refusing_unsafe_checkpoint",
    "output_dir_for",
    "cleaning_up_new_folders",
    "find_checkpoint",
    "clear_previous_run",
]

logger = logging.getLogger(__name__)

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
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := _CHECKPOINT.match(p.name)) and p.is_dir()]
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
        what = (
            f"writing checkpoint {str(partial[-1])!r} failed"
            if partial
            else f"writing to {str(output_dir)!r} failed"
        )
        cause = getattr(exc, "filename", None)
        where = f" (file {cause!r})" if cause else ""
        reason = (
            f"the disk is full ({type(exc).__name__}: {exc})" if disk_full else f"{type(exc).__name__}: {exc}"
        )
        space = _free_space(output_dir)
        free = (
            f" Free space on the disk that holds {str(output_dir)!r} (it has {space} now), "
            "lower save_total_limit, or choose an output_dir on a larger disk; then"
            if disk_full
            else f" Fix the cause (that disk has {space} now), then"
        )
        state = (
            f" The unfinished checkpoint was removed; the last complete one, "
            f"{str(Path(last).name)!r}, is intact."
            if partial and last
            else f" The last complete checkpoint, {str(Path(last).name)!r}, is intact."
            if last
            else " No complete checkpoint exists yet, so resuming starts over."
        )
        message = f"Training stopped: {what}{where}: {reason}.{state}{free} resume with {resume_hint}."
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
        detail = next(
            (line.strip() for line in str(exc).splitlines() if "GLOBAL" in line or "Unsupported" in line),
            type(exc).__name__,
        )
        raise ModelLoadError(
            f"Checkpoint {os.fspath(checkpoint)!r} holds pickled objects other than tensors "
            f"({detail}), so it was not loaded: unpickling them could run arbitrary code. If you "
            "did not write this checkpoint, do not trust it. Resume from another checkpoint "
            "(resume='path/to/checkpoint-N'), or start over with overwrite=True."
        ) from None


# --- the run folder ---------------------------------------------------------------------
def output_dir_for(task: str | Task | None, output_dir: str | os.PathLike | None) -> Path:
    out = Path(output_dir) if output_dir is not None else default_output_dir(resolve_task(task, {})[0].name)
    blocked = next((p for p in (out, *out.parents) if p.exists() and not p.is_dir()), None)
    if blocked is not None:
        raise ConfigError(
            f"output_dir {os.fspath(out)!r} cannot be a folder: {os.fspath(blocked)!r} "
            "is a file. Pass a folder path, e.g. output_dir='runs/my-run' (CLI: "
            "--output-dir runs/my-run)."
        )
    return out


@contextlib.contextmanager
def cleaning_up_new_folders(out: Path):
    """A run that fails leaves no empty folders it created (e.g. runs/ and runs/<task>/)."""
    created = [p for p in (out, *out.parents) if not p.exists()]
    try:
        yield
    except BaseException:
        for folder in created:  # deepest first; a folder with anything in it stays
            try:
                folder.rmdir()
            except FileNotFoundError:
                continue  # the run lock already removed the folder it made
            except OSError:
                break
        raise


def find_checkpoint(out: Path, opts: TrainOptions) -> str | None:
    """The checkpoint to resume from, after checking that an earlier run is not clobbered."""
    last = last_complete_checkpoint(out)
    if not isinstance(opts.resume, bool):  # an explicit checkpoint path
        path = Path(opts.resume)
        if not (path / STATE_FILE).is_file():
            raise ConfigError(
                f"resume={os.fspath(opts.resume)!r} is not a checkpoint folder "
                "(no trainer_state.json). Pass resume=True to use the last "
                f"checkpoint in {os.fspath(out)!r}, or a checkpoint-<step> folder."
            )
        return os.fspath(path)
    if opts.resume:
        for partial in partial_checkpoints(out):
            # a write cut short (killed process, full disk): it cannot be resumed from
            logger.warning(
                "Removing %s: its write was cut short (no trainer_state.json), so it cannot be resumed from.",
                partial,
            )
            shutil.rmtree(partial, ignore_errors=True)
        if last is None:
            logger.warning("resume=True but %s has no checkpoint: starting from scratch.", out)
        else:
            logger.info("Resuming from %s", last)
        return last
    earlier = [p.name for p in checkpoint_folders(out)][-2:]
    earlier += [f"{MODEL_SUBDIR}/"] if (out / MODEL_SUBDIR).is_dir() else []
    if earlier and not opts.overwrite:
        raise ConfigError(
            f"output_dir {os.fspath(out)!r} holds an earlier run ({', '.join(earlier)}). Pass "
            "resume=True to continue it (CLI: --resume), overwrite=True to delete it and start "
            "over (CLI: --overwrite), or another output_dir."
        )
    return None


def clear_previous_run(out: Path, opts: TrainOptions) -> None:
    """overwrite=True: remove the earlier run's checkpoints and logs (the model is replaced
    atomically at the end, so a good one survives a failed run)."""
    from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

    if not out.is_dir():
        return
    doomed = [p for p in out.glob(f"{PREFIX_CHECKPOINT_DIR}-*") if p.is_dir()]
    logs = Path(opts.logging_dir) if opts.logging_dir else out / LOGS_SUBDIR
    doomed += [logs] if logs.is_dir() else []
    for path in doomed:
        shutil.rmtree(path)
    if doomed:
        logger.info("overwrite=True: removed %d checkpoint/log folder(s) from %s", len(doomed), out)
