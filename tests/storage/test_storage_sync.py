"""Staging helpers: download_prefix / upload_dir / upload_file against a folder and real S3."""

from __future__ import annotations

from pathlib import Path

import pytest

from videollm.errors import StorageError
from videollm.storage import (
    download_file,
    download_prefix,
    read_bytes,
    storage_at,
    upload_dir,
    upload_file,
    write_bytes,
)


def _make_tree(root: Path, n: int = 25) -> dict[str, bytes]:
    files = {f"part{i % 3}/clip_{i:02d}.bin": bytes([i]) * (100 + i) for i in range(n)}
    files["manifest.jsonl"] = b'{"video_id": "clip_00"}\n'
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


def _read_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def s3_uri(s3_env) -> str:
    return s3_env.unique_uri("sync") + "/runs/1/features"


def test_upload_download_roundtrip_and_skip(s3_uri: str, tmp_path: Path) -> None:
    files = _make_tree(tmp_path / "src")
    (tmp_path / "src" / ".clip.bin.x1.tmp").write_bytes(b"unfinished")  # never uploaded

    stats = upload_dir(tmp_path / "src", s3_uri)
    assert (stats.copied, stats.skipped) == (len(files), 0)
    assert storage_at(s3_uri).list() == sorted(files)

    # A re-run uploads only what changed size.
    (tmp_path / "src" / "manifest.jsonl").write_bytes(b"longer manifest\n" * 3)
    stats = upload_dir(tmp_path / "src", s3_uri)
    assert (stats.copied, stats.skipped) == (1, len(files) - 1)
    assert upload_dir(tmp_path / "src", s3_uri, skip_existing=False).copied == len(files)

    local = download_prefix(s3_uri, tmp_path / "dl")
    assert local == tmp_path / "dl"
    expected = _read_tree(tmp_path / "src")
    del expected[".clip.bin.x1.tmp"]
    assert _read_tree(local) == expected

    # Re-download: files already present with the same size stay untouched.
    marker = local / "part0" / "clip_00.bin"
    mtime = marker.stat().st_mtime_ns
    (local / "manifest.jsonl").write_bytes(b"stale")
    download_prefix(s3_uri, local)
    assert marker.stat().st_mtime_ns == mtime
    assert _read_tree(local) == expected


def test_local_uris_need_no_copy(tmp_path: Path) -> None:
    _make_tree(tmp_path / "src", n=3)
    assert download_prefix(tmp_path / "src", tmp_path / "unused") == tmp_path / "src"
    assert download_prefix((tmp_path / "src").as_uri(), tmp_path / "unused") == tmp_path / "src"
    assert not (tmp_path / "unused").exists()
    stats = upload_dir(tmp_path / "src", tmp_path / "dst")
    assert stats.copied == 4 and _read_tree(tmp_path / "dst") == _read_tree(tmp_path / "src")
    assert upload_dir(tmp_path / "src", tmp_path / "dst").skipped == 4
    assert upload_dir(tmp_path / "src", tmp_path / "src").copied == 0


def test_single_files(s3_uri: str, tmp_path: Path) -> None:
    src = tmp_path / "ckpt.safetensors"
    src.write_bytes(b"weights")
    assert upload_file(src, f"{s3_uri}/ckpt/adapter.safetensors").endswith("adapter.safetensors")
    out = download_file(f"{s3_uri}/ckpt/adapter.safetensors", tmp_path / "back" / "a.st")
    assert out.read_bytes() == b"weights"
    write_bytes(f"{s3_uri}/_meta.json", b'{"step": "extract"}')
    assert read_bytes(f"{s3_uri}/_meta.json") == b'{"step": "extract"}'
    # The same helpers on plain paths.
    upload_file(src, tmp_path / "local" / "copy.st")
    assert read_bytes(tmp_path / "local" / "copy.st") == b"weights"
    write_bytes(tmp_path / "local" / "_meta.json", b"{}")
    back = download_file(tmp_path / "local" / "_meta.json", tmp_path / "m.json")
    assert back.read_bytes() == b"{}"


def test_upload_dir_requires_folder(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="not a folder"):
        upload_dir(tmp_path / "missing", tmp_path / "dst")
