"""Pooling: shapes and hand-checked values."""

from __future__ import annotations

import pytest
import torch

from videollm.features.extract_config import ExtractConfig
from videollm.features.pooling import num_tokens, pool
from videollm.features.poolings.adaptive3d import adaptive3d_pool
from videollm.features.poolings.spatiotemporal import spatiotemporal_pool


def test_spatiotemporal_values_and_padding() -> None:
    # 2 frames × 2 patches × 1 dim.
    x = torch.tensor([[[1.0], [3.0]], [[5.0], [7.0]]])
    out = spatiotemporal_pool(x, num_frames=4)
    # Per-frame means (2, 6), zero-padded to 4 frames, then per-patch means (3, 5).
    assert out.squeeze(1).tolist() == [2.0, 6.0, 0.0, 0.0, 3.0, 5.0]


def test_spatiotemporal_videochatgpt_shape() -> None:
    x = torch.randn(7, 256, 8)
    out = spatiotemporal_pool(x, num_frames=100)
    assert out.shape == (356, 8)
    torch.testing.assert_close(out[:7], x.mean(dim=1))
    assert out[7:100].abs().sum() == 0
    torch.testing.assert_close(out[100:], x.mean(dim=0))


def test_spatiotemporal_keeps_dtype_and_rejects_too_many_frames() -> None:
    x = torch.randn(3, 4, 2).half()
    assert spatiotemporal_pool(x, 3).dtype == torch.float16
    with pytest.raises(ValueError, match="more than num_frames"):
        spatiotemporal_pool(x, 2)
    with pytest.raises(ValueError, match="T×P×D"):
        spatiotemporal_pool(torch.zeros(3, 4), 3)


def test_adaptive3d_values() -> None:
    # 2 frames on a 2×2 grid, 1 dim: values 0..7 in (t, h, w) order.
    x = torch.arange(8.0).reshape(2, 4, 1)
    whole = adaptive3d_pool(x, (1, 1, 1))
    assert whole.tolist() == [[3.5]]
    per_frame = adaptive3d_pool(x, (2, 1, 1))
    assert per_frame.squeeze(1).tolist() == [1.5, 5.5]
    per_row = adaptive3d_pool(x, (1, 2, 1))
    # Row 0: frames' values 0,1,4,5 → 2.5; row 1: 2,3,6,7 → 4.5.
    assert per_row.squeeze(1).tolist() == [2.5, 4.5]
    identity = adaptive3d_pool(x, (2, 2, 2))
    assert identity.squeeze(1).tolist() == list(range(8))


def test_adaptive3d_block_means() -> None:
    x = torch.randn(4, 16, 3)
    out = adaptive3d_pool(x, (2, 2, 2))
    assert out.shape == (8, 3)
    grid = x.reshape(2, 2, 2, 2, 2, 2, 3)  # t_out, t_in, h_out, h_in, w_out, w_in, D
    expected = grid.mean(dim=(1, 3, 5)).reshape(8, 3)
    torch.testing.assert_close(out, expected)


def test_adaptive3d_stretches_short_videos_and_needs_square_grid() -> None:
    assert adaptive3d_pool(torch.randn(1, 16, 2), (4, 2, 2)).shape == (16, 2)
    with pytest.raises(ValueError, match="square"):
        adaptive3d_pool(torch.randn(2, 15, 2), (1, 1, 1))
    with pytest.raises(ValueError, match=r"\[t, h, w\]"):
        adaptive3d_pool(torch.randn(2, 16, 2), (1, 1))


def test_pool_dispatch_and_num_tokens() -> None:
    x = torch.randn(5, 16, 4)
    st = ExtractConfig(num_frames=8)
    a3 = ExtractConfig(pooling="adaptive3d", pooling_options={"pool_size": [2, 2, 2]})
    assert pool(x, st).shape == (num_tokens(st, 16), 4) == (24, 4)
    assert pool(x, a3).shape == (num_tokens(a3, 16), 4) == (8, 4)
    assert num_tokens(ExtractConfig(), 256) == 356
