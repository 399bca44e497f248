"""Lineage metadata: stable config hashes and content digests that change with the content."""

from __future__ import annotations

import json

from videollm.lineage import META_FILE, build_meta, config_hash, content_digest, write_meta


def test_config_hash_ignores_key_order_but_not_values():
    assert config_hash({"a": 1, "b": {"c": 2}}) == config_hash({"b": {"c": 2}, "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})


def test_content_digest_follows_files_and_folders(tmp_path):
    f = tmp_path / "d" / "x.txt"
    f.parent.mkdir()
    f.write_text("one")
    file_digest, dir_digest = content_digest(f), content_digest(f.parent)
    assert file_digest.startswith("sha256:") and dir_digest.startswith("listing-sha256:")
    (f.parent / META_FILE).write_text("{}")  # our own metadata never changes the digest
    assert content_digest(f.parent) == dir_digest
    f.write_text("three")
    assert content_digest(f) != file_digest and content_digest(f.parent) != dir_digest


def test_write_meta_records_step_inputs_and_config(tmp_path):
    meta = build_meta("convert", {"seed": 0}, {"input": ("s3://b/ann.jsonl", "sha256:ab")})
    path = write_meta(tmp_path, meta)
    data = json.loads(path.read_text())
    assert data["step"] == "convert" and data["config_hash"] == config_hash({"seed": 0})
    assert data["inputs"]["input"] == {"uri": "s3://b/ann.jsonl", "digest": "sha256:ab"}
