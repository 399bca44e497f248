"""Storage URIs: ``s3://bucket/prefix``, ``minio://bucket/prefix`` (the same) and local paths.

Every CLI flag that takes a path goes through :func:`resolve` / :func:`storage_at`, so a step
reads and writes MinIO the same way it reads and writes a folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

from videollm.errors import StorageError
from videollm.storage.base import Storage, join_key, key_name
from videollm.storage.local import LocalStorage
from videollm.storage.s3 import S3Storage
from videollm.storage.settings import S3Settings

REMOTE_SCHEMES = ("s3", "minio")


def is_remote(uri: str | os.PathLike[str]) -> bool:
    """Whether ``uri`` names an object store (``s3://`` or ``minio://``) rather than a path."""
    return str(uri).split("://", 1)[0].lower() in REMOTE_SCHEMES if "://" in str(uri) else False


def split_remote(uri: str) -> tuple[str, str]:
    """``s3://bucket/a/b`` → ``("bucket", "a/b")``.

    Raises:
        StorageError: not an ``s3://``/``minio://`` URI, or no bucket.
    """
    if not is_remote(uri):
        raise StorageError(f"not an s3:// or minio:// URI: {uri!r}")
    parts = urlsplit(str(uri))
    if not parts.netloc:
        raise StorageError(f"{uri!r} names no bucket; use s3://BUCKET/PREFIX")
    return parts.netloc, join_key(unquote(parts.path))


def local_path(uri: str | os.PathLike[str]) -> Path:
    """The path behind a plain path or a ``file://`` URI.

    Raises:
        StorageError: a scheme other than ``file`` (remote URIs have no local path).
    """
    text = os.fspath(uri)
    if "://" in text:
        parts = urlsplit(text)
        if parts.scheme.lower() != "file":
            raise StorageError(f"unsupported URI scheme {parts.scheme!r} in {text!r}")
        if parts.netloc not in ("", "localhost"):
            raise StorageError(f"file:// URI {text!r} names a remote host")
        text = unquote(parts.path)
    return Path(text).expanduser()


def resolve(uri: str | os.PathLike[str], settings: S3Settings | None = None) -> tuple[Storage, str]:
    """The storage behind ``uri`` and the key prefix inside it.

    ``s3://bucket/a/b`` (or ``minio://``) → ``(S3Storage("bucket"), "a/b")``; a path or
    ``file://`` URI → ``(LocalStorage(path), "")``. S3 settings come from the environment
    unless given.

    Raises:
        StorageError: a malformed URI, or an S3 URI without endpoint/credentials configured.
    """
    if is_remote(uri):
        bucket, prefix = split_remote(str(uri))
        return S3Storage(bucket, "", settings), prefix
    return LocalStorage(local_path(uri)), ""


def resolve_object(
    uri: str | os.PathLike[str], settings: S3Settings | None = None
) -> tuple[Storage, str]:
    """The storage and key of a single object: like :func:`resolve`, but a local file URI gives
    ``(LocalStorage(parent), name)`` so the key names the file.

    Raises:
        StorageError: the URI names no object (a bare bucket or an empty path).
    """
    if is_remote(uri):
        storage, key = resolve(uri, settings)
        if not key:
            raise StorageError(f"{uri!r} names a bucket, not an object")
        return storage, key
    path = local_path(uri)
    if not path.name:
        raise StorageError(f"{os.fspath(uri)!r} names no file")
    return LocalStorage(path.parent), path.name


def storage_at(uri: str | os.PathLike[str], settings: S3Settings | None = None) -> Storage:
    """A storage whose keys are relative to ``uri`` (``S3Storage(bucket, prefix)`` for S3)."""
    if is_remote(uri):
        bucket, prefix = split_remote(str(uri))
        return S3Storage(bucket, prefix, settings)
    return LocalStorage(local_path(uri))


def join(uri: str | os.PathLike[str], *parts: str) -> str:
    """Append key/path parts: ``join("s3://b/x", "y/z")`` → ``"s3://b/x/y/z"``.

    Plain paths join as paths, ``file://`` URIs stay URIs.
    """
    text = os.fspath(uri)
    if is_remote(text):
        scheme = text.split("://", 1)[0]
        bucket, prefix = split_remote(text)
        return f"{scheme}://{bucket}/{join_key(prefix, *parts)}".rstrip("/")
    if text.lower().startswith("file://"):
        return local_path(text).joinpath(*_clean(parts)).as_uri()
    return str(Path(text).joinpath(*_clean(parts)))


def name(uri: str | os.PathLike[str]) -> str:
    """The last part of a URI or path (``s3://b/x/y.json`` → ``"y.json"``)."""
    text = os.fspath(uri)
    if is_remote(text):
        return key_name(split_remote(text)[1])
    return local_path(text).name


def _clean(parts: tuple[str, ...]) -> list[str]:
    # Leading slashes would make pathlib restart at the filesystem root.
    return [p.strip("/") for p in parts if p.strip("/")]
