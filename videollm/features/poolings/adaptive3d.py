"""``adaptive3d`` (PLLaVA): the ``T×√P×√P`` token grid average-pooled to ``t×h×w``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from videollm.errors import ConfigError
from videollm.features.pooling import POOLINGS, Pooling


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


@dataclass
class Adaptive3dOptions:
    """Settings of ``adaptive3d``.

    Attributes:
        pool_size: ``[t, h, w]`` output grid (PLLaVA-7B: ``[16, 12, 12]``).
    """

    pool_size: list[int] = field(default_factory=lambda: [16, 12, 12])

    def __post_init__(self) -> None:
        size = self.pool_size
        if len(size) != 3 or any(isinstance(n, bool) or n < 1 for n in size):
            raise ConfigError(f"pool_size: expected [t, h, w] of integers >= 1, got {size}")


@POOLINGS.register(
    "adaptive3d", summary="PLLaVA: T×√P×√P grid average-pooled to pool_size [t, h, w]; t*h*w tokens"
)
class Adaptive3dPooling(Pooling):
    """``(t*h*w)×D`` for ``pool_size = [t, h, w]``; short videos are stretched to ``t``."""

    Options = Adaptive3dOptions

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        return adaptive3d_pool(x, self.options.pool_size)

    def num_tokens(self, num_patches: int) -> int:
        return math.prod(self.options.pool_size)
