"""Atomic file writes: readers see the old file or the new one, never half of one."""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO

_CHUNK = 8 << 20


def _read_umask() -> int:
    # os.umask can only be read by setting it; set it straight back. Read once, at import:
    # flipping it later could race with files other threads create meanwhile.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_read_umask()


def atomic_write_stream(src: BinaryIO, path: str | Path) -> Path:
    """Copy the stream ``src`` to ``path`` via a temporary file in the same folder + ``os.replace``.

    Streams in chunks, so multi-GB files never sit in memory. A failure (or a kill) leaves the
    old file as it was and no temporary file behind.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        # mkstemp makes the file 0600; give it the mode open() would, like every other output.
        os.fchmod(fd, _FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            shutil.copyfileobj(src, f, _CHUNK)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """:func:`atomic_write_stream` for bytes already in memory."""
    return atomic_write_stream(io.BytesIO(data), path)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """:func:`atomic_write_bytes` for UTF-8 text."""
    return atomic_write_bytes(path, text.encode("utf-8"))
