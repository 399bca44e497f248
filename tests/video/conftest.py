"""Fixtures for decoding tests: one short clip per container, and broken files."""

from __future__ import annotations

from pathlib import Path

import pytest
from broken_videos import (
    write_audio_only,
    write_empty_file,
    write_text_as_video,
    write_truncated_video,
)

from videollm.demo.videos import FORMATS, ClipSpec, write_video

CLIP_FRAMES = 24


@pytest.fixture(scope="session")
def clip_frames() -> int:
    """Frames in each clip of ``clips``."""
    return CLIP_FRAMES


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``{suffix: path}`` of a 24-frame red clip, square moving right, per container."""
    root = tmp_path_factory.mktemp("clips")
    spec = ClipSpec("red", "right", CLIP_FRAMES)
    return {ext: write_video(root / f"clip.{ext}", spec) for ext in FORMATS}


@pytest.fixture(scope="session")
def broken(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Files that are not usable videos, by kind."""
    root = tmp_path_factory.mktemp("broken")
    good = write_video(root / "src.mp4", ClipSpec("blue", "left", CLIP_FRAMES))
    return {
        "truncated": write_truncated_video(good, root / "truncated.mp4"),
        "empty": write_empty_file(root / "empty.mp4"),
        "text": write_text_as_video(root / "notes.mp4"),
        "audio_only": write_audio_only(root / "song.mkv"),
        "missing": root / "missing.mp4",
        "image": _gif_as_video(root / "still.mp4"),
    }


def _gif_as_video(path: Path) -> Path:
    # FFmpeg would decode a still image as a one-frame video; it must fail as "not a video".
    path.write_bytes(b"GIF89a" + b"\0" * 64)
    return path
