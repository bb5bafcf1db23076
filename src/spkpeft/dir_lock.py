"""One writer per directory: an exclusive ``fcntl.flock`` on ``DIR/.spkpeft.lock`` holding the owner's pid.

A training run directory and an embedding cache are written by one process at a time; a second process
gets :class:`DirectoryInUseError` naming the directory and the owner's pid, instead of both passing a
check and then interleaving their writes. The kernel drops the lock when its owner exits (even on
SIGKILL), so a crashed run never leaves a stale lock behind. The lock file itself stays.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

LOCK_FILE = ".spkpeft.lock"


class DirectoryInUseError(RuntimeError):
    """Another process holds the directory's lock; the message names the directory and its pid."""


@contextlib.contextmanager
def exclusive_dir(directory: str | Path, what: str = "directory") -> Iterator[Path]:
    """Hold ``DIR/.spkpeft.lock`` (the directory is created if needed) for the ``with`` block; raise
    :class:`DirectoryInUseError` at once if another process holds it. ``what`` names the directory's role
    in the message ("run directory", "embedding cache")."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise DirectoryInUseError(
                f"{what} {directory} is in use by another spkpeft process (pid {owner}, lock {path}); wait "
                "for it to finish or use another directory"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        log.debug("locked %s", path)
        yield directory
    finally:
        os.close(fd)  # releases the flock
