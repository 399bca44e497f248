"""Projectors map video features into the LLM's embedding space.

A projector turns one video's N×D feature tokens into M×H LLM embeddings (``linear`` and
``mlp2x_gelu`` keep M = N; ``qformer`` gives M = its number of queries). Each one is a module of
:mod:`videollm.model.projectors` that registers itself in :data:`PROJECTORS`; its settings are
its ``Options`` dataclass, filled from ``model.projector_options``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from videollm.registry import Registry

#: The setting that holds a projector's options, named in errors.
OPTIONS_SETTING = "model.projector_options"


@dataclass
class NoOptions:
    """A projector without settings: ``model.projector_options`` must stay empty."""


class Projector(nn.Module):
    """Base of every projector: B×N×D features in, B×M×H embeddings out.

    Subclasses take ``(feature_dim, hidden_size, options)`` and set :attr:`Options` when they
    have settings.
    """

    #: The dataclass ``model.projector_options`` is validated against.
    Options: ClassVar[type] = NoOptions

    def num_output_tokens(self, num_input_tokens: int) -> int:
        """How many embeddings one video of ``num_input_tokens`` feature tokens becomes."""
        return num_input_tokens


PROJECTORS: Registry[type[Projector]] = Registry(
    "projector", "model.projector", package="videollm.model.projectors"
)


def projector_options(name: str, options: Mapping[str, Any]) -> Any:
    """Validate ``options`` for projector ``name``; returns its ``Options`` dataclass.

    Raises:
        ConfigError: ``name`` is not registered, or an option is unknown or invalid (the
            message names ``model.projector_options.<key>``).
    """
    return PROJECTORS.options(name, options, OPTIONS_SETTING)


def build_projector(
    name: str, feature_dim: int, hidden_size: int, options: Mapping[str, Any] | None = None
) -> Projector:
    """Build the projector registered as ``name``.

    Args:
        name: A name in :data:`PROJECTORS` (``linear``, ``mlp2x_gelu``, ``qformer`` …).
        feature_dim: Width of a video feature token (1024 for CLIP ViT-L/14).
        hidden_size: The LLM's embedding width.
        options: ``model.projector_options``.

    Raises:
        ConfigError: Unknown projector or invalid options.
    """
    opts = projector_options(name, options or {})
    return PROJECTORS.get(name)(feature_dim, hidden_size, opts)


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
