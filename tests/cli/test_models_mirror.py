"""``videollm models mirror``: a model folder or Hub snapshot copied to a real S3 server."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import huggingface_hub
import pytest

from videollm.cli.main import EXIT_ERROR, main
from videollm.errors import EXIT_CONFIG, ConfigError, StorageError
from videollm.hub import model_source
from videollm.hub.mirror import MANIFEST_NAME, PARTIAL_NAME
from videollm.storage import S3Storage, read_bytes, storage_at


def _mirror(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    capsys.readouterr()
    assert main(["models", "mirror", *args]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def _manifest(uri: str) -> dict:
    return json.loads(read_bytes(f"{uri}/{MANIFEST_NAME}"))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def llm_copy(tiny_llm_dir: Path, tmp_path: Path) -> Path:
    """The tiny LLM plus a pickle and hidden files that a mirror must leave out."""
    folder = shutil.copytree(tiny_llm_dir, tmp_path / "llm")
    (folder / "pytorch_model.bin").write_bytes(b"pickle bytes")
    (folder / ".cache").mkdir()
    (folder / ".cache" / "x.json").write_text("{}")
    return folder


def test_mirror_copies_safe_files_and_a_rerun_skips_them(s3_env, llm_copy, capsys) -> None:
    uri = s3_env.unique_uri("models/tiny-llm")
    first = _mirror(capsys, str(llm_copy), uri)

    manifest = _manifest(uri)
    paths = [f["path"] for f in manifest["files"]]
    assert "model.safetensors" in paths and "config.json" in paths and "tokenizer.json" in paths
    assert "pytorch_model.bin" not in paths and not any(p.startswith(".") for p in paths)
    for entry in manifest["files"]:
        assert entry["sha256"] == _sha(llm_copy / entry["path"])
        assert entry["size"] == (llm_copy / entry["path"]).stat().st_size
    assert manifest["source"] == str(llm_copy) and manifest["commit"] is None
    stored = storage_at(uri).list()
    assert sorted(stored) == sorted([*paths, MANIFEST_NAME])  # no partial manifest left
    assert first["copied"] == len(paths) and first["skipped"] == 0

    again = _mirror(capsys, str(llm_copy), uri)
    assert (again["copied"], again["skipped"]) == (0, len(paths))

    # Same size, other bytes (a re-trained model of the same shape): uploaded again.
    config = llm_copy / "generation_config.json"
    data = config.read_bytes()
    assert data.endswith(b"\n")
    config.write_bytes(data[:-1] + b" ")
    changed = _mirror(capsys, str(llm_copy), uri)
    assert changed["copied"] == 1
    entry = next(f for f in _manifest(uri)["files"] if f["path"] == config.name)
    assert entry["sha256"] == _sha(config)

    with_pickle = _mirror(capsys, str(llm_copy), uri, "--allow-pickle")
    assert with_pickle["copied"] == 1
    assert "pytorch_model.bin" in [f["path"] for f in _manifest(uri)["files"]]


def test_interrupted_mirror_is_refused_and_resumes(s3_env, llm_copy, capsys, monkeypatch) -> None:
    uri = s3_env.unique_uri("models/cut")
    real_put = S3Storage.put
    calls = []

    def put_then_fail(self, local_path, key, progress=None):  # the copy is killed mid-way
        calls.append(key)
        if len(calls) == 3:
            raise StorageError("connection lost")
        real_put(self, local_path, key, progress)

    monkeypatch.setattr(S3Storage, "put", put_then_fail)
    assert main(["models", "mirror", str(llm_copy), uri]) == EXIT_ERROR
    assert "connection lost" in capsys.readouterr().err
    monkeypatch.setattr(S3Storage, "put", real_put)

    stored = storage_at(uri).list()
    assert MANIFEST_NAME not in stored and PARTIAL_NAME in stored
    with pytest.raises(ConfigError, match=r"model\.llm: .*holds 2 file\(s\) but no videollm"):
        model_source(uri, "model.llm")

    resumed = _mirror(capsys, str(llm_copy), uri)
    assert resumed["skipped"] == 2 and resumed["copied"] == resumed["files"] - 2
    assert PARTIAL_NAME not in storage_at(uri).list()


def test_hub_id_is_mirrored_from_the_hf_cache(s3_env, tiny_clip_dir, tmp_path, monkeypatch, capsys):
    # A Hub snapshot as huggingface_hub caches it: offline, snapshot_download returns it.
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--acme--tiny-clip"
    shutil.copytree(tiny_clip_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)

    uri = s3_env.unique_uri("models/acme-clip")
    _mirror(capsys, "acme/tiny-clip", uri)
    manifest = _manifest(uri)
    assert (manifest["source"], manifest["commit"]) == ("acme/tiny-clip", commit)
    assert "preprocessor_config.json" in [f["path"] for f in manifest["files"]]

    capsys.readouterr()
    assert main(["models", "mirror", "acme/not-cached", uri]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert "acme/not-cached" in err and "HF_TOKEN" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("make", "dest", "message"),
    [
        ("pickle-only", "s3", "no \\*.safetensors weights .*--allow-pickle"),
        ("missing", "s3", "does not exist"),
        ("model", "local", "must be s3://BUCKET/PREFIX"),
        ("model", "bucket", "names a bucket only"),
    ],
)
def test_bad_mirror_requests_fail_with_one_line(
    s3_env, tiny_clip_dir, tmp_path, capsys, make, dest, message
) -> None:
    source = tmp_path / "src"
    if make == "model":
        shutil.copytree(tiny_clip_dir, source)
    elif make == "pickle-only":
        source.mkdir()
        (source / "config.json").write_text("{}")
        (source / "pytorch_model.bin").write_bytes(b"pickle bytes")
    target = {
        "s3": s3_env.unique_uri("models/bad"),
        "local": str(tmp_path / "out"),
        "bucket": f"s3://{s3_env.bucket}",
    }[dest]
    capsys.readouterr()
    assert main(["models", "mirror", str(source), target]) == EXIT_CONFIG
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("videollm models: error:"), err
    assert re.search(message, err), err
