"""``clip``: OpenAI CLIP vision towers (``openai/clip-vit-large-patch14``): one CLS token."""

from __future__ import annotations

import torch
from transformers import CLIPVisionModel

from videollm.features.encoder_family import ENCODER_FAMILIES, EncoderFamily


@ENCODER_FAMILIES.register("clip", summary="CLIP (model_type clip): CLS token dropped")
class ClipFamily(EncoderFamily):
    """CLIP: hidden states are CLS followed by the patches."""

    model_types = frozenset({"clip", "clip_vision_model"})
    prefix_tokens = 1

    def load(self, source: str, dtype: torch.dtype) -> torch.nn.Module:
        # Loads the vision half of a full CLIP checkpoint without building the text tower.
        return CLIPVisionModel.from_pretrained(source, dtype=dtype)
