"""S3/MinIO connection settings, read from the environment variables the ecosystem already uses.

* ``VIDEOLLM_S3_ENDPOINT`` (falls back to ``MLFLOW_S3_ENDPOINT_URL``): ``host:port`` or a URL;
  an ``http://`` / ``https://`` scheme sets TLS off / on.
* ``VIDEOLLM_S3_SECURE``: ``true``/``false``; overrides the scheme (``false`` = plain HTTP).
* ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``, or ``VIDEOLLM_S3_SECRET_DIR``: a mounted
  Kubernetes secret folder with files ``AWS_ACCESS_KEY_ID`` and ``AWS_SECRET_ACCESS_KEY`` (KFP's
  ``accesskey`` / ``secretkey`` file names work too). The folder wins when it is set.
* ``AWS_DEFAULT_REGION`` (optional).
* Tuning (optional): ``VIDEOLLM_S3_PART_SIZE_MB`` (multipart part size, default 64, minimum 5),
  ``VIDEOLLM_S3_MAX_ATTEMPTS`` (default 5), ``VIDEOLLM_S3_TIMEOUT_S`` (connect timeout, default 10).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from videollm.errors import StorageError

MIN_PART_SIZE = 5 * 1024 * 1024  # S3 rejects smaller multipart parts (except the last one).

ENDPOINT_VARS = ("VIDEOLLM_S3_ENDPOINT", "MLFLOW_S3_ENDPOINT_URL")
KEY_VARS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
SECRET_DIR_VAR = "VIDEOLLM_S3_SECRET_DIR"
CREDENTIALS_HINT = (
    "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or the files in VIDEOLLM_S3_SECRET_DIR)"
)
ENDPOINT_HINT = (
    "check VIDEOLLM_S3_ENDPOINT (or MLFLOW_S3_ENDPOINT_URL) and VIDEOLLM_S3_SECURE, "
    "and that the server is running"
)

# File names tried in a mounted secret folder, in order: AWS names first, then KFP's
# mlpipeline-minio-artifact secret layout.
_SECRET_FILES = (("AWS_ACCESS_KEY_ID", "accesskey"), ("AWS_SECRET_ACCESS_KEY", "secretkey"))


@dataclass(frozen=True)
class S3Settings:
    """Where the S3 server is and how to talk to it.

    Attributes:
        endpoint: ``host[:port]``, no scheme.
        access_key: the access key id.
        secret_key: the secret key (masked in ``repr``; never logged).
        secure: use HTTPS.
        region: bucket region, or ``None`` to let the server tell.
        part_size: multipart part size in bytes (≥ 5 MiB).
        max_attempts: tries per operation on connection errors (≥ 1).
        backoff_s: first retry delay; doubles per retry up to ``max_backoff_s``.
        max_backoff_s: the longest delay between tries.
        connect_timeout_s: TCP connect timeout.
        read_timeout_s: socket read timeout.
    """

    endpoint: str
    access_key: str
    secret_key: str
    secure: bool = True
    region: str | None = None
    part_size: int = 64 * 1024 * 1024
    max_attempts: int = 5
    backoff_s: float = 0.5
    max_backoff_s: float = 8.0
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 120.0

    def __post_init__(self) -> None:
        if self.part_size < MIN_PART_SIZE:
            raise StorageError(f"S3 part size {self.part_size} is below the 5 MiB minimum")
        if self.max_attempts < 1:
            raise StorageError(f"S3 max_attempts must be ≥ 1, got {self.max_attempts}")

    def __repr__(self) -> str:
        # Spelled out by hand so the secret can never reach a log line or a traceback.
        fields = ", ".join(
            f"{f.name}={'***' if f.name == 'secret_key' else repr(getattr(self, f.name))}"
            for f in dataclasses.fields(self)
        )
        return f"S3Settings({fields})"

    __str__ = __repr__

    @property
    def endpoint_url(self) -> str:
        """The endpoint as a URL (``http://host:port``)."""
        return f"{'https' if self.secure else 'http'}://{self.endpoint}"

    def replace(self, **changes: object) -> S3Settings:
        """A copy with ``changes`` applied (for tests and tuning)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> S3Settings:
        """Read the settings from ``env`` (default ``os.environ``); see the module docstring.

        Raises:
            StorageError: the endpoint or the keys are missing, or a value is malformed. The
                message names the variables to set, never their values.
        """
        env = os.environ if env is None else env
        raw = next((env[v].strip() for v in ENDPOINT_VARS if env.get(v, "").strip()), "")
        if not raw:
            raise StorageError(
                "no S3 endpoint configured: set VIDEOLLM_S3_ENDPOINT (or MLFLOW_S3_ENDPOINT_URL), "
                "e.g. http://minio-service.kubeflow:9000"
            )
        endpoint, scheme_secure = _parse_endpoint(raw)
        secure_raw = env.get("VIDEOLLM_S3_SECURE", "").strip()
        secure = _parse_bool("VIDEOLLM_S3_SECURE", secure_raw) if secure_raw else scheme_secure
        access_key, secret_key = _credentials(env)
        return cls(
            endpoint=endpoint,
            access_key=access_key,
            secret_key=secret_key,
            secure=secure,
            region=env.get("AWS_DEFAULT_REGION", "").strip() or None,
            part_size=int(_number(env, "VIDEOLLM_S3_PART_SIZE_MB", 64) * 1024 * 1024),
            max_attempts=int(_number(env, "VIDEOLLM_S3_MAX_ATTEMPTS", 5)),
            connect_timeout_s=_number(env, "VIDEOLLM_S3_TIMEOUT_S", 10.0),
        )


def _parse_endpoint(raw: str) -> tuple[str, bool]:
    """Split ``raw`` into ``host[:port]`` and the TLS flag its scheme implies (HTTPS if none)."""
    if "://" not in raw:
        raw = "https://" + raw
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise StorageError(
            f"VIDEOLLM_S3_ENDPOINT must look like http(s)://host:port or host:port, got {raw!r}"
        )
    if parts.path not in ("", "/") or parts.query or "@" in parts.netloc:
        # The minio SDK takes no path; user:password@ in a URL would leak into logs.
        raise StorageError(
            "VIDEOLLM_S3_ENDPOINT must be scheme://host:port without a path or user info "
            f"(host given: {parts.hostname!r})"
        )
    return parts.netloc, parts.scheme == "https"


def _parse_bool(name: str, value: str) -> bool:
    low = value.lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise StorageError(f"{name} must be true or false, got {value!r}")


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    value = env.get(name, "").strip()
    if not value:
        return default
    try:
        return float(value)
    except ValueError:
        raise StorageError(f"{name} must be a number, got {value!r}") from None


def _credentials(env: Mapping[str, str]) -> tuple[str, str]:
    secret_dir = env.get(SECRET_DIR_VAR, "").strip()
    if secret_dir:
        return _read_secret_dir(Path(secret_dir))
    access_key = env.get("AWS_ACCESS_KEY_ID", "").strip()
    secret_key = env.get("AWS_SECRET_ACCESS_KEY", "").strip()
    if not access_key or not secret_key:
        missing = [v for v in KEY_VARS if not env.get(v, "").strip()]
        raise StorageError(
            f"no S3 credentials: {' and '.join(missing)} not set; set AWS_ACCESS_KEY_ID and "
            f"AWS_SECRET_ACCESS_KEY, or {SECRET_DIR_VAR} to a mounted secret folder holding "
            "files AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        )
    return access_key, secret_key


def _read_secret_dir(folder: Path) -> tuple[str, str]:
    values: list[str] = []
    for names in _SECRET_FILES:
        path = next((folder / n for n in names if (folder / n).is_file()), None)
        value = path.read_text(encoding="utf-8").strip() if path else ""
        if not value:
            raise StorageError(
                f"{SECRET_DIR_VAR}={folder} has no non-empty file {names[0]} (or {names[1]}); "
                "mount a secret with keys AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            )
        values.append(value)
    return values[0], values[1]
