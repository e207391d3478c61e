"""One run per output folder: a lock file that names its holder and clears itself when stale.

`fine_tune` holds ``<output_dir>/.modernbert_tasks.lock`` from start to finish. The file is
created with ``O_CREAT | O_EXCL`` (atomic on local and NFSv3+ file systems) and holds JSON:
the process id, the host, the process start time and the command. A second run in the same
folder is refused with that information. A lock whose process is gone -- same host, and the
PID is not running or now belongs to a younger process -- is stale: it is removed, with a
warning, and the new run proceeds. Stdlib only.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import RunLockedError

__all__ = ["LOCK_NAME", "RunLockedError", "RunLock", "run_lock", "read_lock", "lock_is_stale"]

logger = logging.getLogger("modernbert_tasks")

LOCK_NAME = ".modernbert_tasks.lock"
# A lock file that cannot be parsed is normally one being written right now; only after this
# many seconds is it treated as debris of a crash.
UNREADABLE_GRACE_S = 10.0


def _process_start(pid: int) -> str | None:
    """The kernel's start time of `pid` (Linux, in clock ticks since boot), or None.

    Recorded with the PID so a PID reused by an unrelated process is not taken for the holder.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may contain spaces and parentheses: split after the last ')'
    fields = stat.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else None


def _command() -> list[str]:
    """How this process was started, e.g. ['python', '-m', 'modernbert_tasks', 'train', ...]."""
    argv = list(getattr(sys, "orig_argv", None) or sys.argv)
    return [os.path.basename(argv[0])] + argv[1:] if argv else []


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    except OSError:
        return False
    return True


def read_lock(path: str | os.PathLike) -> dict[str, Any] | None:
    """The lock file's JSON, or None when it is absent or unreadable."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def lock_is_stale(info: dict[str, Any] | None, path: Path) -> bool:
    """True when the holder is certainly gone; False when it may still be running."""
    if info is None:  # unreadable: a crash between create and write, or a write in progress
        try:
            return time.time() - path.stat().st_mtime > UNREADABLE_GRACE_S
        except OSError:
            return True  # it vanished: nothing to wait for
    if info.get("host") != socket.gethostname():
        return False  # another machine's process cannot be checked from here
    pid = info.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return True
    if not _pid_alive(pid):
        return True
    recorded = info.get("process_start")
    current = _process_start(pid)
    return recorded is not None and current is not None and recorded != current


def _describe(info: dict[str, Any] | None) -> str:
    if info is None:
        return "an unknown process (the lock file is unreadable)"
    command = " ".join(info.get("argv") or [])[:200]
    return (f"process {info.get('pid')} on host {info.get('host')!r} (started "
            f"{info.get('started_at', '?')}" + (f", command: {command}" if command else "") + ")")


class RunLock:
    """The lock on one output folder. Use as a context manager, or `acquire`/`release`."""

    def __init__(self, output_dir: str | os.PathLike) -> None:
        self.output_dir = Path(output_dir)
        self.path = self.output_dir / LOCK_NAME
        self._token: str | None = None
        self._created_dir = False

    def acquire(self) -> RunLock:
        self._created_dir = not self.output_dir.exists()
        self.output_dir.mkdir(parents=True, exist_ok=True)
        me = {"pid": os.getpid(), "host": socket.gethostname(),
              "process_start": _process_start(os.getpid()),
              "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "argv": _command(),
              "token": os.urandom(8).hex()}
        for _ in range(3):  # a retry per stale lock removed; a third clash is a real one
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                info = read_lock(self.path)
                if not lock_is_stale(info, self.path):
                    raise self._locked_error(info) from None
                # re-read first: another run may have replaced the stale lock meanwhile
                if read_lock(self.path) == info:
                    logger.warning("Removing a stale lock in %s left by %s, which is no longer "
                                   "running.", self.output_dir, _describe(info))
                    with contextlib.suppress(FileNotFoundError):
                        self.path.unlink()
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(me, fh)
                fh.flush()
                os.fsync(fh.fileno())
            self._token = me["token"]
            return self
        raise self._locked_error(read_lock(self.path))

    def release(self) -> None:
        """Remove the lock if it is still ours (never someone else's)."""
        if self._token is None:
            return
        info = read_lock(self.path)
        if info is not None and info.get("token") == self._token:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        self._token = None
        if self._created_dir:  # a run that failed at once leaves no empty folder behind
            with contextlib.suppress(OSError):
                self.output_dir.rmdir()  # only succeeds when empty

    def _locked_error(self, info: dict[str, Any] | None) -> RunLockedError:
        other_host = info is not None and info.get("host") != socket.gethostname()
        check = (" That host is not this one, so whether it still runs cannot be checked from "
                 "here." if other_host else "")
        return RunLockedError(
            f"output_dir {str(self.output_dir)!r} is in use by another run: {_describe(info)}. "
            "Two runs in one folder would overwrite each other's checkpoints. Wait for it to "
            f"finish, or pass another output_dir.{check} If you are sure that run is no longer "
            f"running, delete the lock file {str(self.path)!r} and try again.")

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
