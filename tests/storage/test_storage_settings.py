"""S3Settings: environment variables, mounted secret folders and secret masking."""

from __future__ import annotations

from pathlib import Path

import pytest

from videollm.errors import StorageError
from videollm.storage import S3Settings

SECRET = "s3cr3t-Value-123"


def _env(**extra: str) -> dict[str, str]:
    return {"AWS_ACCESS_KEY_ID": "AKIDTEST", "AWS_SECRET_ACCESS_KEY": SECRET, **extra}


@pytest.mark.parametrize(
    ("endpoint", "secure_var", "host", "secure"),
    [
        ("http://minio:9000", None, "minio:9000", False),
        ("https://s3.example.com", None, "s3.example.com", True),
        ("minio:9000", None, "minio:9000", True),
        ("minio:9000", "false", "minio:9000", False),
        ("https://minio:9000/", "0", "minio:9000", False),
        ("http://minio:9000", "true", "minio:9000", True),
    ],
)
def test_endpoint_and_secure(
    endpoint: str, secure_var: str | None, host: str, secure: bool
) -> None:
    env = _env(VIDEOLLM_S3_ENDPOINT=endpoint)
    if secure_var is not None:
        env["VIDEOLLM_S3_SECURE"] = secure_var
    s = S3Settings.from_env(env)
    assert (s.endpoint, s.secure) == (host, secure)
    assert (s.access_key, s.secret_key) == ("AKIDTEST", SECRET)


def test_falls_back_to_mlflow_endpoint_and_reads_region() -> None:
    s = S3Settings.from_env(
        _env(MLFLOW_S3_ENDPOINT_URL="http://mlflow-minio:9000", AWS_DEFAULT_REGION="eu-west-1")
    )
    assert (s.endpoint, s.secure, s.region) == ("mlflow-minio:9000", False, "eu-west-1")
    s = S3Settings.from_env(
        _env(VIDEOLLM_S3_ENDPOINT="http://a:1", MLFLOW_S3_ENDPOINT_URL="http://b:2")
    )
    assert s.endpoint == "a:1"


def test_missing_endpoint_names_variables() -> None:
    with pytest.raises(StorageError, match=r"VIDEOLLM_S3_ENDPOINT.*MLFLOW_S3_ENDPOINT_URL"):
        S3Settings.from_env(_env())


def test_missing_keys_name_variables_not_values() -> None:
    with pytest.raises(StorageError) as info:
        S3Settings.from_env({"VIDEOLLM_S3_ENDPOINT": "http://a:1", "AWS_ACCESS_KEY_ID": "AKID"})
    msg = str(info.value)
    assert "AWS_SECRET_ACCESS_KEY" in msg and "VIDEOLLM_S3_SECRET_DIR" in msg


@pytest.mark.parametrize(
    "names", [("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"), ("accesskey", "secretkey")]
)
def test_secret_dir(tmp_path: Path, names: tuple[str, str]) -> None:
    # Kubernetes mounts each secret key as a file, often with a trailing newline.
    (tmp_path / names[0]).write_text("FROMDIR\n")
    (tmp_path / names[1]).write_text(SECRET + "\n")
    env = {
        "VIDEOLLM_S3_ENDPOINT": "http://a:1",
        "VIDEOLLM_S3_SECRET_DIR": str(tmp_path),
        "AWS_ACCESS_KEY_ID": "FROMENV",
        "AWS_SECRET_ACCESS_KEY": "other",
    }
    s = S3Settings.from_env(env)
    assert (s.access_key, s.secret_key) == ("FROMDIR", SECRET)


def test_secret_dir_missing_file_is_clear(tmp_path: Path) -> None:
    (tmp_path / "AWS_ACCESS_KEY_ID").write_text("AKID")
    env = {"VIDEOLLM_S3_ENDPOINT": "http://a:1", "VIDEOLLM_S3_SECRET_DIR": str(tmp_path)}
    with pytest.raises(StorageError, match="AWS_SECRET_ACCESS_KEY"):
        S3Settings.from_env(env)


def test_repr_masks_secret() -> None:
    s = S3Settings.from_env(_env(VIDEOLLM_S3_ENDPOINT="http://a:1"))
    assert SECRET not in repr(s) and SECRET not in str(s) and SECRET not in f"{s}"
    assert "AKIDTEST" in repr(s) and "***" in repr(s)


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        ({"VIDEOLLM_S3_ENDPOINT": "ftp://a:1"}, "VIDEOLLM_S3_ENDPOINT"),
        ({"VIDEOLLM_S3_ENDPOINT": "http://a:1/path"}, "without a path"),
        ({"VIDEOLLM_S3_ENDPOINT": "http://a:1", "VIDEOLLM_S3_SECURE": "maybe"}, "true or false"),
        ({"VIDEOLLM_S3_ENDPOINT": "http://a:1", "VIDEOLLM_S3_PART_SIZE_MB": "1"}, "5 MiB"),
    ],
)
def test_malformed_values(extra: dict[str, str], match: str) -> None:
    with pytest.raises(StorageError, match=match):
        S3Settings.from_env(_env(**extra))
