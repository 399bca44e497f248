"""Faults against the real S3 server: restarts mid-upload and mid-read, a server that stays down.

These stop and start the session's server; each test leaves it running.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import threading
from pathlib import Path

import pytest

from videollm.errors import StorageError
from videollm.storage import S3Storage

MIB = 1024 * 1024


@pytest.fixture
def big_file(tmp_path: Path) -> Path:
    path = tmp_path / "ckpt.bin"
    path.write_bytes(os.urandom(16 * MIB))
    return path


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_restart_mid_upload_retries_and_finishes(
    s3_env, big_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = S3Storage(
        s3_env.bucket,
        f"fault-{secrets.token_hex(4)}",
        s3_env.settings(part_size=5 * MIB, max_attempts=8),
    )
    sent = [0]
    restarter: list[threading.Thread] = []

    def on_progress(n: int) -> None:
        sent[0] += n
        # minio starts the multipart upload before it reads part 2: kill the server right
        # there, the first time, and bring it back a moment later while the upload retries.
        if sent[0] > 5 * MIB and not restarter:
            s3_env.stop(hard=True)
            t = threading.Thread(target=s3_env.start)
            restarter.append(t)
            t.start()

    caplog.set_level(logging.WARNING, logger="videollm.storage")
    store.put(big_file, "ckpt/adapter.safetensors", progress=on_progress)
    restarter[0].join()

    assert "retry" in caplog.text and s3_env.secret_key not in caplog.text
    assert store.size("ckpt/adapter.safetensors") == 16 * MIB
    assert _sha(store.get_bytes("ckpt/adapter.safetensors")) == _sha(big_file.read_bytes())


def test_server_down_fails_clearly_and_leaves_no_partial_object(s3_env, big_file: Path) -> None:
    store = S3Storage(
        s3_env.bucket,
        f"fault-{secrets.token_hex(4)}",
        s3_env.settings(part_size=5 * MIB, max_attempts=3, backoff_s=0.1),
    )
    sent = [0]

    def on_progress(n: int) -> None:
        sent[0] += n
        if sent[0] > 5 * MIB and s3_env.running:
            s3_env.stop(hard=True)  # and stay down: the attempts run out

    try:
        with pytest.raises(StorageError) as info:
            store.put(big_file, "ckpt/adapter.safetensors", progress=on_progress)
    finally:
        s3_env.start()
    msg = str(info.value)
    assert "3 attempt" in msg and "VIDEOLLM_S3_ENDPOINT" in msg and s3_env.endpoint in msg
    assert s3_env.secret_key not in msg
    # Only complete objects are ever visible: the interrupted multipart upload is not.
    assert not store.exists("ckpt/adapter.safetensors")
    assert store.list() == []


def test_read_resumes_after_restart(s3_env, caplog: pytest.LogCaptureFixture) -> None:
    store = S3Storage(
        s3_env.bucket, f"fault-{secrets.token_hex(4)}", s3_env.settings(max_attempts=8)
    )
    data = os.urandom(24 * MIB)  # more than loopback socket buffers hold
    store.put_bytes("features.bin", data)
    got = bytearray()
    caplog.set_level(logging.WARNING, logger="videollm.storage")
    with store.open("features.bin") as f:
        got += f.read(MIB)
        # Killing the server cuts the open HTTP body; the reader must resume where it broke.
        s3_env.restart(hard=True)
        while chunk := f.read(MIB):
            got += chunk
    assert len(got) == len(data) and _sha(bytes(got)) == _sha(data)
    assert "resuming" in caplog.text
