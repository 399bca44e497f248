"""Atomic file writes: readers see the old file or the new one, never half of one."""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO

_CHUNK = 8 << 20


def atomic_write_stream(src: BinaryIO, path: str | Path) -> Path:
    """Copy the stream ``src`` to ``path`` via a temporary file in the same folder + ``os.replace``.

    Streams in chunks, so multi-GB files never sit in memory. A failure (or a kill) leaves the
    old file as it was and no temporary file behind.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
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
