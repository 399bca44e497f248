"""``linear``: one Linear layer per feature token (Video-ChatGPT)."""

from __future__ import annotations

from torch import nn

from videollm.model.projector import PROJECTORS, NoOptions, Projector


@PROJECTORS.register("linear", summary="one Linear per feature token (Video-ChatGPT); N tokens")
class LinearProjector(nn.Linear, Projector):
    """D → H per token. Its weights are ``projector.weight`` / ``projector.bias``, as ever."""

    def __init__(self, feature_dim: int, hidden_size: int, options: NoOptions) -> None:
        super().__init__(feature_dim, hidden_size)
