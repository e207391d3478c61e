"""One run per output folder, on `filelock.SoftFileLock`.

`fine_tune` holds ``<output_dir>/.modernbert_tasks.lock`` from start to finish. filelock
creates it with ``O_CREAT | O_EXCL`` (which, unlike `flock`, also works between hosts on a
shared file system) and records the holder's PID, host and process start time: a lock whose
holder died on this host is taken over, one from another host is never guessed at, and an
unreadable one is refused rather than broken (fail closed).

Next to it, ``.modernbert_tasks.lock.json`` says who holds the lock in words (PID, host, start
time, command), so a refused run can name the holder.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import RunLockedError

__all__ = ["LOCK_NAME", "HOLDER_NAME", "RunLockedError", "RunLock", "run_lock", "read_holder"]

logger = logging.getLogger(__name__)

LOCK_NAME = ".modernbert_tasks.lock"
HOLDER_NAME = LOCK_NAME + ".json"


def _command() -> list[str]:
    """How this process was started, e.g. ['python', '-m', 'modernbert_tasks', 'train', ...]."""
    argv = list(getattr(sys, "orig_argv", None) or sys.argv)
    return [os.path.basename(argv[0])] + argv[1:] if argv else []


def read_holder(output_dir: str | os.PathLike) -> dict[str, Any] | None:
    """Who holds (or, when it died, held) the lock on `output_dir`; None if unknown."""
    try:
        data = json.loads((Path(output_dir) / HOLDER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _describe(info: dict[str, Any] | None) -> str:
    if info is None:
        return "an unknown process (no readable record of the holder)"
    command = " ".join(info.get("argv") or [])[:200]
    return (
        f"process {info.get('pid')} on host {info.get('host')!r} (started "
        f"{info.get('started_at', '?')}" + (f", command: {command}" if command else "") + ")"
    )


class RunLock:
    """The lock on one output folder. Use as a context manager, or `acquire`/`release`."""

    def __init__(self, output_dir: str | os.PathLike) -> None:
        from filelock import SoftFileLock

        self.output_dir = Path(output_dir)
        self.path = self.output_dir / LOCK_NAME
        self.holder_path = self.output_dir / HOLDER_NAME
        self._lock = SoftFileLock(self.path, timeout=0, is_singleton=False, thread_local=False)
        self._created_dir = False

    def acquire(self) -> RunLock:
        from filelock import Timeout

        self._created_dir = not self.output_dir.exists()
        self.output_dir.mkdir(parents=True, exist_ok=True)
        previous = read_holder(self.output_dir)
        try:
            self._lock.acquire()
        except Timeout as exc:
            raise self._locked_error(previous, exc) from None
        if previous is not None:  # a clean release removes the record: its holder died
            logger.warning(
                "Removing a stale lock in %s left by %s, which is no longer running.",
                self.output_dir,
                _describe(previous),
            )
        me = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "argv": _command(),
        }
        staged = self.holder_path.with_suffix(f".{os.getpid()}.tmp")
        staged.write_text(json.dumps(me), encoding="utf-8")
        os.replace(staged, self.holder_path)
        return self

    def release(self) -> None:
        """Remove the lock and its record (only ever our own)."""
        if not self._lock.is_locked:
            return
        with contextlib.suppress(FileNotFoundError):
            self.holder_path.unlink()
        self._lock.release()
        if self._created_dir:  # a run that failed at once leaves no empty folder behind
            with contextlib.suppress(OSError):
                self.output_dir.rmdir()  # only succeeds when empty

    def _locked_error(self, info: dict[str, Any] | None, exc: Exception) -> RunLockedError:
        if info is None:  # no record (yet): filelock's own words say what it knows
            info_text = f"an unknown process ({' '.join(str(exc).split()[-12:])})"
        else:
            info_text = _describe(info)
        other_host = info is not None and info.get("host") != socket.gethostname()
        check = (
            " That host is not this one, so whether it still runs cannot be checked from here."
            if other_host
            else ""
        )
        return RunLockedError(
            f"output_dir {str(self.output_dir)!r} is in use by another run: {info_text}. "
            "Two runs in one folder would overwrite each other's checkpoints. Wait for it to "
            f"finish, or pass another output_dir.{check} If you are sure that run is no longer "
            f"running, delete the lock file {str(self.path)!r} and try again."
        )

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


@contextlib.contextmanager
def run_lock(output_dir: str | os.PathLike, enabled: bool = True) -> Iterator[RunLock | None]:
    """Hold the lock on `output_dir` for the block (`enabled=False`: a no-op, for the
    non-main processes of a distributed run, which share the main process's folder)."""
    if not enabled:
        yield None
        return
    with RunLock(output_dir) as lock:
        yield lock
