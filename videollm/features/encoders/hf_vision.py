"""``hf_vision``: any other Hugging Face vision tower that returns ``hidden_states``."""

from __future__ import annotations

import torch
from transformers import AutoModel

from videollm.features.encoder_family import ENCODER_FAMILIES, EncoderFamily


@ENCODER_FAMILIES.register(
    "hf_vision",
    summary="any other HF vision tower (ViT, DINOv2 …): leading CLS/register tokens dropped",
)
class HfVisionFamily(EncoderFamily):
    """The fallback: ``AutoModel`` (its ``vision_model`` if it has one). The tokens before the
    ``(image_size / patch_size)²`` patches (CLS, DINOv2's registers …) are dropped, however
    many there are."""

    prefix_tokens = None

    def load(self, source: str, dtype: torch.dtype) -> torch.nn.Module:
        model = AutoModel.from_pretrained(source, dtype=dtype)
        return getattr(model, "vision_model", model)
