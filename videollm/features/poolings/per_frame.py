"""``per_frame`` (LLaMA-VID's content tokens): ``k`` tokens per frame by spatial grid pooling."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from videollm.config_loader import check_int
from videollm.errors import ConfigError
from videollm.features.pooling import POOLINGS, Pooling


def per_frame_pool(x: torch.Tensor, num_frames: int, tokens_per_frame: int) -> torch.Tensor:
    """Average-pool each frame's ``√P×√P`` patch grid to ``g×g`` (``g*g = tokens_per_frame``).

    Args:
        x: Patch tokens of ``T`` frames on a square grid, ``T <= num_frames``.
        num_frames: Frames the output is zero-padded to, so every video has the same length.
        tokens_per_frame: ``k``, a square number (1, 4, 9 …).

    Returns:
        ``(num_frames*k)×D`` tokens, frame by frame, each frame's ``g×g`` in row-major order,
        in ``x``'s dtype.
    """
    if x.ndim != 3:
        raise ValueError(f"expected T×P×D tokens, got shape {tuple(x.shape)}")
    t, p, d = x.shape
    if t > num_frames:
        raise ValueError(f"{t} frames is more than num_frames={num_frames}")
    side, g = math.isqrt(p), math.isqrt(tokens_per_frame)
    if side * side != p:
        raise ValueError(f"per_frame pooling needs a square patch grid, got {p} patches")
    grid = x.float().reshape(t, side, side, d).permute(0, 3, 1, 2)  # T×D×H×W
    pooled = F.adaptive_avg_pool2d(grid, (g, g)).permute(0, 2, 3, 1).reshape(t * g * g, d)
    if t < num_frames:
        pooled = torch.cat([pooled, pooled.new_zeros((num_frames - t) * g * g, d)])
    return pooled.to(x.dtype)


@dataclass
class PerFrameOptions:
    """Settings of ``per_frame``.

    Attributes:
        tokens_per_frame: ``k``, a square number: each frame's patch grid is pooled to
            ``√k×√k`` (LLaMA-VID uses 1 content token per video frame; 4 keeps coarse layout).
    """

    tokens_per_frame: int = 4

    def __post_init__(self) -> None:
        check_int(self.tokens_per_frame, 1, "tokens_per_frame")
        if math.isqrt(self.tokens_per_frame) ** 2 != self.tokens_per_frame:
            raise ConfigError(
                f"tokens_per_frame: must be a square number (1, 4, 9, 16 …) to pool the patch "
                f"grid to √k×√k, got {self.tokens_per_frame}"
            )


@POOLINGS.register(
    "per_frame",
    summary="LLaMA-VID content tokens: each frame's grid pooled to √k×√k; num_frames*k tokens",
)
class PerFramePooling(Pooling):
    """``(num_frames*k)×D`` for ``k = tokens_per_frame``; missing frames are zeros."""

    Options = PerFrameOptions

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        return per_frame_pool(x, self.num_frames, self.options.tokens_per_frame)

    def num_tokens(self, num_patches: int) -> int:
        return self.num_frames * self.options.tokens_per_frame
