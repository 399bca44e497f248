"""Pool per-frame patch tokens (``T×P×D``) into a fixed number of video tokens.

Each recipe is a :class:`Pooling` in its own module of :mod:`videollm.features.poolings`
that registers itself in :data:`POOLINGS` (``spatiotemporal``, ``adaptive3d``, ``per_frame``
…). ``ExtractConfig.pooling`` names one; its settings are its ``Options`` dataclass, filled from
``ExtractConfig.pooling_options``. Adding a pooling is one new module there (or in a plugin
named in ``VIDEOLLM_PLUGINS``); the CLI, config validation and pipelines read the registry.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from videollm.registry import Registry

if TYPE_CHECKING:  # torch only for hints: the CLI reads POOLINGS without importing torch
    import torch

    # extract_config imports this module to validate its pooling
    from videollm.features.extract_config import ExtractConfig

#: The setting that holds a pooling's options, named in errors.
OPTIONS_SETTING = "extract.pooling_options"


@dataclass
class NoOptions:
    """A pooling without settings: ``extract.pooling_options`` must stay empty."""


class Pooling(ABC):
    """Base of every pooling: ``T×P×D`` patch tokens of one video in, ``N×D`` tokens out.

    ``N`` must depend only on the settings and the encoder's patch count, never on the
    video, so every video of a dataset has the same number of tokens.

    Args:
        options: An instance of :attr:`Options`.
        num_frames: Most frames per video (``ExtractConfig.num_frames``); ``T <= num_frames``.
    """

    #: The dataclass ``extract.pooling_options`` is validated against.
    Options: ClassVar[type] = NoOptions

    def __init__(self, options: Any, num_frames: int) -> None:
        self.options = options
        self.num_frames = num_frames

    @abstractmethod
    def pool(self, x: torch.Tensor) -> torch.Tensor:
        """Pool ``T×P×D`` patch tokens into ``N×D``, in ``x``'s dtype."""

    @abstractmethod
    def num_tokens(self, num_patches: int) -> int:
        """``N``: tokens per video for an encoder with ``num_patches`` patches per frame."""


POOLINGS: Registry[type[Pooling]] = Registry(
    "pooling", "extract.pooling", package="videollm.features.poolings"
)


def pooling_options(name: str, options: Mapping[str, Any]) -> Any:
    """Validate ``options`` for pooling ``name``; returns its ``Options`` dataclass.

    Raises:
        ConfigError: ``name`` is not registered, or an option is unknown or invalid (the
            message names ``extract.pooling_options.<key>`` and the pooling).
    """
    return POOLINGS.options(name, options, OPTIONS_SETTING)


def build_pooling(cfg: ExtractConfig) -> Pooling:
    """The pooling ``cfg.pooling`` names, with ``cfg.pooling_options`` and ``cfg.num_frames``.

    Raises:
        ConfigError: Unknown pooling or invalid options.
    """
    opts = pooling_options(cfg.pooling, cfg.pooling_options)
    return POOLINGS.get(cfg.pooling)(opts, cfg.num_frames)


def pool(x: torch.Tensor, cfg: ExtractConfig) -> torch.Tensor:
    """Pool ``T×P×D`` tokens as ``cfg.pooling`` says."""
    return build_pooling(cfg).pool(x)


def num_tokens(cfg: ExtractConfig, num_patches: int) -> int:
    """Tokens per video that ``pool`` produces for an encoder with ``num_patches`` patches."""
    return build_pooling(cfg).num_tokens(num_patches)
