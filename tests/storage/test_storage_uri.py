"""URIs: s3://, minio://, file:// and plain paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from videollm.errors import StorageError
from videollm.storage import (
    LocalStorage,
    S3Settings,
    S3Storage,
    is_remote,
    join,
    resolve,
    resolve_object,
    storage_at,
)

SETTINGS = S3Settings(endpoint="127.0.0.1:1", access_key="k", secret_key="s", secure=False)


@pytest.mark.parametrize("scheme", ["s3", "minio", "S3"])
def test_resolve_remote(scheme: str) -> None:
    storage, prefix = resolve(f"{scheme}://my-bucket/runs/1/features/", SETTINGS)
    assert isinstance(storage, S3Storage)
    assert (storage.bucket, storage.prefix, prefix) == ("my-bucket", "", "runs/1/features")
    storage, prefix = resolve(f"{scheme}://my-bucket", SETTINGS)
    assert prefix == ""


def test_resolve_local_forms(tmp_path: Path) -> None:
    for uri in (str(tmp_path), tmp_path, tmp_path.as_uri()):
        storage, prefix = resolve(uri)
        assert isinstance(storage, LocalStorage)
        assert (storage.root, prefix) == (tmp_path, "")


def test_resolve_remote_without_config_names_env_vars(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("VIDEOLLM_S3_ENDPOINT", "MLFLOW_S3_ENDPOINT_URL"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(StorageError, match="VIDEOLLM_S3_ENDPOINT"):
        resolve("s3://bucket/x")


def test_is_remote_and_join(tmp_path: Path) -> None:
    assert is_remote("s3://b/x") and is_remote("minio://b") and not is_remote("/data/x")
    assert not is_remote(tmp_path.as_uri()) and not is_remote(tmp_path)
    assert join("s3://b/x/", "y", "z.json") == "s3://b/x/y/z.json"
    assert join("minio://b", "y") == "minio://b/y"
    assert join(str(tmp_path), "a", "b.txt") == str(tmp_path / "a" / "b.txt")
    assert join(tmp_path.as_uri(), "a") == (tmp_path / "a").as_uri()


def test_resolve_object_and_storage_at(tmp_path: Path) -> None:
    storage, key = resolve_object(tmp_path / "d" / "f.json")
    assert isinstance(storage, LocalStorage) and storage.root == tmp_path / "d" and key == "f.json"
    storage, key = resolve_object("s3://bkt/d/f.json", SETTINGS)
    assert key == "d/f.json"
    with pytest.raises(StorageError):
        resolve_object("s3://bkt", SETTINGS)
    s3 = storage_at("minio://bkt/run/7", SETTINGS)
    assert isinstance(s3, S3Storage) and s3.prefix == "run/7" and s3.uri("x") == "s3://bkt/run/7/x"


@pytest.mark.parametrize("bad", ["s3:///nobucket", "gs://b/x"])
def test_bad_uris(bad: str) -> None:
    with pytest.raises(StorageError):
        resolve(bad, SETTINGS)


def test_invalid_bucket_name_is_storage_error() -> None:
    with pytest.raises(StorageError, match="invalid bucket name"):
        resolve("s3://b1/x", SETTINGS)
