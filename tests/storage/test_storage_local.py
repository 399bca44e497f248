"""LocalStorage: the folder-backed side of the storage interface."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest

from videollm.errors import StorageError
from videollm.storage import LocalStorage, StorageNotFoundError


def test_put_get_list_exists_open_delete(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path / "root")
    src = tmp_path / "src.bin"
    src.write_bytes(b"hello" * 1000)
    store.put(src, "a/b/file.bin")
    store.put_bytes("a/meta.json", b"{}")
    store.put_bytes("z.txt", b"z")

    assert store.exists("a/b/file.bin") and not store.exists("a/b/missing")
    assert store.size("a/b/file.bin") == 5000
    assert store.list() == ["a/b/file.bin", "a/meta.json", "z.txt"]
    assert store.list("a") == ["a/b/file.bin", "a/meta.json"]
    assert store.list("a/b/") == ["a/b/file.bin"]
    assert store.list("nope") == []

    out = store.get("a/b/file.bin", tmp_path / "out" / "copy.bin")
    assert out.read_bytes() == src.read_bytes()
    with store.open("a/b/file.bin") as f:
        assert f.read(5) == b"hello"

    store.delete("a/meta.json")
    store.delete("a/meta.json")  # deleting twice is fine
    assert store.list("a") == ["a/b/file.bin"]


def test_url_is_file_uri_that_reads(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path)
    store.put_bytes("x y.txt", b"data")
    url = store.url("x y.txt")
    assert url.startswith("file://")
    with urllib.request.urlopen(url) as resp:
        assert resp.read() == b"data"


def test_missing_key_raises_typed_error(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path)
    with pytest.raises(StorageNotFoundError):
        store.get("missing", tmp_path / "out")
    with pytest.raises(StorageNotFoundError):
        store.open("missing")
    assert not (tmp_path / "out").exists()


def test_listing_skips_unfinished_atomic_writes(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path)
    store.put_bytes("done.bin", b"1")
    (tmp_path / ".done.bin.abc123.tmp").write_bytes(b"half")
    assert store.list() == ["done.bin"]


def test_keys_cannot_escape_root(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path / "root")
    with pytest.raises(StorageError, match=r"\.\."):
        store.put_bytes("../outside", b"x")
    assert not (tmp_path / "outside").exists()
