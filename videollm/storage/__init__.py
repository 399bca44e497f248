"""Object storage: one small interface over local folders and S3/MinIO buckets.

Use :func:`resolve` / :func:`storage_at` to turn a path or ``s3://`` / ``minio://`` URI into a
:class:`Storage`, and the :mod:`~videollm.storage.sync` helpers to stage data for a step.
Connection settings come from the environment (see :mod:`videollm.storage.settings`).
"""

from __future__ import annotations

from videollm.errors import StorageError
from videollm.storage.base import (
    Storage,
    StorageNotFoundError,
    join_key,
    normalize_key,
    relative_key,
)
from videollm.storage.local import LocalStorage
from videollm.storage.s3 import S3Storage
from videollm.storage.settings import S3Settings
from videollm.storage.sync import (
    SyncStats,
    download_file,
    download_prefix,
    read_bytes,
    upload_dir,
    upload_file,
    write_bytes,
)
from videollm.storage.uri import (
    is_remote,
    join,
    local_path,
    name,
    resolve,
    resolve_object,
    split_remote,
    storage_at,
)

__all__ = [
    "LocalStorage",
    "S3Settings",
    "S3Storage",
    "Storage",
    "StorageError",
    "StorageNotFoundError",
    "SyncStats",
    "download_file",
    "download_prefix",
    "is_remote",
    "join",
    "join_key",
    "local_path",
    "name",
    "normalize_key",
    "read_bytes",
    "relative_key",
    "resolve",
    "resolve_object",
    "split_remote",
    "storage_at",
    "upload_dir",
    "upload_file",
    "write_bytes",
]
