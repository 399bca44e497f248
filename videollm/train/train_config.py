"""Training settings. The dataclass fields are the recipe YAML keys and the CLI overrides."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from videollm.config_loader import check_int, check_number
from videollm.errors import ConfigError
from videollm.model.model_config import ModelConfig


@dataclass
class OptimArgs:
    """Optimizer and schedule (AdamW, cosine with linear warmup by default)."""

    lr: float = 2e-5
    weight_decay: float = 0.0
    warmup_ratio: float = 0.03  # share of steps spent warming up (must be < 1)
    scheduler: str = "cosine"
    max_grad_norm: float = 1.0

    def __post_init__(self) -> None:
        check_number(self.lr, "lr", above=0.0)
        check_number(self.weight_decay, "weight_decay", low=0.0)
        check_number(self.warmup_ratio, "warmup_ratio", low=0.0)
        if self.warmup_ratio >= 1:
            raise ConfigError(f"warmup_ratio: must be < 1, got {self.warmup_ratio!r}")
        check_number(self.max_grad_norm, "max_grad_norm", low=0.0)


@dataclass
class TrainArgs:
    """How long and how to train.

    Attributes:
        epochs: Passes over the train split.
        global_batch_size: Samples per optimizer step over all processes; must be a multiple
            of ``micro_batch_size × world size`` (the rest is gradient accumulation).
        micro_batch_size: Samples per process per forward pass.
        max_steps: If > 0, stop after this many optimizer steps (overrides ``epochs``).
        precision: ``auto`` (bf16 on CUDA, fp32 on CPU), ``bf16``, ``fp16`` or ``fp32``.
        gradient_checkpointing: Trade compute for activation memory.
        deepspeed: ``zero2``, ``zero3`` (configs shipped in the package), a JSON path, or null.
        save_steps: Save a resumable ``checkpoint-N`` every N optimizer steps.
        save_total_limit: Keep at most this many ``checkpoint-N`` folders.
        logging_steps: Log loss and lr every N steps.
        resume: ``auto`` resumes from the newest ``checkpoint-N`` in ``out``; ``never`` starts
            over; anything else is a checkpoint folder to resume from.
        seed: Seed for data order and initialisation.
        num_workers: DataLoader workers.
    """

    epochs: float = 3.0
    global_batch_size: int = 32
    micro_batch_size: int = 1
    max_steps: int = -1
    precision: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    gradient_checkpointing: bool = True
    deepspeed: str | None = None
    save_steps: int = 500
    save_total_limit: int = 3
    logging_steps: int = 10
    resume: str = "auto"
    seed: int = 42
    num_workers: int = 0

    def __post_init__(self) -> None:
        check_number(self.epochs, "epochs", above=0.0)
        for key in ("global_batch_size", "micro_batch_size", "save_steps", "logging_steps"):
            check_int(getattr(self, key), 1, key)
        check_int(self.save_total_limit, 1, "save_total_limit")
        check_int(self.num_workers, 0, "num_workers")
        check_int(self.max_steps, -1, "max_steps")


@dataclass
class TrainConfig:
    """Everything ``videollm train`` needs.

    Attributes:
        records: Folder with ``train.jsonl`` (from ``videollm convert``), or a JSONL file.
        features: Folder of ``<video_id>.safetensors`` (from ``videollm extract``).
        out: Checkpoint folder: final weights + config, and ``checkpoint-N`` folders.
    """

    records: str = ""
    features: str = ""
    out: str = ""
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimArgs = field(default_factory=OptimArgs)
    train: TrainArgs = field(default_factory=TrainArgs)


def grad_accumulation(global_batch: int, micro_batch: int, world_size: int) -> int:
    """Gradient-accumulation steps that make up ``global_batch``; raises if it does not divide."""
    per_step = micro_batch * world_size
    if global_batch % per_step:
        raise ConfigError(
            f"global_batch_size={global_batch} is not a multiple of "
            f"micro_batch_size × processes = {micro_batch} × {world_size}"
        )
    return global_batch // per_step


def optimizer_steps(
    num_samples: int, epochs: float, micro_batch: int, world_size: int, accumulation: int
) -> int:
    """The number of optimizer steps a run takes (documented in the README).

    Each process sees ``ceil(num_samples / world_size)`` samples per epoch (the distributed
    sampler pads the last batch), in ``ceil(that / micro_batch)`` micro-batches; an epoch is
    ``ceil(micro_batches / accumulation)`` optimizer steps, and a run is
    ``ceil(epochs × steps_per_epoch)``.
    """
    micro_batches = math.ceil(math.ceil(num_samples / world_size) / micro_batch)
    per_epoch = max(1, math.ceil(micro_batches / accumulation))
    return math.ceil(epochs * per_epoch)
