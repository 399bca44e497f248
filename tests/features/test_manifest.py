"""One writer per features folder, a manifest that matches its files, and ordinary file modes."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from videollm.cli.main import EXIT_ERROR, main
from videollm.errors import FeatureFormatError
from videollm.features.extract import ExtractConfig, extract
from videollm.features.manifest import repair_manifest, verify_features
from videollm.features.store import (
    MANIFEST_NAME,
    file_sha256,
    load_features,
    read_jsonl,
    save_features,
)
from videollm.lineage import META_FILE
from videollm.locking import exclusive_output
from videollm.tracking.store import connect

NUM_FRAMES = 8


@pytest.fixture
def videos(good_videos, tmp_path: Path) -> Path:
    """The six good clips alone (no broken files), so every run extracts all of them."""
    root = tmp_path / "videos"
    root.mkdir()
    for video in good_videos:
        shutil.copy(video.path, root / video.path.name)
    return root


def _ids(videos: Path) -> set[str]:
    return {p.stem for p in videos.iterdir()}


def _assert_consistent(out: Path, ids: set[str]) -> None:
    lines = list(read_jsonl(out / MANIFEST_NAME))
    assert sorted(r["video_id"] for r in lines) == sorted(ids)  # one line per video
    for rec in lines:
        assert rec["sha256"] == file_sha256(out / rec["file"]), rec["file"]
    assert verify_features(out, ids) == len(ids)


def test_two_extractions_into_one_folder_refuse_or_agree(videos, tiny_clip_dir, tmp_path):
    out = tmp_path / "features"
    cmd = [sys.executable, "-m", "videollm.cli.main", "extract", "--videos", str(videos),
           "--out", str(out), "--encoder", str(tiny_clip_dir), "--num-frames", str(NUM_FRAMES),
           "--num-workers", "0"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    connect().search_experiments()  # create the SQLite store first: two creators race on it
    procs = [subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    assert any(code == 0 for code, _ in results), results
    for code, err in results:
        assert code == 0 or "being written by another videollm process" in err, err
        assert "Traceback" not in err
    _assert_consistent(out, _ids(videos))


def test_a_held_folder_is_refused_and_left_untouched(videos, tiny_clip_dir, tmp_path, capsys):
    out = tmp_path / "features"
    args = ["extract", "--videos", str(videos), "--out", str(out),
            "--encoder", str(tiny_clip_dir), "--num-frames", str(NUM_FRAMES)]  # fmt: skip
    # Another process holds the folder (a separate process: flock is per open file).
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from videollm.locking import exclusive_output\n"
         f"with exclusive_output({str(out)!r}):\n print('held', flush=True); time.sleep(120)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        assert main(args) == EXIT_ERROR
        assert "being written by another videollm process" in capsys.readouterr().err
        assert list(out.iterdir()) == []  # nothing written, no run marker either
    finally:
        holder.kill()
        holder.wait()
    assert main(args) == 0
    _assert_consistent(out, _ids(videos))


def test_a_rerun_rebuilds_a_corrupt_manifest(videos, tiny_clip_dir, tmp_path):
    out = tmp_path / "features"
    cfg = ExtractConfig(encoder=str(tiny_clip_dir), num_frames=NUM_FRAMES, num_workers=0)
    extract(videos, out, cfg)
    lines = list(read_jsonl(out / MANIFEST_NAME))
    # What two writers left behind: every video twice, the copies with hashes of nothing.
    bad = lines + [{**r, "sha256": "0" * 64} for r in lines]
    (out / MANIFEST_NAME).write_text("".join(json.dumps(r) + "\n" for r in bad))
    with pytest.raises(FeatureFormatError, match="does not match its manifest"):
        verify_features(out, _ids(videos))
    result = extract(videos, out, cfg)
    assert (result.done, result.skipped) == (0, len(lines))
    _assert_consistent(out, _ids(videos))
    assert repair_manifest(out) is False  # a sound manifest is left alone


def test_a_tampered_file_is_named_and_redone_once_deleted(videos, tiny_clip_dir, tmp_path):
    out = tmp_path / "features"
    cfg = ExtractConfig(encoder=str(tiny_clip_dir), num_frames=NUM_FRAMES, num_workers=0)
    extract(videos, out, cfg)
    victim = sorted(out.glob("*.safetensors"))[0]
    tensor, meta = load_features(victim)
    save_features(victim, tensor * 2, meta)  # edited after extraction
    with pytest.raises(FeatureFormatError, match=f"{victim}.*Delete it and re-run"):
        verify_features(out, _ids(videos))
    victim.unlink()  # what the message says to do
    result = extract(videos, out, cfg)
    assert (result.done, result.skipped) == (1, len(_ids(videos)) - 1)
    _assert_consistent(out, _ids(videos))


def test_a_held_lock_is_released_when_the_block_ends(tmp_path):
    with exclusive_output(tmp_path / "f"):
        pass
    with exclusive_output(tmp_path / "f"):  # would raise if the first were still held
        pass


def test_outputs_get_ordinary_file_modes(videos, tiny_clip_dir, tmp_path):
    out = tmp_path / "features"
    args = ["extract", "--videos", str(videos), "--out", str(out),
            "--encoder", str(tiny_clip_dir), "--num-frames", str(NUM_FRAMES)]  # fmt: skip
    assert main(args) == 0
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in out.iterdir() if p.name[0] != "."}
    umask = os.umask(0)
    os.umask(umask)
    expected = 0o666 & ~umask
    assert modes[MANIFEST_NAME] == expected  # written with open(), the reference
    assert modes[META_FILE] == expected
    assert {m for name, m in modes.items() if name.endswith(".safetensors")} == {expected}
