"""Run one S3 operation with bounded, exponentially backed-off retries and clear errors.

Connection failures (server restarting, network blip) and the server's "try again" answers are
retried; everything else becomes a :class:`~videollm.errors.StorageError` at once, with a
message that names the endpoint, bucket and key and says what to check — never a secret.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

import urllib3.exceptions
from minio.error import MinioException, S3Error, ServerError

from videollm.errors import StorageError
from videollm.storage.base import StorageNotFoundError
from videollm.storage.settings import CREDENTIALS_HINT, ENDPOINT_HINT, S3Settings

logger = logging.getLogger(__name__)

T = TypeVar("T")

# urllib3's MaxRetryError wraps refused connections; ProtocolError is a connection dropped
# mid-body; HTTPError covers read timeouts. OSError covers ConnectionError and socket errors.
RETRYABLE_EXCEPTIONS: tuple[type[BaseException], ...] = (
    urllib3.exceptions.HTTPError,
    ServerError,
    ConnectionError,
    TimeoutError,
)
RETRYABLE_CODES = frozenset(
    {"InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout", "OperationAborted"}
)
AUTH_CODES = frozenset(
    {
        "AccessDenied",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "InvalidToken",
        "ExpiredToken",
        "AuthorizationHeaderMalformed",
    }
)
NOT_FOUND_CODES = frozenset({"NoSuchKey", "NoSuchBucket", "NoSuchObject", "NotFound"})


def is_retryable(exc: BaseException) -> bool:
    """Whether ``exc`` is a transient failure worth another try."""
    if isinstance(exc, S3Error):
        return exc.code in RETRYABLE_CODES
    reason = exc.reason if isinstance(exc, urllib3.exceptions.MaxRetryError) else exc
    if isinstance(reason, urllib3.exceptions.SSLError):
        return False  # a certificate or TLS-version mismatch does not heal by waiting
    return isinstance(exc, RETRYABLE_EXCEPTIONS)


def scrub(text: str, settings: S3Settings) -> str:
    """``text`` with the secret key blanked out, in case a library echoed it."""
    return text.replace(settings.secret_key, "***") if settings.secret_key else text


def describe(exc: BaseException, settings: S3Settings) -> str:
    """A one-line, secret-free description of ``exc``."""
    if isinstance(exc, S3Error):
        text = f"{exc.code}: {exc.message}"
    elif isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        text = f"{type(exc.reason).__name__}: {exc.reason}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return scrub(text, settings)


def to_storage_error(
    exc: BaseException, op: str, target: str, settings: S3Settings, attempts: int = 1
) -> StorageError:
    """Translate a minio/urllib3 failure of ``op`` on ``target`` into a :class:`StorageError`."""
    where = f"{target} at {settings.endpoint_url}"
    reason = describe(exc, settings)
    if isinstance(exc, S3Error) and exc.code in AUTH_CODES:
        return StorageError(
            f"S3 {op} of {where} was refused ({reason}); {CREDENTIALS_HINT}, and that this "
            "key may access the bucket"
        )
    if isinstance(exc, S3Error) and exc.code in NOT_FOUND_CODES:
        return StorageNotFoundError(f"S3 {op} of {where}: {reason}")
    if is_retryable(exc):
        return StorageError(
            f"S3 {op} of {where} failed after {attempts} attempt(s) ({reason}); {ENDPOINT_HINT}"
        )
    return StorageError(f"S3 {op} of {where} failed ({reason})")


def with_retries(
    fn: Callable[[], T],
    op: str,
    target: str,
    settings: S3Settings,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``fn`` up to ``settings.max_attempts`` times, backing off on transient errors.

    Args:
        fn: the whole operation; it must be safe to run again from the start.
        op: what it does, for messages ("upload", "download", ...).
        target: what it acts on, as ``s3://bucket/key``.
        settings: the retry budget and the secret to keep out of messages.
        sleep: the delay function (tests pass a fake one).

    Raises:
        StorageError: a non-transient failure, or the attempts ran out.
    """
    delay = settings.backoff_s
    for attempt in range(1, settings.max_attempts + 1):
        try:
            return fn()
        except (MinioException, *RETRYABLE_EXCEPTIONS) as exc:
            if not is_retryable(exc) or attempt == settings.max_attempts:
                raise to_storage_error(exc, op, target, settings, attempt) from exc
            logger.warning(
                "S3 %s of %s at %s failed (%s); retry %d/%d in %.1f s",
                op,
                target,
                settings.endpoint_url,
                describe(exc, settings),
                attempt,
                settings.max_attempts - 1,
                delay,
            )
            sleep(delay)
            delay = min(delay * 2, settings.max_backoff_s)
    raise AssertionError("unreachable")  # the loop returns or raises
