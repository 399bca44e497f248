"""``spatiotemporal`` (Video-ChatGPT): per-frame means, then per-patch means."""

from __future__ import annotations

import torch

from videollm.features.pooling import POOLINGS, Pooling


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


@POOLINGS.register(
    "spatiotemporal",
    summary="Video-ChatGPT: per-frame means (padded) ++ per-patch means; num_frames + P tokens",
)
class SpatiotemporalPooling(Pooling):
    """``(num_frames + P)×D``: 356×1024 for CLIP ViT-L/14 at 224 px and 100 frames."""

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        return spatiotemporal_pool(x, self.num_frames)

    def num_tokens(self, num_patches: int) -> int:
        return self.num_frames + num_patches
