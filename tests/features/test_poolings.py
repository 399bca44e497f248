"""The pooling registry, ``per_frame`` by hand, and option validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from videollm.cli.main import EXIT_CONFIG, main
from videollm.config_loader import from_dict, load_config
from videollm.demo.videos import SyntheticVideo
from videollm.errors import ConfigError
from videollm.features.extract_config import ExtractConfig
from videollm.features.pooling import POOLINGS, build_pooling, num_tokens, pool
from videollm.features.poolings.per_frame import per_frame_pool
from videollm.features.store import load_features


def test_built_in_poolings_are_registered_with_summaries() -> None:
    assert {"spatiotemporal", "adaptive3d", "per_frame"} <= set(POOLINGS.names())
    assert all(POOLINGS.summaries()[name] for name in POOLINGS.names())


def test_per_frame_block_means_by_hand() -> None:
    # 2 frames on a 4×4 grid, 1 dim: frame 0 holds 0..15 row by row, frame 1 holds 16..31.
    x = torch.arange(32.0).reshape(2, 16, 1)
    out = per_frame_pool(x, num_frames=3, tokens_per_frame=4)
    # 2×2 blocks: {0,1,4,5} → 2.5, {2,3,6,7} → 4.5, {8,9,12,13} → 10.5, {10,11,14,15} → 12.5;
    # frame 1 is 16 more; the third (missing) frame is 4 zero tokens.
    assert out.squeeze(1).tolist() == [2.5, 4.5, 10.5, 12.5, 18.5, 20.5, 26.5, 28.5] + [0.0] * 4
    assert per_frame_pool(x, 2, 1).squeeze(1).tolist() == [7.5, 23.5]  # one mean per frame
    assert per_frame_pool(x, 2, 16).squeeze(1).tolist() == list(range(32))  # the grid itself


def test_per_frame_through_the_config_and_its_token_count() -> None:
    x = torch.randn(5, 16, 3).half()
    cfg = ExtractConfig(num_frames=8, pooling="per_frame", pooling_options={"tokens_per_frame": 1})
    out = pool(x, cfg)
    assert out.shape == (num_tokens(cfg, 16), 3) == (8, 3) and out.dtype == torch.float16
    torch.testing.assert_close(out[:5], x.float().mean(dim=1).half())
    assert out[5:].abs().sum() == 0
    assert num_tokens(ExtractConfig(pooling="per_frame"), 256) == 400  # default k=4, 100 frames


def test_per_frame_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="more than num_frames"):
        per_frame_pool(torch.zeros(3, 16, 1), 2, 4)
    with pytest.raises(ValueError, match="square patch grid"):
        per_frame_pool(torch.zeros(2, 15, 1), 2, 4)


@pytest.mark.parametrize(
    ("pooling", "options", "message"),
    [
        ("per_frame", {"tokens_per_frame": 3}, r"pooling_options\.tokens_per_frame: must be a sq"),
        (
            "per_frame",
            {"tokens_per_frame": "4"},
            r"pooling_options\.tokens_per_frame: expected int",
        ),
        ("per_frame", {"grid": 2}, r"unknown config key extract\.pooling_options\.grid"),
        ("adaptive3d", {"pool_size": [2, 2]}, r"pooling_options\.pool_size: expected \[t, h, w\]"),
        ("spatiotemporal", {"k": 1}, r"pooling_options\.k: pooling spatiotemporal takes no"),
        ("nope", {}, r"extract\.pooling: unknown pooling 'nope'; choose from .*per_frame"),
    ],
)
def test_bad_options_name_the_setting_and_the_pooling(
    pooling: str, options: dict, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        from_dict(ExtractConfig, {"pooling": pooling, "pooling_options": options})
    if pooling != "nope":
        assert pooling in str(err.value)


def test_options_come_from_overrides_and_are_filled_in() -> None:
    cfg = load_config(
        ExtractConfig, overrides=["pooling=adaptive3d", "pooling_options={pool_size: [2, 3, 3]}"]
    )
    assert cfg.pooling_options == {"pool_size": [2, 3, 3]}
    assert num_tokens(cfg, 16) == 18
    assert ExtractConfig(pooling="adaptive3d").pooling_options == {"pool_size": [16, 12, 12]}
    assert build_pooling(ExtractConfig(pooling="per_frame")).options.tokens_per_frame == 4


def test_the_cli_takes_a_registered_pooling_and_its_options(
    good_videos: list[SyntheticVideo], tiny_clip_dir: Path, tmp_path: Path
) -> None:
    listing = tmp_path / "videos.txt"
    listing.write_text(f"{good_videos[0].path}\n")
    argv = ["extract", "--videos", str(listing), "--out", str(tmp_path / "out")]
    argv += ["--encoder", str(tiny_clip_dir), "--num-frames", "8", "--num-workers", "0"]
    argv += ["--pooling", "per_frame", "--pooling-option", "tokens_per_frame=1"]
    assert main(argv) == 0
    feats, meta = load_features(tmp_path / "out" / f"{good_videos[0].path.stem}.safetensors")
    assert feats.shape == (8, 32)  # 8 frames × 1 token
    assert json.loads(meta["pooling_options"]) == {"tokens_per_frame": 1}
    with pytest.raises(SystemExit):  # argparse refuses a pooling that is not registered
        main([*argv[:-4], "--pooling", "nope"])
    bad = [*argv[:-1], "tokens_per_frame=2"]
    assert main(bad) == EXIT_CONFIG
