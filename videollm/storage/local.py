"""Storage over a local folder: keys are paths under the root, writes are temp file + rename."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import BinaryIO, cast

from videollm.atomic import atomic_write_bytes, atomic_write_stream
from videollm.errors import StorageError
from videollm.storage.base import Storage, StorageNotFoundError, normalize_key

logger = logging.getLogger(__name__)


def is_temp_name(name: str) -> bool:
    """Whether ``name`` is an in-progress atomic-write temp file (``.NAME.XXXX.tmp``).

    Such files belong to a writer that has not finished (or was killed); listings skip them so
    a half-written file is never taken for a finished one.
    """
    return name.startswith(".") and name.endswith(".tmp")


def atomic_copy(src: str | Path, target: str | Path) -> Path:
    """Copy the file ``src`` to ``target`` atomically (see :func:`atomic_write_stream`)."""
    with open(src, "rb") as f:
        return atomic_write_stream(f, target)


class LocalStorage(Storage):
    """Objects as files under ``root``; the root is created on first write.

    Args:
        root: the folder that holds the objects.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().absolute()

    def __repr__(self) -> str:
        return f"LocalStorage({str(self.root)!r})"

    def path(self, key: str) -> Path:
        """The local path of ``key`` (the root itself for the empty key)."""
        key = normalize_key(key)
        return self.root / key if key else self.root

    def put(self, local_path: str | Path, key: str) -> None:
        """Copy ``local_path`` to ``key`` atomically; copying a file onto itself is a no-op."""
        src, dst = Path(local_path), self.path(key)
        if not src.is_file():
            raise StorageNotFoundError(f"cannot upload {src}: not a file")
        if dst.exists() and src.resolve() == dst.resolve():
            return
        atomic_copy(src, dst)

    def put_bytes(self, key: str, data: bytes) -> None:
        """Write ``data`` to ``key`` atomically."""
        atomic_write_bytes(self.path(key), data)

    def get(self, key: str, local_path: str | Path) -> Path:
        """Copy ``key`` to ``local_path`` atomically."""
        src, dst = self._existing(key), Path(local_path)
        if dst.exists() and src.resolve() == dst.resolve():
            return dst
        return atomic_copy(src, dst)

    def open(self, key: str) -> BinaryIO:
        """Open the file behind ``key`` for reading."""
        return cast(BinaryIO, open(self._existing(key), "rb"))  # the caller closes it

    def size(self, key: str) -> int | None:
        """The file's size, or ``None`` when it is missing (or a folder)."""
        p = self.path(key)
        return p.stat().st_size if p.is_file() else None

    def sizes(self, prefix: str = "") -> dict[str, int]:
        """Every file under ``prefix`` (recursive) with its size; temp files are skipped."""
        base = self.path(prefix)
        if not base.is_dir():
            return {}
        out: dict[str, int] = {}
        for dirpath, _dirs, files in os.walk(base):
            for name in files:
                if is_temp_name(name):
                    continue
                p = Path(dirpath) / name
                out[p.relative_to(self.root).as_posix()] = p.stat().st_size
        return out

    def delete(self, key: str) -> None:
        """Remove the file behind ``key``; a missing file is fine."""
        p = self.path(key)
        if p.is_dir():
            raise StorageError(f"cannot delete {p}: it is a folder, not an object")
        p.unlink(missing_ok=True)

    def url(self, key: str, expires_s: int = 3600) -> str:
        """A ``file://`` URL (``expires_s`` is ignored: local files do not expire)."""
        return self.path(key).as_uri()

    def _existing(self, key: str) -> Path:
        p = self.path(key)
        if not p.is_file():
            raise StorageNotFoundError(f"no object {normalize_key(key)!r} in {self.root}")
        return p
