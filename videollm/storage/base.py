"""The storage interface shared by local folders and S3/MinIO buckets, plus key helpers.

Keys are ``/``-separated paths relative to the storage's root (a folder, or a bucket plus an
optional prefix). Listing treats a prefix as a folder: ``list("a/b")`` returns keys under
``a/b/``, never ``a/bc``.
"""

from __future__ import annotations

import abc
import builtins
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from videollm.errors import StorageError


class StorageNotFoundError(StorageError, FileNotFoundError):
    """The requested key does not exist in the storage."""


def normalize_key(key: str) -> str:
    """Return ``key`` without leading/trailing slashes or empty and ``.`` parts.

    Raises:
        StorageError: the key climbs out of the storage root with ``..``.
    """
    parts = [p for p in str(key).replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        # A key is never allowed to escape its root: keys may come from remote listings.
        raise StorageError(f"invalid storage key {key!r}: '..' is not allowed")
    return "/".join(parts)


def join_key(*parts: str) -> str:
    """Join key parts with ``/``, ignoring empty parts (``join_key("", "a")`` is ``"a"``)."""
    return normalize_key("/".join(p for p in parts if p))


def relative_key(key: str, prefix: str) -> str:
    """Return ``key`` relative to the folder-like ``prefix`` (``"a/b/c"``, ``"a"`` → ``"b/c"``).

    Raises:
        StorageError: ``key`` is not under ``prefix``.
    """
    key, prefix = normalize_key(key), normalize_key(prefix)
    if not prefix:
        return key
    if not key.startswith(prefix + "/"):
        raise StorageError(f"key {key!r} is not under prefix {prefix!r}")
    return key[len(prefix) + 1 :]


def key_name(key: str) -> str:
    """The last part of a key (its "file name")."""
    return PurePosixPath(normalize_key(key)).name


class Storage(abc.ABC):
    """Put, get, list and stream objects by key.

    Implementations: :class:`videollm.storage.local.LocalStorage` and
    :class:`videollm.storage.s3.S3Storage`. Writes are atomic per key: a reader sees the old
    object or the new one, never part of one.
    """

    @abc.abstractmethod
    def put(self, local_path: str | Path, key: str) -> None:
        """Upload the file at ``local_path`` to ``key`` (replacing any object there)."""

    @abc.abstractmethod
    def put_bytes(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key``."""

    @abc.abstractmethod
    def get(self, key: str, local_path: str | Path) -> Path:
        """Download ``key`` to ``local_path`` atomically (temp file + rename); return the path.

        Raises:
            StorageNotFoundError: ``key`` does not exist.
        """

    @abc.abstractmethod
    def open(self, key: str) -> BinaryIO:
        """Open ``key`` for streaming reads; the caller closes it (use ``with``).

        Raises:
            StorageNotFoundError: ``key`` does not exist.
        """

    @abc.abstractmethod
    def size(self, key: str) -> int | None:
        """The object's size in bytes, or ``None`` when ``key`` does not exist."""

    @abc.abstractmethod
    def sizes(self, prefix: str = "") -> dict[str, int]:
        """Every key under the folder-like ``prefix`` (recursive) mapped to its size."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key``; removing a missing key is not an error."""

    @abc.abstractmethod
    def url(self, key: str, expires_s: int = 3600) -> str:
        """A URL that reads ``key``: presigned GET for S3, ``file://`` for local folders."""

    def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""
        return self.size(key) is not None

    def list(self, prefix: str = "") -> builtins.list[str]:
        """Every key under the folder-like ``prefix`` (recursive), sorted."""
        return sorted(self.sizes(prefix))

    def get_bytes(self, key: str) -> bytes:
        """Read the whole object (for small objects such as manifests and ``_meta.json``)."""
        with self.open(key) as f:
            return f.read()
