"""``mlp2x_gelu``: Linear-GELU-Linear per feature token (LLaVA-1.5)."""

from __future__ import annotations

from torch import nn

from videollm.model.projector import PROJECTORS, NoOptions, Projector


@PROJECTORS.register(
    "mlp2x_gelu", summary="Linear-GELU-Linear per feature token (LLaVA-1.5); N tokens"
)
class Mlp2xGeluProjector(nn.Sequential, Projector):
    """A two-layer MLP; its weights are ``projector.0.*`` and ``projector.2.*``, as ever."""

    def __init__(self, feature_dim: int, hidden_size: int, options: NoOptions) -> None:
        super().__init__(
            nn.Linear(feature_dim, hidden_size), nn.GELU(), nn.Linear(hidden_size, hidden_size)
        )
