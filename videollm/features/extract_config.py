"""Settings of feature extraction: which encoder, which layer, how many frames, how to pool."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from videollm.config_loader import check_int, to_dict
from videollm.errors import ConfigError

# Fields that change how fast extraction runs but not what it produces. They are left out of
# the ``extract_config`` recorded with each feature file.
RUNTIME_FIELDS = frozenset(
    {"device", "dtype", "batch_size", "num_workers", "allow_pickle", "max_num_frames"}
)

DEFAULT_MAX_NUM_FRAMES = 1024


@dataclass
class ExtractConfig:
    """How video features are made (defaults: Video-ChatGPT's recipe).

    Attributes:
        encoder: Hugging Face id or local path of a CLIP-style vision encoder.
        layer: Index into ``hidden_states`` (``-2``: penultimate layer); the CLS token is dropped.
        num_frames: Most frames sampled per video (segment midpoints), 1 to ``max_num_frames``.
        pooling: ``spatiotemporal`` (Video-ChatGPT: ``num_frames + P`` tokens) or
            ``adaptive3d`` (PLLaVA: ``t*h*w`` tokens).
        pool_size: ``[t, h, w]`` output grid of ``adaptive3d`` pooling.
        resize_shortest: Optional shortest-edge resize at decode time (saves memory on big videos).
        batch_size: Videos whose frames go through the encoder in one forward pass.
        num_workers: Decode worker processes (0: decode in the main process).
        device: ``auto`` (CUDA if available), ``cpu``, ``cuda``, ``cuda:1`` ...
        dtype: ``auto`` (bf16/fp16 on CUDA, fp32 on CPU), ``float32``, ``float16``, ``bfloat16``.
        allow_pickle: Allow importing Video-ChatGPT ``.pkl`` features (runs pickle: trusted
            files only).
        max_num_frames: Upper bound on ``num_frames``: each frame becomes at least one LLM
            token, so a typo such as 100000 would write features no LLM context holds. Raise
            it on purpose for long-video recipes.
    """

    encoder: str = "openai/clip-vit-large-patch14"
    layer: int = -2
    num_frames: int = 100
    pooling: Literal["spatiotemporal", "adaptive3d"] = "spatiotemporal"
    pool_size: list[int] = field(default_factory=lambda: [16, 12, 12])
    resize_shortest: int | None = None
    batch_size: int = 4
    num_workers: int = 2
    device: str = "auto"
    dtype: str = "auto"
    allow_pickle: bool = False
    max_num_frames: int = DEFAULT_MAX_NUM_FRAMES

    def __post_init__(self) -> None:
        check_int(self.max_num_frames, 1, "max_num_frames")
        check_int(self.num_frames, 1, "num_frames")
        check_int(self.batch_size, 1, "batch_size")
        check_int(self.num_workers, 0, "num_workers")
        if self.resize_shortest is not None:
            check_int(self.resize_shortest, 1, "resize_shortest")
        if not self.encoder:
            raise ConfigError("encoder: required (a Hugging Face id or a local folder)")


def check_frame_bound(cfg: ExtractConfig) -> None:
    """Refuse ``num_frames`` over ``max_num_frames`` when extracting.

    Checked at extraction only: features and checkpoints made on purpose with a raised bound
    must still load (the bound is not recorded with them).

    Raises:
        ConfigError: ``num_frames`` is over the bound.
    """
    if cfg.num_frames > cfg.max_num_frames:
        raise ConfigError(
            f"num_frames: {cfg.num_frames} is over max_num_frames={cfg.max_num_frames} "
            "(set max_num_frames=N to allow more)"
        )


def recorded_config(cfg: ExtractConfig) -> dict[str, Any]:
    """The part of ``cfg`` that determines the features (runtime-only fields dropped)."""
    return {k: v for k, v in to_dict(cfg).items() if k not in RUNTIME_FIELDS}
