"""Encoder families: how to load a vision tower and which of its tokens are patches.

A family is a module of :mod:`videollm.features.encoders` that registers an
:class:`EncoderFamily` in :data:`ENCODER_FAMILIES`. The family of an encoder is picked from its
Hugging Face config's ``model_type``; a tower no family claims is loaded by the fallback
``hf_vision``, which works for any model that returns ``hidden_states``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from transformers import AutoConfig, PretrainedConfig

from videollm.errors import ConfigError
from videollm.hub import load_pretrained
from videollm.registry import Registry

WHAT = "encoder"  # the setting named in load errors
#: The family of towers no other family claims.
FALLBACK = "hf_vision"


class EncoderFamily(ABC):
    """How one kind of vision tower is loaded and what its hidden states hold."""

    #: ``model_type`` values of the configs this family loads (top-level or vision-only).
    model_types: ClassVar[frozenset[str]] = frozenset()
    #: Leading non-patch tokens of every hidden state (CLS: 1; none: 0); ``None``: count
    #: them from the hidden state's length (whatever precedes the patches).
    prefix_tokens: ClassVar[int | None] = None

    @abstractmethod
    def load(self, source: str, dtype: torch.dtype) -> torch.nn.Module:
        """The vision tower of the checkpoint at ``source``; its forward takes
        ``pixel_values`` and returns an output with ``hidden_states``."""


ENCODER_FAMILIES: Registry[type[EncoderFamily]] = Registry(
    "encoder family", "extract.encoder", package="videollm.features.encoders"
)


@dataclass
class VisionTower:
    """A loaded vision tower and what the encoder needs to know about it.

    Attributes:
        model: The tower, in eval mode.
        family: The name of its family.
        prefix_tokens: As :attr:`EncoderFamily.prefix_tokens`.
        num_patches: Patch tokens per frame, ``(image_size / patch_size)²``.
        hidden_size: Width of a token.
    """

    model: torch.nn.Module
    family: str
    prefix_tokens: int | None
    num_patches: int
    hidden_size: int


def family_of(config: PretrainedConfig) -> str:
    """The name of the family that loads ``config``'s model (``hf_vision`` if none claims it)."""
    vision = getattr(config, "vision_config", None)
    types = {config.model_type, getattr(vision, "model_type", None)}
    for name in ENCODER_FAMILIES:
        if types & ENCODER_FAMILIES.get(name).model_types:
            return name
    return FALLBACK


def _side(value: Any) -> int:
    """One side of a square size given as an int or ``[h, w]``."""
    if isinstance(value, int):
        return value
    h, w = value
    if h != w:
        raise ConfigError(f"{WHAT}: only square images and patches are supported, got {value}")
    return int(h)


def load_tower(source: str, name_or_path: str, dtype: torch.dtype) -> VisionTower:
    """Load the vision tower of ``source`` with its family's loader.

    ``source`` is what is loaded; ``name_or_path``, what the user gave, is named in errors.

    Raises:
        ConfigError: ``name_or_path`` cannot be loaded, or is not an image encoder (a
            language model given as ``encoder``, say).
    """
    config = load_pretrained(lambda: AutoConfig.from_pretrained(source), name_or_path, WHAT)
    vision = getattr(config, "vision_config", config)
    if not hasattr(vision, "image_size") or not hasattr(vision, "patch_size"):
        raise ConfigError(
            f"{WHAT}: {name_or_path} is a {config.model_type!r} model, not a vision encoder "
            "(expected a vision tower with image_size and patch_size, such as CLIP or SigLIP)"
        )
    name = family_of(config)
    family = ENCODER_FAMILIES.get(name)()
    model = load_pretrained(lambda: family.load(source, dtype), name_or_path, WHAT)
    return VisionTower(
        model=model,
        family=name,
        prefix_tokens=family.prefix_tokens,
        num_patches=(_side(vision.image_size) // _side(vision.patch_size)) ** 2,
        hidden_size=int(vision.hidden_size),
    )
