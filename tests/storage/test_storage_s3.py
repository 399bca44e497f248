"""S3Storage against a real SeaweedFS S3 server (no mocks)."""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import urllib.request
from pathlib import Path

import pytest

from videollm.errors import StorageError
from videollm.storage import S3Settings, S3Storage, StorageNotFoundError, resolve, storage_at

MIB = 1024 * 1024


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def prefix() -> str:
    """A fresh prefix in the session's shared bucket (buckets are scarce, see s3_server)."""
    return f"s3test-{secrets.token_hex(4)}"


def test_roundtrip_ops(s3_server, prefix: str, tmp_path: Path) -> None:
    bucket = s3_server.bucket
    store = S3Storage(bucket, f"{prefix}/runs/1", s3_server.settings())
    src = tmp_path / "src.bin"
    src.write_bytes(b"abc" * 1000)
    store.put(src, "feat/v1.safetensors")
    store.put_bytes("feat/manifest.jsonl", b'{"id": 1}\n')
    store.put_bytes("other.txt", b"x")

    assert store.exists("feat/v1.safetensors") and not store.exists("feat/missing")
    assert not store.exists("feat")  # a folder is not an object
    assert store.size("feat/v1.safetensors") == 3000
    assert store.list() == ["feat/manifest.jsonl", "feat/v1.safetensors", "other.txt"]
    assert store.list("feat") == ["feat/manifest.jsonl", "feat/v1.safetensors"]
    assert store.list("fe") == []  # prefixes are folders, not string prefixes

    out = store.get("feat/v1.safetensors", tmp_path / "dl" / "v1.safetensors")
    assert out.read_bytes() == src.read_bytes()
    assert store.get_bytes("feat/manifest.jsonl") == b'{"id": 1}\n'
    assert [p.name for p in out.parent.iterdir()] == ["v1.safetensors"]  # no temp left

    store.delete("other.txt")
    store.delete("other.txt")
    assert store.list() == ["feat/manifest.jsonl", "feat/v1.safetensors"]

    # The same objects through resolve(): keys carry the URI's prefix.
    raw, key_prefix = resolve(f"minio://{bucket}/{prefix}/runs/1", s3_server.settings())
    assert key_prefix == f"{prefix}/runs/1"
    assert raw.list(key_prefix) == [
        f"{prefix}/runs/1/feat/manifest.jsonl",
        f"{prefix}/runs/1/feat/v1.safetensors",
    ]


def test_presigned_url_fetches_bytes(s3_server, prefix: str) -> None:
    store = S3Storage(s3_server.bucket, prefix, s3_server.settings())
    store.put_bytes("clips/a.mp4", b"not really a video")
    url = store.url("clips/a.mp4", expires_s=60)
    assert url.startswith(s3_server.endpoint) and "X-Amz-Signature" in url
    assert s3_server.secret_key not in url
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.read() == b"not really a video"


def test_bucket_created_on_first_write(s3_server, tmp_path: Path) -> None:
    bucket = f"new-{secrets.token_hex(4)}"
    store = S3Storage(bucket, "", s3_server.settings())
    try:
        assert store.list() == [] and not store.exists("x")  # bucket does not exist yet
        with pytest.raises(StorageNotFoundError):
            store.get("x", tmp_path / "x")
        store.put_bytes("y", b"1")
        assert store.client.bucket_exists(bucket) and store.list() == ["y"]
        with pytest.raises(StorageNotFoundError, match=f"s3://{bucket}/x"):
            store.open("x")
        assert not (tmp_path / "x").exists()
    finally:
        s3_server.remove_bucket(bucket)


def test_multipart_upload_roundtrip(s3_server, prefix: str, tmp_path: Path) -> None:
    src = tmp_path / "ckpt.bin"
    src.write_bytes(os.urandom(12 * MIB))
    store = S3Storage(s3_server.bucket, f"{prefix}/ckpt", s3_server.settings(part_size=5 * MIB))
    seen: list[int] = []
    store.put(src, "adapter.safetensors", progress=seen.append)
    assert sum(seen) == 12 * MIB
    # A multipart upload's ETag is "<md5 of part md5s>-<number of parts>".
    etag = store.client.stat_object(s3_server.bucket, store.object_name("adapter.safetensors")).etag
    assert etag.endswith("-3")
    out = store.get("adapter.safetensors", tmp_path / "back.bin")
    assert _sha(out) == _sha(src)


def test_open_streams_in_chunks(s3_server, prefix: str) -> None:
    data = os.urandom(3 * MIB + 123)
    store = storage_at(f"s3://{s3_server.bucket}/{prefix}", s3_server.settings())
    store.put_bytes("big.bin", data)
    digest, sizes = hashlib.sha256(), []
    with store.open("big.bin") as f:
        while chunk := f.read(256 * 1024):
            digest.update(chunk)
            sizes.append(len(chunk))
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()
    assert len(sizes) == 13 and max(sizes) == 256 * 1024


@pytest.mark.parametrize("wrong", ["secret", "access"])
def test_wrong_credentials_clear_error_without_secret(
    s3_server, prefix: str, wrong: str, caplog: pytest.LogCaptureFixture
) -> None:
    bad_secret = "WRONG-" + secrets.token_hex(8)
    env = s3_server.env()
    if wrong == "secret":
        env["AWS_SECRET_ACCESS_KEY"] = bad_secret
    else:
        env["AWS_ACCESS_KEY_ID"] = "nobody"
    settings = S3Settings.from_env(env)
    bucket = s3_server.bucket
    store = S3Storage(bucket, prefix, settings)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(StorageError) as info:
        store.put_bytes("x", b"1")
    msg = str(info.value)
    assert "AWS_ACCESS_KEY_ID" in msg and "AWS_SECRET_ACCESS_KEY" in msg
    assert s3_server.endpoint in msg and bucket in msg
    assert "retry" not in caplog.text  # a refusal is final: no pointless retries
    for secret in (settings.secret_key, s3_server.secret_key):
        assert secret not in msg and secret not in caplog.text
