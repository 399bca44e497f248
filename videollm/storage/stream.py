"""A streaming, resuming reader over an S3 object's HTTP body.

Checkpoints and videos are read chunk by chunk straight from the socket; nothing buffers the
whole object. When the connection drops mid-body, the reader reopens the object at the byte it
had reached (HTTP Range, pinned to the first response's ETag so a replaced object is noticed)
instead of starting over.
"""

from __future__ import annotations

import io
import logging
from typing import Any, BinaryIO, cast

from minio import Minio
from minio.error import S3Error

from videollm.errors import StorageError
from videollm.storage.retry import describe, is_retryable, with_retries
from videollm.storage.settings import S3Settings

logger = logging.getLogger(__name__)


class S3ObjectReader(io.RawIOBase):
    """Raw reader for ``bucket/name``; :func:`open_object` wraps it in a buffered reader.

    Args:
        client: the minio client.
        bucket: the bucket.
        name: the full object name.
        settings: retry budget and secret for messages.
    """

    def __init__(self, client: Minio, bucket: str, name: str, settings: S3Settings) -> None:
        super().__init__()
        self._client, self._bucket, self._name, self._settings = client, bucket, name, settings
        self._target = f"s3://{bucket}/{name}"
        self._pos = 0
        self._etag: str | None = None
        self._resp: Any = None
        self._open_at(0)

    def _open_at(self, offset: int) -> None:
        headers = {"If-Match": self._etag} if self._etag else None

        def call() -> Any:
            return self._client.get_object(
                self._bucket, self._name, offset=offset, request_headers=headers
            )

        try:
            self._resp = with_retries(call, "read", self._target, self._settings)
        except StorageError as exc:
            cause = exc.__cause__
            if isinstance(cause, S3Error) and cause.code == "PreconditionFailed":
                raise StorageError(
                    f"{self._target} was replaced while it was being read; read it again"
                ) from exc
            raise
        if self._etag is None:
            self._etag = self._resp.headers.get("ETag")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        """Fill ``buffer`` from the body; resume at the current offset if the connection drops."""
        view = memoryview(buffer).cast("B")
        for attempt in range(1, self._settings.max_attempts + 1):
            try:
                n = self._resp.readinto(view)
                self._pos += n
                return n
            except Exception as exc:
                if not is_retryable(exc) or attempt == self._settings.max_attempts:
                    raise StorageError(
                        f"S3 read of {self._target} at {self._settings.endpoint_url} broke at "
                        f"byte {self._pos} ({describe(exc, self._settings)})"
                    ) from exc
                logger.warning(
                    "S3 read of %s broke at byte %d (%s); resuming",
                    self._target,
                    self._pos,
                    describe(exc, self._settings),
                )
                self._release()
                self._open_at(self._pos)
        raise AssertionError("unreachable")  # the loop returns or raises

    def _release(self) -> None:
        if self._resp is not None:
            resp, self._resp = self._resp, None
            resp.close()
            resp.release_conn()

    def close(self) -> None:
        """Close the HTTP body and hand its connection back to the pool."""
        self._release()
        super().close()


def open_object(client: Minio, bucket: str, name: str, settings: S3Settings) -> BinaryIO:
    """Open ``bucket/name`` as a buffered binary stream (1 MiB buffer); the caller closes it."""
    raw = S3ObjectReader(client, bucket, name, settings)
    return cast(BinaryIO, io.BufferedReader(raw, buffer_size=1 << 20))
