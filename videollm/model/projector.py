"""Projectors map video features into the LLM's embedding space."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

ProjectorType = Literal["linear", "mlp2x_gelu"]


def build_projector(kind: ProjectorType, feature_dim: int, hidden_size: int) -> nn.Module:
    """Build a projector.

    Args:
        kind: ``linear`` (Video-ChatGPT) or ``mlp2x_gelu`` (LLaVA-1.5: Linear-GELU-Linear).
        feature_dim: Width of a video feature token (1024 for CLIP ViT-L/14).
        hidden_size: The LLM's embedding width.
    """
    if kind == "linear":
        return nn.Linear(feature_dim, hidden_size)
    if kind == "mlp2x_gelu":
        return nn.Sequential(
            nn.Linear(feature_dim, hidden_size), nn.GELU(), nn.Linear(hidden_size, hidden_size)
        )
    raise ValueError(f"unknown projector {kind!r}; choose 'linear' or 'mlp2x_gelu'")


class VideoBoundary(nn.Module):
    """Learned ``<vid_start>`` / ``<vid_end>`` embeddings that wrap the video tokens.

    They live here rather than in the vocabulary, so the LLM's embedding matrix is never resized
    and a projector-only checkpoint stays small.
    """

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.start = nn.Parameter(torch.randn(hidden_size) * 0.02)
        self.end = nn.Parameter(torch.randn(hidden_size) * 0.02)

    def wrap(self, video_embeds: torch.Tensor) -> torch.Tensor:
        """Return ``[start, *video_embeds, end]`` for one video (N×H → (N+2)×H)."""
        dtype = video_embeds.dtype
        return torch.cat([self.start[None].to(dtype), video_embeds, self.end[None].to(dtype)])
