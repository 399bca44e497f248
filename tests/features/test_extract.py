"""End-to-end extraction with the tiny CLIP on a folder of good and broken videos."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from decoders import EVERY_DECODER
from transformers import CLIPVisionModel

from videollm.demo.tiny_models import CLIP_MEAN, CLIP_STD
from videollm.demo.videos import SyntheticVideo
from videollm.errors import ConfigError
from videollm.features import extract as extract_module
from videollm.features.encoder import VideoEncoder
from videollm.features.extract import ExtractConfig, ExtractResult, extract, features_for_video
from videollm.features.store import (
    FAILURES_NAME,
    MANIFEST_NAME,
    METADATA_KEYS,
    load_features,
    read_extract_config,
    read_jsonl,
)

NUM_FRAMES = 8
PATCHES = 16  # tiny CLIP: 32 px images, 8 px patches
DIM = 32


@pytest.fixture(scope="module")
def config(tiny_clip_dir: Path) -> ExtractConfig:
    return ExtractConfig(
        encoder=str(tiny_clip_dir), num_frames=NUM_FRAMES, batch_size=4, num_workers=2
    )


@pytest.fixture(scope="module")
def first_run(
    video_dir: Path, config: ExtractConfig, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, ExtractResult]:
    out = tmp_path_factory.mktemp("features")
    return out, extract(video_dir, out, config)


def test_good_videos_produce_features(
    first_run: tuple[Path, ExtractResult],
    good_videos: list[SyntheticVideo],
    bad_ids: frozenset[str],
) -> None:
    out, result = first_run
    assert (result.done, result.skipped, result.failed) == (len(good_videos), 0, len(bad_ids))
    assert result.frames == NUM_FRAMES * len(good_videos)
    assert result.videos_per_s > 0
    for video in good_videos:
        feats, meta = load_features(out / f"{video.path.stem}.safetensors")
        assert feats.shape == (NUM_FRAMES + PATCHES, DIM)
        assert feats.dtype == torch.float16
        assert set(meta) == set(METADATA_KEYS)
        assert meta["source"] == str(video.path)
        assert meta["frames"] == str(NUM_FRAMES)
        assert read_extract_config(meta).num_frames == NUM_FRAMES


def test_manifest_and_failures(
    first_run: tuple[Path, ExtractResult],
    good_videos: list[SyntheticVideo],
    bad_ids: frozenset[str],
) -> None:
    out, result = first_run
    manifest = list(read_jsonl(out / MANIFEST_NAME))
    assert sorted(r["video_id"] for r in manifest) == sorted(v.path.stem for v in good_videos)
    for record in manifest:
        assert set(record) == {"video_id", "file", "source", "tokens", "dim", "frames", "sha256"}
        assert (record["tokens"], record["dim"], record["frames"]) == (24, DIM, NUM_FRAMES)
        assert len(record["sha256"]) == 64
    failures = list(read_jsonl(out / FAILURES_NAME))
    assert {f["video_id"] for f in failures} == bad_ids
    assert failures == result.failures
    reasons = {f["video_id"]: f["error"] for f in failures}
    assert "file is empty" in reasons["empty"]
    assert "no video stream" in reasons["song"]
    for failure in failures:
        assert failure["source"] in failure["error"]


@pytest.mark.parametrize("decoder", EVERY_DECODER)
def test_each_decoder_extracts_the_same_and_records_every_failure(
    first_run: tuple[Path, ExtractResult],
    config: ExtractConfig,
    video_dir: Path,
    bad_ids: frozenset[str],
    tmp_path: Path,
    decoder: str,
) -> None:
    """A corrupt, truncated, empty or audio-only file ends in failures.jsonl whichever decoder
    reads it, and the good videos give the features of the default run."""
    auto_out, auto_result = first_run
    cfg = ExtractConfig(**{**vars(config), "decoder": decoder})
    result = extract(video_dir, tmp_path, cfg)
    assert (result.done, result.failed) == (auto_result.done, len(bad_ids))
    assert {f["video_id"] for f in read_jsonl(tmp_path / FAILURES_NAME)} == bad_ids
    for path in sorted(auto_out.glob("*.safetensors")):
        ours, meta = load_features(tmp_path / path.name)
        assert meta["decoder"] == decoder
        theirs, _ = load_features(path)
        # Two FFmpeg builds may convert YUV→RGB a little differently: nearly equal features.
        assert torch.nn.functional.cosine_similarity(ours.float(), theirs.float()).min() > 0.98


def test_colours_give_different_features(
    first_run: tuple[Path, ExtractResult], good_videos: list[SyntheticVideo]
) -> None:
    out, _ = first_run
    by_colour = {}
    for video in good_videos:
        if video.direction == "left":
            by_colour[video.colour] = load_features(out / f"{video.path.stem}.safetensors")[0]
    red, green, blue = (by_colour[c].float() for c in ("red", "green", "blue"))
    for a, b in [(red, green), (red, blue), (green, blue)]:
        assert (a - b).abs().mean() > 1e-2


def test_rerun_skips_and_leaves_outputs_untouched(
    first_run: tuple[Path, ExtractResult],
    video_dir: Path,
    config: ExtractConfig,
    bad_ids: frozenset[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out, first = first_run
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.safetensors")}
    manifest = (out / MANIFEST_NAME).read_text()

    def no_encoder(*args: object, **kwargs: object) -> None:
        raise AssertionError("re-run must not load the encoder: nothing good is left to do")

    monkeypatch.setattr(extract_module, "VideoEncoder", no_encoder)
    result = extract(video_dir, out, config)
    assert (result.done, result.skipped, result.failed) == (0, first.done, len(bad_ids))
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.safetensors")} == before
    assert (out / MANIFEST_NAME).read_text() == manifest
    assert {f["video_id"] for f in read_jsonl(out / FAILURES_NAME)} == bad_ids


def test_resume_repairs_manifest_and_redoes_corrupt_files(
    first_run: tuple[Path, ExtractResult], video_dir: Path, config: ExtractConfig, tmp_path: Path
) -> None:
    out = tmp_path / "copy"
    shutil.copytree(first_run[0], out)
    (out / MANIFEST_NAME).unlink()
    (out / "red_left_00.safetensors").write_bytes(b"garbage")
    result = extract(video_dir, out, config.__class__(**{**vars(config), "num_workers": 0}))
    assert (result.done, result.skipped) == (1, 5)
    assert len(list(read_jsonl(out / MANIFEST_NAME))) == 6
    assert load_features(out / "red_left_00.safetensors")[0].shape == (24, DIM)


def test_different_settings_are_refused(
    first_run: tuple[Path, ExtractResult], video_dir: Path, config: ExtractConfig
) -> None:
    changed = ExtractConfig(encoder=config.encoder, num_frames=4)
    with pytest.raises(ConfigError, match="num_frames"):
        extract(video_dir, first_run[0], changed)


def test_adaptive3d_in_the_main_process(
    good_videos: list[SyntheticVideo], config: ExtractConfig, tmp_path: Path
) -> None:
    listing = tmp_path / "videos.txt"
    listing.write_text("\n".join(str(v.path) for v in good_videos[:3]) + "\n")
    cfg = ExtractConfig(
        encoder=config.encoder, pooling="adaptive3d", pool_size=[2, 2, 2], num_workers=0
    )
    result = extract(listing, tmp_path / "out", cfg)
    assert (result.done, result.failed) == (3, 0)
    feats, _ = load_features(tmp_path / "out" / f"{good_videos[0].path.stem}.safetensors")
    assert feats.shape == (8, DIM)


def test_single_video_matches_batched_extraction(
    first_run: tuple[Path, ExtractResult], good_videos: list[SyntheticVideo], config: ExtractConfig
) -> None:
    video = good_videos[1]
    feats, meta = features_for_video(video.path, config)
    stored, stored_meta = load_features(first_run[0] / f"{video.path.stem}.safetensors")
    assert meta == stored_meta
    torch.testing.assert_close(feats, stored, atol=2e-3, rtol=2e-3)


def test_encoder_preprocess_hand_checked(tiny_clip_dir: Path) -> None:
    encoder = VideoEncoder(str(tiny_clip_dir), device="cpu", dtype="float32")
    red = torch.zeros(2, 48, 64, 3, dtype=torch.uint8)
    red[..., 0] = 220
    pixels = encoder.preprocess(red)
    assert pixels.shape == (2, 3, 32, 32)  # shortest edge 32 → 32×42, center crop 32×32
    mean, std = torch.tensor(CLIP_MEAN), torch.tensor(CLIP_STD)
    expected = (torch.tensor([220.0, 0.0, 0.0]) / 255 - mean) / std
    torch.testing.assert_close(pixels[0, :, 16, 16], expected, atol=1e-5, rtol=1e-5)
    portrait = encoder.preprocess(torch.zeros(1, 64, 48, 3, dtype=torch.uint8))
    assert portrait.shape == (1, 3, 32, 32)


def test_encoder_matches_full_model_hidden_state(tiny_clip_dir: Path) -> None:
    pixels = torch.randn(3, 3, 32, 32)
    full = CLIPVisionModel.from_pretrained(tiny_clip_dir).eval()
    with torch.no_grad():
        hidden = full(pixel_values=pixels, output_hidden_states=True).hidden_states
    for layer in (-2, -1, 0, 1):
        encoder = VideoEncoder(str(tiny_clip_dir), layer=layer, device="cpu", dtype="float32")
        tokens = encoder.encode_pixels(pixels)
        assert tokens.shape == (3, PATCHES, DIM)
        torch.testing.assert_close(tokens, hidden[layer][:, 1:])
    chunked = VideoEncoder(str(tiny_clip_dir), device="cpu", dtype="float32", max_frames_per_pass=2)
    torch.testing.assert_close(chunked.encode_pixels(pixels), hidden[-2][:, 1:])
