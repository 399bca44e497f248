"""``siglip``: SigLIP vision towers (``google/siglip-so400m-patch14-384``): no CLS token."""

from __future__ import annotations

import torch
from transformers import SiglipVisionModel

from videollm.features.encoder_family import ENCODER_FAMILIES, EncoderFamily


@ENCODER_FAMILIES.register("siglip", summary="SigLIP (model_type siglip): every token a patch")
class SiglipFamily(EncoderFamily):
    """SigLIP: hidden states are the patches only (its pooled output comes from a separate
    attention head, not from a CLS token), so nothing is dropped."""

    model_types = frozenset({"siglip", "siglip_vision_model"})
    prefix_tokens = 0

    def load(self, source: str, dtype: torch.dtype) -> torch.nn.Module:
        # Like CLIPVisionModel, reads the vision half of a full image+text checkpoint.
        return SiglipVisionModel.from_pretrained(source, dtype=dtype)
