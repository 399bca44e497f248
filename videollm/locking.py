"""Advisory locks: one writer per output folder, and one opener at a time of a file.

Two extractions into one folder both append to its manifest and replace each other's files,
which leaves a manifest whose lines and hashes no longer describe the files. An advisory
``flock`` on the folder itself makes the second writer fail at once. The kernel drops the
lock when its process dies, so a ``kill -9`` never leaves a stale lock behind, and no lock
file is left in the folder (or uploaded with it).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from videollm.errors import VideoLLMError


class OutputLockedError(VideoLLMError):
    """Another process is writing the same output folder."""


@contextmanager
def exclusive_output(folder: str | Path) -> Iterator[None]:
    """Hold the write lock of ``folder`` (created if missing) for the duration of the block.

    Args:
        folder: A local folder. For an ``s3://`` output this is its local staging folder, so
            the lock keeps out writers on the same machine only.

    Raises:
        OutputLockedError: Another process holds it.
    """
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputLockedError(
                f"{folder} is being written by another videollm process; wait for it to "
                "finish, or write to another folder"
            ) from None
        yield
    finally:
        os.close(fd)  # closing releases the lock


@contextmanager
def exclusive_file(path: str | Path) -> Iterator[None]:
    """Hold an ``flock`` on the file ``path`` (created empty if missing), waiting for it.

    The lock is on the file itself, so no lock file is left beside it; SQLite's own locks
    are ``fcntl`` record locks, which ``flock`` does not touch.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
