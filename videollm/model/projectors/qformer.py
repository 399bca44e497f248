"""``qformer``: learned queries that cross-attend to the video features (BLIP-2, Video-LLaMA).

However many feature tokens a video has (356 for Video-ChatGPT's pooling), the LLM sees
``num_queries`` embeddings, so prompts stay short. Built from ``torch.nn`` layers: each layer is
self-attention over the queries, cross-attention to the features, then an MLP (pre-LayerNorm).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from videollm.config_loader import check_int, check_number
from videollm.errors import ConfigError
from videollm.model.projector import OPTIONS_SETTING, PROJECTORS, Projector


@dataclass
class QFormerOptions:
    """Settings of the ``qformer`` projector (``model.projector_options``).

    Attributes:
        num_queries: Learned queries, hence embeddings per video.
        num_layers: Query layers (self-attention → cross-attention → MLP).
        num_heads: Attention heads; must divide ``width``.
        width: Width of the queries; 0 means the feature width.
        dropout: Dropout inside the layers.
    """

    num_queries: int = 32
    num_layers: int = 2
    num_heads: int = 8
    width: int = 0
    dropout: float = 0.0

    def __post_init__(self) -> None:
        check_int(self.num_queries, 1, "num_queries")
        check_int(self.num_layers, 1, "num_layers")
        check_int(self.num_heads, 1, "num_heads")
        check_int(self.width, 0, "width")
        check_number(self.dropout, "dropout", low=0.0, high=1.0)


@PROJECTORS.register(
    "qformer",
    summary="learned queries cross-attending to the features (BLIP-2, Video-LLaMA); "
    "num_queries tokens (default 32)",
)
class QFormerProjector(Projector):
    """Learned queries read the features through cross-attention; a Linear maps them to H."""

    Options = QFormerOptions

    def __init__(self, feature_dim: int, hidden_size: int, options: QFormerOptions) -> None:
        super().__init__()
        width = options.width or feature_dim
        if width % options.num_heads:
            raise ConfigError(
                f"{OPTIONS_SETTING}.num_heads: {options.num_heads} does not divide the query "
                f"width {width} (set {OPTIONS_SETTING}.width, or another num_heads)"
            )
        self.options = options
        self.queries = nn.Parameter(torch.randn(options.num_queries, width) * 0.02)
        self.feature_norm = nn.LayerNorm(feature_dim)
        self.feature_proj = nn.Identity() if width == feature_dim else nn.Linear(feature_dim, width)
        layer = nn.TransformerDecoderLayer(
            d_model=width,
            nhead=options.num_heads,
            dim_feedforward=4 * width,
            dropout=options.dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.layers = nn.TransformerDecoder(layer, options.num_layers, norm=nn.LayerNorm(width))
        self.out = nn.Linear(width, hidden_size)

    def num_output_tokens(self, num_input_tokens: int) -> int:
        """Always ``num_queries``, whatever the number of feature tokens."""
        return self.options.num_queries

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """B×N×D features → B×num_queries×H embeddings."""
        memory = self.feature_proj(self.feature_norm(features))
        queries = self.queries.expand(features.shape[0], -1, -1)
        return self.out(self.layers(queries, memory))
