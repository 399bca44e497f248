"""Storage over an S3/MinIO bucket (plus an optional key prefix) with the ``minio`` SDK.

Uploads go through ``fput_object`` with an explicit part size, so large files are multipart;
S3 makes an object visible under its key only once the upload completes, so a killed or failed
upload never leaves a partial object under a final name. Every call is retried with backoff on
connection errors (see :mod:`videollm.storage.retry`).
"""

from __future__ import annotations

import functools
import io
import logging
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, BinaryIO

import certifi
import urllib3
from minio import Minio
from minio.error import S3Error
from minio.helpers import check_bucket_name

from videollm.atomic import atomic_write_stream
from videollm.errors import StorageError
from videollm.storage.base import Storage, StorageNotFoundError, join_key, relative_key
from videollm.storage.retry import NOT_FOUND_CODES, with_retries
from videollm.storage.settings import S3Settings
from videollm.storage.stream import open_object

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int], None]


@functools.lru_cache(maxsize=16)
def make_client(settings: S3Settings) -> Minio:
    """A minio client for ``settings`` (cached: clients hold connection pools).

    urllib3's own retries are switched off so that :func:`with_retries` alone decides how often
    and how long to retry; its 5-minute default timeouts are replaced by the settings'.
    """
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=settings.connect_timeout_s, read=settings.read_timeout_s),
        maxsize=10,
        retries=False,
        cert_reqs="CERT_REQUIRED",
        ca_certs=certifi.where(),
    )
    return Minio(
        settings.endpoint,
        access_key=settings.access_key,
        secret_key=settings.secret_key,
        secure=settings.secure,
        region=settings.region,
        http_client=http,
    )


class _Progress:
    """Adapter from minio's progress protocol to a plain ``callback(bytes_read)``."""

    def __init__(self, callback: ProgressCallback) -> None:
        self._callback = callback

    def set_meta(self, object_name: str, total_length: int) -> None:
        """Called by minio before the upload starts; nothing to record."""

    def update(self, length: int) -> None:
        self._callback(length)


class S3Storage(Storage):
    """Objects in ``bucket`` under ``prefix``; the bucket is created on first write if missing.

    Args:
        bucket: the bucket name.
        prefix: a key prefix (folder) inside the bucket; keys are relative to it.
        settings: connection settings; default :meth:`S3Settings.from_env`.
    """

    def __init__(self, bucket: str, prefix: str = "", settings: S3Settings | None = None) -> None:
        try:
            check_bucket_name(bucket)
        except ValueError:
            raise StorageError(
                f"invalid bucket name {bucket!r}: use 3-63 lowercase letters, digits, '-' or '.'"
            ) from None
        self.bucket = bucket
        self.prefix = join_key(prefix)
        self.settings = settings if settings is not None else S3Settings.from_env()
        self.client = make_client(self.settings)
        self._bucket_ready = False

    def __repr__(self) -> str:
        return f"S3Storage({self.bucket!r}, {self.prefix!r}, endpoint={self.settings.endpoint!r})"

    def object_name(self, key: str) -> str:
        """The full object name in the bucket for ``key``."""
        return join_key(self.prefix, key)

    def uri(self, key: str = "") -> str:
        """``s3://bucket/prefix/key``."""
        return f"s3://{self.bucket}/{self.object_name(key)}".rstrip("/")

    def _call(self, op: str, key: str, fn: Callable[[], Any]) -> Any:
        return with_retries(fn, op, self.uri(key), self.settings)

    def _ensure_bucket(self) -> None:
        if self._bucket_ready:
            return

        def create() -> None:
            if self.client.bucket_exists(self.bucket):
                return
            try:
                self.client.make_bucket(self.bucket, location=self.settings.region)
                logger.info("created bucket %s at %s", self.bucket, self.settings.endpoint_url)
            except S3Error as exc:
                # Another writer may have created it between the check and the create.
                if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise

        self._call("bucket check/create", "", create)
        self._bucket_ready = True

    def put(
        self, local_path: str | Path, key: str, progress: ProgressCallback | None = None
    ) -> None:
        """Upload ``local_path`` (multipart above ``settings.part_size``).

        Args:
            local_path: the file to upload.
            key: where to store it.
            progress: optional ``callback(n_bytes)`` called as data is read; a retry reads the
                file again from the start.
        """
        src = Path(local_path)
        if not src.is_file():
            raise StorageNotFoundError(f"cannot upload {src}: not a file")
        self._ensure_bucket()
        name = self.object_name(key)
        self._call(
            "upload",
            key,
            lambda: self.client.fput_object(
                self.bucket,
                name,
                str(src),
                part_size=self.settings.part_size,
                progress=_Progress(progress) if progress else None,
            ),
        )
        logger.debug("uploaded %s to %s", src, self.uri(key))

    def put_bytes(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` (one PUT, multipart above the part size)."""
        self._ensure_bucket()
        name = self.object_name(key)
        self._call(
            "upload",
            key,
            lambda: self.client.put_object(
                self.bucket, name, io.BytesIO(data), len(data), part_size=self.settings.part_size
            ),
        )

    def get(self, key: str, local_path: str | Path) -> Path:
        """Stream ``key`` into ``local_path`` via a temp file + rename."""
        with self.open(key) as src:
            return atomic_write_stream(src, local_path)

    def open(self, key: str) -> BinaryIO:
        """Stream the object's HTTP body; a dropped connection resumes where it broke."""
        return open_object(self.client, self.bucket, self.object_name(key), self.settings)

    def size(self, key: str) -> int | None:
        """The object's size, or ``None`` if it (or the bucket) does not exist."""
        name = self.object_name(key)

        def stat() -> int | None:
            try:
                st = self.client.stat_object(self.bucket, name)
            except S3Error as exc:
                if exc.code in NOT_FOUND_CODES:
                    return None
                raise
            # Some servers answer HEAD on a "folder" key; those are not objects.
            return None if st.is_dir or name.endswith("/") else int(st.size or 0)

        return self._call("stat", key, stat)

    def sizes(self, prefix: str = "") -> dict[str, int]:
        """Every object under ``prefix`` (recursive) mapped to its size; keys are relative."""
        folder = self.object_name(prefix)
        list_prefix = folder + "/" if folder else None

        def listing() -> dict[str, int]:
            try:
                objects = list(
                    self.client.list_objects(self.bucket, prefix=list_prefix, recursive=True)
                )
            except S3Error as exc:
                if exc.code == "NoSuchBucket":
                    return {}
                raise
            return {
                relative_key(o.object_name, self.prefix): int(o.size or 0)
                for o in objects
                if o.object_name and not o.is_dir and not o.object_name.endswith("/")
            }

        return self._call("list", prefix, listing)

    def delete(self, key: str) -> None:
        """Remove the object (S3 treats a missing key as success)."""
        name = self.object_name(key)

        def remove() -> None:
            try:
                self.client.remove_object(self.bucket, name)
            except S3Error as exc:
                if exc.code != "NoSuchBucket":
                    raise

        self._call("delete", key, remove)

    def url(self, key: str, expires_s: int = 3600) -> str:
        """A presigned GET URL valid for ``expires_s`` seconds (S3 allows at most 7 days)."""
        name = self.object_name(key)
        return self._call(
            "presign",
            key,
            lambda: self.client.presigned_get_object(
                self.bucket, name, expires=timedelta(seconds=expires_s)
            ),
        )
