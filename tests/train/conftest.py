"""Shared end-to-end data: synthetic coloured videos → tiny-CLIP features → chat records."""

from __future__ import annotations

from pathlib import Path

import pytest

from videollm.data.convert import ConvertConfig, convert
from videollm.demo.run import write_colour_annotations
from videollm.demo.videos import make_synthetic_videos
from videollm.features.extract import ExtractConfig, extract


@pytest.fixture(scope="session")
def colour_data(tmp_path_factory: pytest.TempPathFactory, tiny_clip_dir: Path) -> dict[str, Path]:
    """24 videos (8 red, 8 green, 8 blue), their features and an 18/6 train/val split."""
    root = tmp_path_factory.mktemp("colour")
    videos = make_synthetic_videos(root / "videos", n_per_class=8)
    annotations = write_colour_annotations(videos, root / "videos", root / "annotations.jsonl")
    result = extract(
        root / "videos", root / "features", ExtractConfig(encoder=str(tiny_clip_dir), num_frames=8)
    )
    assert result.failed == 0
    convert(
        ConvertConfig(
            format="jsonl", input=str(annotations), out=str(root / "records"), val_fraction=0.25
        )
    )
    return {
        "root": root,
        "videos": root / "videos",
        "features": root / "features",
        "records": root / "records",
    }
