"""Pool per-frame patch tokens (``T×P×D``) into a fixed number of video tokens.

Two recipes, chosen by ``ExtractConfig.pooling``:

* ``spatiotemporal`` (Video-ChatGPT): the mean over patches gives one token per frame (``T×D``,
  zero-padded to ``num_frames`` so every video has the same length), and the mean over frames
  gives one token per patch (``P×D``). Frame tokens come first: ``(num_frames + P)×D``, i.e.
  356×1024 for CLIP ViT-L/14 at 224 px and 100 frames.
* ``adaptive3d`` (PLLaVA): the ``T×√P×√P`` token grid is average-pooled to ``t×h×w``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from videollm.features.extract_config import ExtractConfig


def spatiotemporal_pool(x: torch.Tensor, num_frames: int) -> torch.Tensor:
    """Video-ChatGPT pooling of ``T×P×D`` tokens into ``(num_frames + P)×D``.

    Args:
        x: Patch tokens of ``T`` frames, ``T <= num_frames``.
        num_frames: Length the per-frame tokens are zero-padded to.

    Returns:
        Per-frame means (padded) followed by per-patch means, in ``x``'s dtype.
    """
    if x.ndim != 3:
        raise ValueError(f"expected T×P×D tokens, got shape {tuple(x.shape)}")
    t, _, d = x.shape
    if t > num_frames:
        raise ValueError(f"{t} frames is more than num_frames={num_frames}")
    # Means in fp32: fp16 sums over 256 patches or 100 frames lose precision.
    xf = x.float()
    per_frame = xf.mean(dim=1)
    if t < num_frames:
        per_frame = torch.cat([per_frame, per_frame.new_zeros(num_frames - t, d)])
    per_patch = xf.mean(dim=0)
    return torch.cat([per_frame, per_patch]).to(x.dtype)


def adaptive3d_pool(x: torch.Tensor, pool_size: Sequence[int]) -> torch.Tensor:
    """PLLaVA pooling of ``T×P×D`` tokens (``P`` a square grid) into ``(t*h*w)×D``.

    Videos with fewer than ``t`` frames are stretched (adaptive pooling repeats frames), so the
    token count is always ``t*h*w``.

    Args:
        x: Patch tokens of ``T`` frames on a ``√P×√P`` grid.
        pool_size: ``(t, h, w)`` output grid.

    Returns:
        Pooled tokens in ``t, h, w`` order, in ``x``'s dtype.
    """
    if x.ndim != 3:
        raise ValueError(f"expected T×P×D tokens, got shape {tuple(x.shape)}")
    if len(pool_size) != 3:
        raise ValueError(f"pool_size must be [t, h, w], got {list(pool_size)}")
    t, p, d = x.shape
    side = math.isqrt(p)
    if side * side != p:
        raise ValueError(f"adaptive3d pooling needs a square patch grid, got {p} patches")
    grid = x.float().reshape(t, side, side, d).permute(3, 0, 1, 2)  # D×T×H×W
    pooled = F.adaptive_avg_pool3d(grid.unsqueeze(0), tuple(pool_size)).squeeze(0)
    return pooled.permute(1, 2, 3, 0).reshape(-1, d).to(x.dtype)


def pool(x: torch.Tensor, cfg: ExtractConfig) -> torch.Tensor:
    """Pool ``T×P×D`` tokens as ``cfg.pooling`` says."""
    if cfg.pooling == "spatiotemporal":
        return spatiotemporal_pool(x, cfg.num_frames)
    if cfg.pooling == "adaptive3d":
        return adaptive3d_pool(x, cfg.pool_size)
    raise ValueError(f"unknown pooling {cfg.pooling!r}")


def num_tokens(cfg: ExtractConfig, num_patches: int) -> int:
    """Tokens per video that ``pool`` produces for an encoder with ``num_patches`` patches."""
    if cfg.pooling == "spatiotemporal":
        return cfg.num_frames + num_patches
    return math.prod(cfg.pool_size)
