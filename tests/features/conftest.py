"""Fixtures for feature tests: a folder of good and broken videos."""

from __future__ import annotations

from pathlib import Path

import pytest
from broken_videos import (
    write_audio_only,
    write_empty_file,
    write_text_as_video,
    write_truncated_video,
)

from videollm.demo.videos import SyntheticVideo, make_synthetic_videos

BAD_IDS = frozenset({"cut", "empty", "notes", "song"})


@pytest.fixture(scope="session")
def bad_ids() -> frozenset[str]:
    """Ids of the broken files in ``video_dir``."""
    return BAD_IDS


@pytest.fixture(scope="session")
def good_videos(tmp_path_factory: pytest.TempPathFactory) -> list[SyntheticVideo]:
    """Six 16-frame clips (red/green/blue × left/right) as mp4, avi and mkv, plus bad files.

    The bad files (ids in ``BAD_IDS``) sit in the same folder, next to the good ones.
    """
    root = tmp_path_factory.mktemp("videos")
    videos = make_synthetic_videos(root, n_per_class=2, num_frames=16)
    write_truncated_video(videos[0].path, root / "cut.mp4")
    write_empty_file(root / "empty.mp4")
    write_text_as_video(root / "notes.mp4")
    write_audio_only(root / "song.mkv")
    return videos


@pytest.fixture(scope="session")
def video_dir(good_videos: list[SyntheticVideo]) -> Path:
    """The folder holding ``good_videos`` and the bad files."""
    return good_videos[0].path.parent
