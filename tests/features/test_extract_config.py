"""Backward compatibility: the deprecated ``pool_size`` and configs recorded before
``pooling_options`` still load, and compare equal to today's."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from videollm.config_loader import from_dict, load_config
from videollm.demo.videos import SyntheticVideo
from videollm.errors import ConfigError
from videollm.features import extract_config
from videollm.features.extract import ExtractConfig, extract
from videollm.features.extract_config import normalize_recorded, recorded_config
from videollm.features.store import load_features, save_features

# What a feature file recorded before pooling_options existed (every pooling recorded
# adaptive3d's pool_size, used or not).
OLD_RECORD = {
    "encoder": "/models/clip",
    "layer": -2,
    "num_frames": 8,
    "pooling": "spatiotemporal",
    "pool_size": [16, 12, 12],
    "resize_shortest": None,
}


@pytest.fixture(autouse=True)
def _warn_again() -> None:
    extract_config._warn_pool_size.cache_clear()


def test_pool_size_is_folded_into_the_options_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        cfg = load_config(ExtractConfig, overrides=["pooling=adaptive3d", "pool_size=[8,12,12]"])
    assert cfg.pooling_options == {"pool_size": [8, 12, 12]} and cfg.pool_size is None
    assert "pool_size is deprecated" in caplog.text
    assert cfg == ExtractConfig(pooling="adaptive3d", pooling_options={"pool_size": [8, 12, 12]})
    assert "pool_size" not in recorded_config(cfg)


def test_pool_size_contradicting_the_options_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"pool_size: \[2, 2, 2\] contradicts"):
        ExtractConfig(
            pooling="adaptive3d", pool_size=[2, 2, 2], pooling_options={"pool_size": [4, 4, 4]}
        )


def test_old_records_load_and_compare_equal(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        old = from_dict(ExtractConfig, dict(OLD_RECORD))  # a checkpoint's ``extract`` section
    assert "deprecated" not in caplog.text  # unused by spatiotemporal: nothing to warn about
    now = ExtractConfig(encoder="/models/clip", num_frames=8)
    assert old == now
    assert normalize_recorded(OLD_RECORD) == recorded_config(now)
    old_a3 = {**OLD_RECORD, "pooling": "adaptive3d", "pool_size": [2, 2, 2]}
    a3 = ExtractConfig(
        encoder="/models/clip",
        num_frames=8,
        pooling="adaptive3d",
        pooling_options={"pool_size": [2, 2, 2]},
    )
    assert normalize_recorded(old_a3) == recorded_config(a3)
    assert normalize_recorded(old_a3) != recorded_config(ExtractConfig(encoder="/models/clip"))
    # A record of a pooling that is not installed here stays as it was (and so differs).
    plugin = {**OLD_RECORD, "pooling": "not_installed"}
    assert normalize_recorded(plugin) == plugin


def test_extract_skips_files_recorded_the_old_way(
    good_videos: list[SyntheticVideo], tiny_clip_dir: Path, tmp_path: Path
) -> None:
    """Features made before pooling_options are done, not refused as 'different settings'."""
    video = good_videos[0]
    cfg = ExtractConfig(encoder=str(tiny_clip_dir), num_frames=8, num_workers=0)
    out = tmp_path / "features"
    extract(video.path.parent, out, cfg)
    path = out / f"{video.path.stem}.safetensors"
    feats, meta = load_features(path)
    record = json.loads(meta["extract_config"])
    del record["pooling_options"]
    record["pool_size"] = [16, 12, 12]
    save_features(path, feats, {**meta, "extract_config": json.dumps(record)})
    result = extract(video.path.parent, out, cfg)
    assert result.done == 0 and result.skipped == len(good_videos)
    with pytest.raises(ConfigError, match="pooling"):
        extract(
            video.path.parent,
            out,
            ExtractConfig(encoder=cfg.encoder, num_frames=8, pooling="per_frame"),
        )
