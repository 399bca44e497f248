"""Encoder families: CLIP drops its CLS, SigLIP drops nothing, any other HF tower drops what
precedes its patches; each checked against the full model's hidden states and through
``extract`` on real (synthetic) videos."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from transformers import AutoConfig, AutoModel, SiglipConfig, SiglipModel

from videollm.demo.videos import SyntheticVideo
from videollm.errors import ConfigError
from videollm.features.encoder import VideoEncoder
from videollm.features.encoder_family import ENCODER_FAMILIES, family_of
from videollm.features.extract import ExtractConfig, extract
from videollm.features.store import load_features, read_jsonl

NUM_FRAMES = 8
PATCHES = 16
DIM = 32


@pytest.fixture(scope="module")
def towers(tiny_clip_dir: Path, tiny_siglip_dir: Path, tiny_dinov2_dir: Path) -> dict[str, Path]:
    return {"clip": tiny_clip_dir, "siglip": tiny_siglip_dir, "hf_vision": tiny_dinov2_dir}


def test_families_are_registered_and_picked_by_model_type(towers: dict[str, Path]) -> None:
    assert {"clip", "siglip", "hf_vision"} <= set(ENCODER_FAMILIES.names())
    for family, path in towers.items():
        assert family_of(AutoConfig.from_pretrained(path)) == family
        assert VideoEncoder(str(path), device="cpu", dtype="float32").family == family


@pytest.mark.parametrize(("family", "prefix"), [("clip", 1), ("siglip", 0), ("hf_vision", 3)])
def test_patch_tokens_match_the_full_models_hidden_states(
    towers: dict[str, Path], family: str, prefix: int
) -> None:
    """CLIP: CLS first; SigLIP: no CLS (all 16 tokens are patches); DINOv2 with 2 registers:
    CLS + 2 registers before the patches."""
    path = towers[family]
    size = AutoConfig.from_pretrained(path).image_size
    pixels = torch.randn(3, 3, size, size)
    full = AutoModel.from_pretrained(path).eval()
    with torch.no_grad():
        hidden = full(pixel_values=pixels, output_hidden_states=True).hidden_states
    assert hidden[-1].shape[1] == PATCHES + prefix
    for layer in (-2, -1, 1):
        encoder = VideoEncoder(str(path), layer=layer, device="cpu", dtype="float32")
        tokens = encoder.encode_pixels(pixels)
        assert tokens.shape == (3, PATCHES, DIM)
        torch.testing.assert_close(tokens, hidden[layer][:, prefix:])


@pytest.mark.parametrize("family", ["siglip", "hf_vision"])
def test_extract_writes_every_patch(
    towers: dict[str, Path], family: str, good_videos: list[SyntheticVideo], tmp_path: Path
) -> None:
    """8 frames + 16 patches = 24 tokens: not 23 (a SigLIP patch dropped as if it were CLS)."""
    listing = tmp_path / "videos.txt"
    listing.write_text("\n".join(str(v.path) for v in good_videos[:2]) + "\n")
    cfg = ExtractConfig(encoder=str(towers[family]), num_frames=NUM_FRAMES, num_workers=0)
    result = extract(listing, tmp_path / "out", cfg)
    assert (result.done, result.failed) == (2, 0)
    feats, _ = load_features(tmp_path / "out" / f"{good_videos[0].path.stem}.safetensors")
    assert feats.shape == (NUM_FRAMES + PATCHES, DIM)
    assert feats[:NUM_FRAMES].abs().sum(dim=1).gt(0).all()  # every sampled frame has a token
    tokens = {r["tokens"] for r in read_jsonl(tmp_path / "out" / "manifest.jsonl")}
    assert tokens == {NUM_FRAMES + PATCHES}


def test_a_preprocessor_at_the_wrong_size_is_refused(tiny_siglip_dir: Path) -> None:
    """A SigLIP fed 28 px frames gives 4 tokens, not 16: named, not silently mis-sliced."""
    encoder = VideoEncoder(str(tiny_siglip_dir), device="cpu", dtype="float32")
    with pytest.raises(ConfigError, match=r"returned 4 tokens per frame, expected 16"):
        encoder._prefix_of(4)


def test_siglip_vision_half_of_a_full_image_text_checkpoint(
    tiny_siglip_dir: Path, tmp_path: Path
) -> None:
    """A full SigLIP (vision + text) checkpoint is read by its vision tower only."""
    tower = dict(hidden_size=DIM, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4)
    config = SiglipConfig(
        vision_config={"image_size": 56, "patch_size": 14, **tower},
        text_config={"vocab_size": 100, **tower},
    )
    torch.manual_seed(0)
    full = SiglipModel(config).eval()
    full.save_pretrained(tmp_path)
    shutil.copy(tiny_siglip_dir / "preprocessor_config.json", tmp_path)
    pixels = torch.randn(2, 3, 56, 56)
    with torch.no_grad():
        hidden = full.vision_model(pixel_values=pixels, output_hidden_states=True).hidden_states
    encoder = VideoEncoder(str(tmp_path), device="cpu", dtype="float32")
    assert encoder.family == "siglip"
    torch.testing.assert_close(encoder.encode_pixels(pixels), hidden[-2])
