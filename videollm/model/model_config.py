"""Model settings and the JSON config a checkpoint carries."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from videollm import __version__
from videollm.config_loader import from_dict, to_dict
from videollm.errors import CheckpointError
from videollm.features.extract_config import ExtractConfig
from videollm.model.projector import projector_options

CONFIG_FILE = "videollm_config.json"
WEIGHTS_FILE = "model.safetensors"


@dataclass
class LoraArgs:
    """LoRA settings (used when ``train_mode: lora``)."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"]
    )


@dataclass
class ModelConfig:
    """What the video LLM is made of.

    Attributes:
        llm: Hugging Face id or local path of the base causal LM.
        projector: A name in :data:`videollm.model.projector.PROJECTORS`: ``linear``
            (Video-ChatGPT), ``mlp2x_gelu`` (LLaVA-1.5), ``qformer`` (BLIP-2, Video-LLaMA) …
        projector_options: The projector's settings (its ``Options`` dataclass), e.g.
            ``{"num_queries": 32}`` for ``qformer``; empty for ``linear`` and ``mlp2x_gelu``.
        train_mode: ``projector`` (default), ``lora`` (projector + LoRA) or ``full``.
        use_vid_start_end: Wrap video tokens in learned start/end embeddings.
        template: ``vicuna_v1`` (Video-ChatGPT's USER/ASSISTANT) or ``chat_template``
            (the tokenizer's own).
        max_length: Longest sequence in tokens, video tokens included.
        attn_implementation: ``auto`` picks ``flash_attention_2`` when flash-attn is installed
            and CUDA is present, else ``sdpa``.
        lora: LoRA settings.
    """

    llm: str = ""
    projector: str = "linear"
    projector_options: dict[str, Any] = field(default_factory=dict)
    train_mode: Literal["projector", "lora", "full"] = "projector"
    use_vid_start_end: bool = False
    template: Literal["vicuna_v1", "chat_template"] = "vicuna_v1"
    max_length: int = 2048
    attn_implementation: str = "auto"
    lora: LoraArgs = field(default_factory=LoraArgs)

    def __post_init__(self) -> None:
        # The registry is the one list of projectors; each checks its own options.
        projector_options(self.projector, self.projector_options)


@dataclass
class CheckpointConfig:
    """The JSON next to a checkpoint's weights: enough to rebuild the whole model.

    Attributes:
        model: The model settings (base LLM, projector, template …).
        feature_dim: Width of a video feature token.
        num_video_tokens: Feature tokens per video.
        extract: How features were made (encoder, layer, frames, pooling), so ``chat`` can
            extract the same way from a raw video.
        version: The videollm version that wrote it.
    """

    model: ModelConfig
    feature_dim: int
    num_video_tokens: int
    extract: dict[str, Any] = field(default_factory=dict)
    version: str = __version__

    def extract_config(self) -> ExtractConfig:
        """The :class:`ExtractConfig` that makes features the way this checkpoint's were."""
        return from_dict(ExtractConfig, dict(self.extract))

    def save(self, directory: str | Path) -> None:
        """Write ``videollm_config.json`` into ``directory``."""
        path = Path(directory) / CONFIG_FILE
        path.write_text(json.dumps(to_dict(self), indent=2) + "\n")

    @classmethod
    def load(cls, directory: str | Path) -> CheckpointConfig:
        """Read ``videollm_config.json`` from ``directory``."""
        path = Path(directory) / CONFIG_FILE
        if not path.is_file():
            raise CheckpointError(
                f"{directory} is not a videollm checkpoint: {CONFIG_FILE} missing"
            )
        try:
            config = from_dict(cls, json.loads(path.read_text()))
        except (ValueError, TypeError) as err:
            raise CheckpointError(f"{path}: invalid checkpoint config: {err}") from err
        # ``./`` paths point inside the checkpoint (base models bundled by ``videollm package``).
        config.model.llm = _inside(directory, config.model.llm)
        _check_base_model(path, "model.llm", config.model.llm)
        if isinstance(config.extract.get("encoder"), str):
            config.extract["encoder"] = _inside(directory, config.extract["encoder"])
            _check_base_model(path, "extract.encoder", config.extract["encoder"])
        return config


def _check_base_model(config_file: Path, key: str, ref: str) -> None:
    """A base model stored as a local path must still be there (a Hub id is checked on load)."""
    if Path(ref).is_absolute() and not Path(ref).exists():
        raise CheckpointError(
            f"{config_file}: {key} {ref} no longer exists; restore it, or point {key} "
            "in this file at the base model's new folder or Hugging Face id"
        )


def _inside(directory: str | Path, ref: str) -> str:
    return str(Path(directory) / ref[2:]) if ref.startswith("./") else ref
