"""Fixtures for feature tests: a folder of good and broken videos, tiny SigLIP and DINOv2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from broken_videos import (
    write_audio_only,
    write_empty_file,
    write_text_as_video,
    write_truncated_video,
)
from transformers import (
    Dinov2WithRegistersConfig,
    Dinov2WithRegistersModel,
    SiglipVisionConfig,
    SiglipVisionModel,
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


def _write_processor(out: Path, image_size: int, crop: bool) -> None:
    """A preprocessor config: SigLIP style (resize to exact size) or CLIP style (crop)."""
    if crop:
        size: dict[str, int] = {"shortest_edge": image_size}
    else:
        size = {"height": image_size, "width": image_size}
    processor = {
        "do_resize": True,
        "size": size,
        "do_center_crop": crop,
        "crop_size": {"height": image_size, "width": image_size},
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": [0.5, 0.5, 0.5],
        "image_std": [0.5, 0.5, 0.5],
    }
    (out / "preprocessor_config.json").write_text(json.dumps(processor))


TINY = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4)


@pytest.fixture(scope="session")
def tiny_siglip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random SigLIP vision tower: 56 px, 14 px patches → 16 patch tokens, no CLS."""
    out = tmp_path_factory.mktemp("tiny_siglip")
    torch.manual_seed(0)
    SiglipVisionModel(SiglipVisionConfig(image_size=56, patch_size=14, **TINY)).save_pretrained(out)
    _write_processor(out, 56, crop=False)
    return out


@pytest.fixture(scope="session")
def tiny_dinov2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random DINOv2-with-registers tower (no family of its own): 32 px, 8 px patches →
    16 patches after 1 CLS and 2 register tokens."""
    out = tmp_path_factory.mktemp("tiny_dinov2")
    torch.manual_seed(0)
    config = Dinov2WithRegistersConfig(
        image_size=32,
        patch_size=8,
        num_register_tokens=2,
        hidden_size=32,
        mlp_ratio=2,
        num_hidden_layers=3,
        num_attention_heads=4,
    )
    Dinov2WithRegistersModel(config).save_pretrained(out)
    _write_processor(out, 32, crop=True)
    return out
