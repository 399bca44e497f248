"""Typed errors. Each one names the thing that is wrong and why, so a user can fix the input."""

from __future__ import annotations

#: Exit code of a command that failed on its input (``EX_CONFIG`` of BSD's ``sysexits.h``):
#: running it again unchanged fails again. On a cluster the training operator's ``ExitCode``
#: restart policy treats it as permanent (1-127), so a bad recipe fails its job once.
EXIT_CONFIG = 78


class VideoLLMError(Exception):
    """Base class for every error videollm raises on purpose."""


class InputError(VideoLLMError):
    """The input is wrong (a recipe, a flag, a record, a feature file, a checkpoint): retrying
    without changing it cannot succeed, so the CLI exits with :data:`EXIT_CONFIG`.

    Errors of a service or the network (:class:`StorageError`, :class:`TrackingError`) are not
    input errors: they may pass, so a retry is worth it.
    """


class ConfigError(InputError, ValueError):
    """A recipe, override or flag is invalid (unknown key, wrong type, bad value)."""


class VideoDecodeError(InputError):
    """A video could not be decoded: corrupt, truncated, empty or not a video."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"cannot decode video {path!s}: {reason}")
        self.path = str(path)
        self.reason = reason


class RecordFormatError(InputError, ValueError):
    """An annotation or chat-record file is malformed.

    The message names the file, the line (1-based, when known) and the field.
    """

    def __init__(
        self, path: str, reason: str, line: int | None = None, field: str | None = None
    ) -> None:
        where = str(path) + (f":{line}" if line is not None else "")
        what = f" field {field!r}:" if field else ""
        super().__init__(f"{where}:{what} {reason}")
        self.path = str(path)
        self.line = line
        self.field = field
        self.reason = reason


class FeatureFormatError(InputError, ValueError):
    """A feature file is missing, unreadable or does not match what the model expects."""


class CheckpointError(InputError, ValueError):
    """A checkpoint directory is missing files or does not match its config."""


class TrackingError(VideoLLMError):
    """The MLflow tracking server or registry cannot be reached or refused a request.

    The message names the tracking URI, never credentials.
    """


class StorageError(VideoLLMError):
    """Object storage (local folder or S3/MinIO) is unreachable, denied, missing or misconfigured.

    The message names the endpoint, bucket and key and what to check; it never holds a secret.
    """
