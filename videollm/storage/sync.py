"""Copy between storage and local folders: a prefix down to a folder, a folder or a file up.

A step that works on local files runs as ``download_prefix`` → work in a folder →
``upload_dir``. Each object is uploaded under its final key in one S3 PUT (atomic per object),
so a killed upload never leaves a half-written object under a final name, and a re-run skips
what is already there with the same size.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from videollm.errors import StorageError
from videollm.storage.base import join_key, relative_key
from videollm.storage.local import LocalStorage
from videollm.storage.uri import is_remote, local_path, resolve, resolve_object

logger = logging.getLogger(__name__)

# Below this many files a progress bar is noise.
_PROGRESS_MIN_FILES = 20


@dataclass(frozen=True)
class SyncStats:
    """What a sync did.

    Attributes:
        copied: files transferred.
        skipped: files already present with the same size.
        bytes: bytes transferred.
    """

    copied: int = 0
    skipped: int = 0
    bytes: int = 0


def download_prefix(
    uri: str | os.PathLike[str],
    local_dir: str | os.PathLike[str],
    keep: Callable[[str], bool] | None = None,
) -> Path:
    """Copy every object under ``uri`` into ``local_dir``, keeping relative paths.

    ``keep``, given a key relative to ``uri``, says whether to copy it (default: all).

    Files already in ``local_dir`` with the object's size are skipped (a re-run resumes). For a
    local ``uri`` nothing is copied and its path is returned, so steps can call this blindly.

    Returns:
        The folder that now holds the files.

    Raises:
        StorageError: the listing or a download failed.
    """
    if not is_remote(uri):
        return local_path(uri)
    storage, prefix = resolve(uri)
    dest = Path(local_dir)
    objects = storage.sizes(prefix)
    if keep is not None:
        objects = {k: v for k, v in objects.items() if keep(relative_key(k, prefix))}
    copied = skipped = nbytes = 0
    for key in _progress(sorted(objects), f"download {uri}"):
        target = dest / relative_key(key, prefix)  # relative_key rejects '..' in remote keys
        if target.is_file() and target.stat().st_size == objects[key]:
            skipped += 1
            continue
        storage.get(key, target)
        copied, nbytes = copied + 1, nbytes + objects[key]
    logger.info(
        "downloaded %s to %s: %d files (%d bytes), %d already present",
        uri,
        dest,
        copied,
        nbytes,
        skipped,
    )
    dest.mkdir(parents=True, exist_ok=True)
    return dest


def upload_dir(
    local_dir: str | os.PathLike[str], uri: str | os.PathLike[str], skip_existing: bool = True
) -> SyncStats:
    """Upload every file under ``local_dir`` to ``uri``, keys relative to the folder.

    Args:
        local_dir: the folder to upload (temp files of unfinished atomic writes are left out).
        uri: the destination prefix (``s3://``, ``minio://``, a path or ``file://``).
        skip_existing: skip files whose object already exists with the same size.

    Raises:
        StorageError: ``local_dir`` is not a folder, or an upload failed.
    """
    src = LocalStorage(local_dir)
    if not src.root.is_dir():
        raise StorageError(f"cannot upload {src.root}: not a folder")
    storage, prefix = resolve(uri)
    if isinstance(storage, LocalStorage) and storage.root.resolve() == src.root.resolve():
        return SyncStats(skipped=len(src.sizes()))
    files = src.sizes()
    present = storage.sizes(prefix) if skip_existing else {}
    copied = skipped = nbytes = 0
    for rel in _progress(sorted(files), f"upload {uri}"):
        key = join_key(prefix, rel)
        if skip_existing and present.get(key) == files[rel]:
            skipped += 1
            continue
        storage.put(src.path(rel), key)
        copied, nbytes = copied + 1, nbytes + files[rel]
    logger.info(
        "uploaded %s to %s: %d files (%d bytes), %d already present",
        src.root,
        uri,
        copied,
        nbytes,
        skipped,
    )
    return SyncStats(copied=copied, skipped=skipped, bytes=nbytes)


def upload_file(local_file: str | os.PathLike[str], uri_key: str | os.PathLike[str]) -> str:
    """Upload one file to the object (or path) ``uri_key``; return ``uri_key`` as a string."""
    storage, key = resolve_object(uri_key)
    storage.put(local_file, key)
    return os.fspath(uri_key)


def download_file(uri_key: str | os.PathLike[str], local_file: str | os.PathLike[str]) -> Path:
    """Download the object (or copy the file) ``uri_key`` to ``local_file`` atomically."""
    storage, key = resolve_object(uri_key)
    return storage.get(key, local_file)


def read_bytes(uri_key: str | os.PathLike[str]) -> bytes:
    """The whole content of a small object or file (manifests, ``_meta.json``)."""
    storage, key = resolve_object(uri_key)
    return storage.get_bytes(key)


def write_bytes(uri_key: str | os.PathLike[str], data: bytes) -> str:
    """Write a small object or file atomically; return ``uri_key`` as a string."""
    storage, key = resolve_object(uri_key)
    storage.put_bytes(key, data)
    return os.fspath(uri_key)


def _progress(items: list[str], desc: str) -> list[str] | tqdm:
    if len(items) < _PROGRESS_MIN_FILES:
        return items
    # disable=None: tqdm hides itself when stderr is not a terminal (CI logs, KFP pods).
    return tqdm(items, desc=desc, unit="file", disable=None)
