"""Settings of feature extraction: which encoder, which layer, how many frames, how to pool."""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from videollm.config_loader import check_int, from_dict, to_dict
from videollm.errors import ConfigError
from videollm.features.pooling import POOLINGS, pooling_options
from videollm.video.decode import DECODERS

logger = logging.getLogger(__name__)

# Fields that change how fast extraction runs but not what it produces. They are left out of
# the ``extract_config`` recorded with each feature file.
RUNTIME_FIELDS = frozenset(
    {"device", "dtype", "decoder", "batch_size", "num_workers", "allow_pickle", "max_num_frames"}
)
# Deprecated aliases, folded into other fields on load and never recorded.
ALIAS_FIELDS = frozenset({"pool_size"})

DEFAULT_MAX_NUM_FRAMES = 1024


@dataclass
class ExtractConfig:
    """How video features are made (defaults: Video-ChatGPT's recipe).

    Attributes:
        encoder: Hugging Face id or local path of a vision encoder (CLIP, SigLIP or any
            tower that returns hidden states; see ``ENCODER_FAMILIES``).
        layer: Index into ``hidden_states`` (``-2``: penultimate layer); non-patch tokens
            (CLS, registers) are dropped as the encoder's family says.
        num_frames: Most frames sampled per video (segment midpoints), 1 to ``max_num_frames``.
        pooling: A name in ``POOLINGS``: ``spatiotemporal`` (Video-ChatGPT: ``num_frames + P``
            tokens), ``adaptive3d`` (PLLaVA: ``t*h*w`` tokens), ``per_frame`` (LLaMA-VID
            content tokens: ``num_frames*k``) or a plugin's.
        pooling_options: The pooling's settings (its ``Options`` dataclass), e.g.
            ``{pool_size: [8, 12, 12]}`` for ``adaptive3d``; stored with every default filled
            in, so equal settings compare equal however they were written.
        pool_size: Deprecated alias of ``pooling_options.pool_size`` (``adaptive3d``), kept so
            old recipes and recorded configs load; always ``None`` after construction.
        resize_shortest: Optional shortest-edge resize at decode time (saves memory on big videos).
        batch_size: Videos whose frames go through the encoder in one forward pass.
        num_workers: Decode worker processes (0: decode in the main process); threads when
            torchcodec decodes on the GPU (at least one).
        device: ``auto`` (CUDA if available), ``cpu``, ``cuda``, ``cuda:1`` ...
        dtype: ``auto`` (bf16/fp16 on CUDA; on a CPU bf16 only with native bf16 matrix units,
            AVX512-BF16 or AMX, else fp32), ``float32``, ``float16``, ``bfloat16``. Features
            are stored fp16 either way; each file records the dtype its encoder ran in, and a
            re-run into the same folder that would encode in another dtype is refused.
        decoder: ``auto`` (torchcodec where it loads, then decord, then PyAV, each for what
            the one before cannot read), ``torchcodec``, ``decord`` or ``pyav``; each samples
            the same frames. With ``device`` on CUDA, torchcodec decodes on that GPU.
        allow_pickle: Allow importing Video-ChatGPT ``.pkl`` features (runs pickle: trusted
            files only).
        max_num_frames: Upper bound on ``num_frames``: each frame becomes at least one LLM
            token, so a typo such as 100000 would write features no LLM context holds. Raise
            it on purpose for long-video recipes.
    """

    encoder: str = "openai/clip-vit-large-patch14"
    layer: int = -2
    num_frames: int = 100
    pooling: str = "spatiotemporal"
    pooling_options: dict[str, Any] = field(default_factory=dict)
    pool_size: list[int] | None = None
    resize_shortest: int | None = None
    batch_size: int = 4
    num_workers: int = 2
    device: str = "auto"
    dtype: str = "auto"
    decoder: str = "auto"
    allow_pickle: bool = False
    max_num_frames: int = DEFAULT_MAX_NUM_FRAMES

    def __post_init__(self) -> None:
        check_int(self.max_num_frames, 1, "max_num_frames")
        check_int(self.num_frames, 1, "num_frames")
        check_int(self.batch_size, 1, "batch_size")
        check_int(self.num_workers, 0, "num_workers")
        if self.resize_shortest is not None:
            check_int(self.resize_shortest, 1, "resize_shortest")
        if self.decoder not in DECODERS:
            raise ConfigError(f"decoder: {self.decoder!r} is not one of {', '.join(DECODERS)}")
        if not self.encoder:
            raise ConfigError("encoder: required (a Hugging Face id or a local folder)")
        if self.pool_size is not None:
            self._fold_pool_size()
        # Filled in with the defaults: {} and {pool_size: [16, 12, 12]} are the same features.
        self.pooling_options = to_dict(pooling_options(self.pooling, self.pooling_options))

    def _fold_pool_size(self) -> None:
        """Move the deprecated ``pool_size`` into ``pooling_options`` where the pooling has it."""
        size, self.pool_size = self.pool_size, None
        takes = {f.name for f in fields(POOLINGS.get(self.pooling).Options)}
        if "pool_size" not in takes:
            # Configs recorded before pooling_options hold adaptive3d's unused default for
            # every pooling; it never meant anything there.
            return
        given = self.pooling_options.get("pool_size")
        if given is not None and list(given) != list(size):
            raise ConfigError(
                f"pool_size: {size} contradicts pooling_options.pool_size={given}; "
                "pool_size is a deprecated alias, give pooling_options.pool_size only"
            )
        _warn_pool_size()
        self.pooling_options = {**self.pooling_options, "pool_size": size}


@functools.cache  # once per process: every old feature file would repeat it
def _warn_pool_size() -> None:
    logger.warning(
        "extract.pool_size is deprecated; use extract.pooling_options.pool_size "
        "(pooling_options='{pool_size: [8, 12, 12]}')"
    )


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
    """The part of ``cfg`` that determines the features (runtime-only fields and aliases
    dropped)."""
    skip = RUNTIME_FIELDS | ALIAS_FIELDS
    return {k: v for k, v in to_dict(cfg).items() if k not in skip}


def normalize_recorded(recorded: Mapping[str, Any]) -> dict[str, Any]:
    """A recorded ``extract_config`` in today's form, to compare with :func:`recorded_config`.

    Configs recorded by older versions spell the same settings differently (``pool_size``
    beside the pooling, ``pooling_options`` missing); loading them through
    :class:`ExtractConfig` folds the aliases and fills in the defaults. One that no longer
    loads (a plugin pooling that is not installed) is returned as is, so it compares unequal.
    """
    try:
        return recorded_config(from_dict(ExtractConfig, dict(recorded)))
    except ConfigError as err:
        logger.debug("recorded extract config does not load (%s); comparing it as is", err)
        return dict(recorded)
