"""``videollm train``: fine-tune a video LLM on chat records and extracted features.

Reads top to bottom: load records → inspect features → build the model → Trainer → save.
The same function runs single-process and under ``torchrun --nproc_per_node=N`` (gloo on CPU,
nccl on GPUs); the Trainer reads the distributed environment torchrun sets.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch
from transformers import TrainerCallback, TrainingArguments
from transformers.trainer import TRAINER_STATE_NAME
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from videollm.config_loader import load_config, to_dict
from videollm.data.dataset import ChatDataset, VideoChatCollator, check_features_exist
from videollm.data.records import read_records
from videollm.errors import ConfigError, FeatureFormatError
from videollm.features.manifest import verify_features
from videollm.features.store import feature_path, load_features
from videollm.hub import resolve_model_ref
from videollm.lineage import META_FILE
from videollm.model.model_config import CONFIG_FILE, WEIGHTS_FILE, CheckpointConfig
from videollm.model.video_llm import VideoLLM, resolve_device
from videollm.ranks import is_main_process
from videollm.train.hf_trainer import VideoLLMTrainer
from videollm.train.interrupt import StopOnInterrupt
from videollm.train.train_config import TrainConfig, grad_accumulation, optimizer_steps

logger = logging.getLogger(__name__)

SUMMARY_FILE = "train_summary.json"


@dataclass
class TrainResult:
    """What a finished run reports (also written to ``train_summary.json``)."""

    out: str
    global_step: int
    expected_steps: int
    train_loss: float
    first_loss: float | None
    last_loss: float | None
    samples_per_second: float
    tokens_per_second: float | None
    runtime_s: float
    resumed_from: str | None


def records_file(records: str | Path, split: str = "train") -> Path:
    """A records folder means its ``<split>.jsonl``; a file is used as is."""
    path = Path(records)
    return path / f"{split}.jsonl" if path.is_dir() else path


def inspect_features(records: list[dict], features_dir: str | Path) -> tuple[int, int, dict]:
    """Token count, width and extraction config of the features the records use."""
    check_features_exist(records, features_dir)
    tensor, meta = load_features(feature_path(features_dir, records[0]["video"]))
    extract = json.loads(meta.get("extract_config", "{}"))
    return int(tensor.shape[0]), int(tensor.shape[1]), extract


def _step_of(meta: Path) -> str | None:
    """The step that wrote a ``_meta.json`` (None when there is none)."""
    if not meta.is_file():
        return None
    try:
        data = json.loads(meta.read_text())
    except ValueError as err:
        raise ConfigError(f"{meta} is not valid JSON ({err}); is this a videollm output?") from err
    return str(data.get("step")) if isinstance(data, dict) else "?"


def check_checkpoint_folder(out: str | Path) -> None:
    """Refuse to train into a folder that holds something other than a checkpoint.

    Training writes ``_meta.json``, weights and ``checkpoint-N`` folders; pointed at a features
    or records folder by mistake it would overwrite that folder's lineage.

    Raises:
        ConfigError: ``out`` is a non-empty folder with none of a checkpoint's files.
    """
    folder = Path(out)
    if not folder.is_dir():
        return
    names = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
    if not names:
        return
    step = _step_of(folder / META_FILE)
    if step == "train":
        return
    checkpoint_files = (CONFIG_FILE, SUMMARY_FILE, PREFIX_CHECKPOINT_DIR)
    if step is None and any(n.startswith(checkpoint_files) for n in names):
        return  # a run killed before it wrote _meta.json: resume it
    what = f"the output of `videollm {step}`" if step else f"other files ({names[0]!r} …)"
    raise ConfigError(
        f"out: {out} holds {what}, not a videollm checkpoint; train into a new or empty folder"
    )


def deepspeed_config(name: str | None) -> str | None:
    """Resolve ``zero2``/``zero3`` to the shipped JSON, or pass a path through."""
    if name is None:
        return None
    if name in ("zero2", "zero3"):
        return str(resources.files("videollm.train") / "deepspeed" / f"{name}.json")
    if not Path(name).is_file():
        raise ConfigError(f"train.deepspeed: {name} is neither zero2, zero3 nor a JSON file")
    return name


def _complete(checkpoint: Path) -> bool:
    """Whether the Trainer finished saving ``checkpoint`` (its state file is written last)."""
    try:
        json.loads((checkpoint / TRAINER_STATE_NAME).read_text())
    except (OSError, ValueError):
        return False
    return (checkpoint / WEIGHTS_FILE).is_file() and (checkpoint / CONFIG_FILE).is_file()


def last_complete_checkpoint(out: str | Path) -> str | None:
    """The newest fully saved ``checkpoint-N`` in ``out``; half-saved ones are set aside.

    A process killed while saving (``kill -9``, OOM, a lost node) leaves a ``checkpoint-N``
    without its state or weights, and resuming from it would fail. Rank 0 renames it to
    ``.incomplete-checkpoint-N`` (kept for inspection, ignored by the Trainer); every rank
    picks the same newest complete one.
    """
    folder = Path(out)
    if not folder.is_dir():
        return None
    found = (re.fullmatch(rf"{PREFIX_CHECKPOINT_DIR}-(\d+)", p.name) for p in folder.iterdir())
    steps = {folder / m.group(0): int(m.group(1)) for m in found if m}
    for checkpoint in sorted(steps, key=steps.__getitem__, reverse=True):
        if _complete(checkpoint):
            return str(checkpoint)
        if is_main_process():
            aside = checkpoint.with_name(f".incomplete-{checkpoint.name}")
            shutil.rmtree(aside, ignore_errors=True)
            checkpoint.rename(aside)
            logger.warning("%s was not fully saved (killed?); set aside as %s", checkpoint, aside)
    return None


def resolve_resume(cfg: TrainConfig) -> str | None:
    """Which checkpoint to resume from, following ``train.resume``."""
    mode = cfg.train.resume
    if mode == "never":
        return None
    if mode == "auto":
        return last_complete_checkpoint(cfg.out)
    if not Path(mode).is_dir():
        raise ConfigError(f"train.resume: checkpoint folder {mode} does not exist")
    return mode


def training_arguments(cfg: TrainConfig, world_size: int) -> TrainingArguments:
    """Map our recipe onto Hugging Face ``TrainingArguments``."""
    t, o = cfg.train, cfg.optim
    cuda = torch.cuda.is_available()
    precision = t.precision if t.precision != "auto" else ("bf16" if cuda else "fp32")
    return TrainingArguments(
        output_dir=cfg.out,
        num_train_epochs=t.epochs,
        max_steps=t.max_steps,
        per_device_train_batch_size=t.micro_batch_size,
        gradient_accumulation_steps=grad_accumulation(
            t.global_batch_size, t.micro_batch_size, world_size
        ),
        learning_rate=o.lr,
        weight_decay=o.weight_decay,
        warmup_steps=o.warmup_ratio,  # transformers 5: a value < 1 is a ratio of all steps
        lr_scheduler_type=o.scheduler,
        max_grad_norm=o.max_grad_norm,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        activation_checkpointing=t.gradient_checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False},
        deepspeed=deepspeed_config(t.deepspeed),
        save_strategy="steps",
        save_steps=t.save_steps,
        save_total_limit=t.save_total_limit,
        logging_steps=t.logging_steps,
        logging_first_step=True,
        seed=t.seed,
        data_seed=t.seed,
        dataloader_num_workers=t.num_workers,
        dataloader_pin_memory=cuda,
        remove_unused_columns=False,
        report_to=[],
        # On CPU, accelerate runs torchrun's processes as MULTI_CPU over gloo; on GPUs, nccl.
        use_cpu=not cuda,
        # Every trained parameter gets a gradient each step; the DDP scan would only cost time.
        ddp_find_unused_parameters=False,
        include_num_input_tokens_seen=True,
    )


def train(cfg: TrainConfig, callbacks: list[TrainerCallback] | None = None) -> TrainResult:
    """Train a video LLM and write a checkpoint to ``cfg.out``.

    Args:
        cfg: The resolved recipe (see :class:`TrainConfig`).
        callbacks: Extra Trainer callbacks (e.g. MLflow logging).

    Returns:
        Steps, losses and throughput of the run.

    Raises:
        ConfigError: On an invalid recipe.
        RecordFormatError: On malformed records.
        FeatureFormatError: When features are missing or inconsistent.
    """
    if not cfg.model.llm:
        raise ConfigError("model.llm is required (--llm HF_ID_OR_PATH)")
    if not cfg.out:
        raise ConfigError("out is required (--out CKPT_DIR)")
    check_checkpoint_folder(cfg.out)
    # Stored in the checkpoint: a relative folder would only load from this directory.
    model_cfg = dataclasses.replace(cfg.model, llm=resolve_model_ref(cfg.model.llm, "model.llm"))
    cfg = dataclasses.replace(cfg, model=model_cfg)
    records = read_records(records_file(cfg.records))
    if not records:
        raise FeatureFormatError(f"no training records in {records_file(cfg.records)}")
    num_tokens, dim, extract = inspect_features(records, cfg.features)
    if is_main_process():  # once, not once per rank: another rank's failure ends torchrun
        verify_features(cfg.features, (r["video"] for r in records), (num_tokens, dim))
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    args = training_arguments(cfg, world_size)  # validates the batch arithmetic early
    if cfg.train.deepspeed:
        # ZeRO-3 partitions weights while from_pretrained loads them, so DeepSpeed's own
        # process group must exist first (accelerate skips this on CPU).
        import deepspeed

        deepspeed.init_distributed(dist_backend="nccl" if torch.cuda.is_available() else "gloo")

    ckpt_cfg = CheckpointConfig(
        model=cfg.model, feature_dim=dim, num_video_tokens=num_tokens, extract=extract
    )
    # Frozen weights may sit in bf16 on GPUs; fully trained ones stay fp32 for the optimizer.
    dtype = torch.float32 if cfg.model.train_mode == "full" else None
    device = resolve_device("cuda" if torch.cuda.is_available() else "cpu")
    model = VideoLLM.build(ckpt_cfg, device=str(device), dtype=dtype)
    dataset = ChatDataset(
        records,
        cfg.features,
        model.tokenizer,
        cfg.model.template,
        cfg.model.max_length,
        num_tokens,
        dim,
        video_positions=model.num_video_positions(num_tokens),
    )
    expected = optimizer_steps(
        len(dataset),
        cfg.train.epochs,
        cfg.train.micro_batch_size,
        world_size,
        args.gradient_accumulation_steps,
    )
    if cfg.train.max_steps > 0:
        expected = cfg.train.max_steps
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    logger.info(
        "training %s: %d records, %d trainable params, %d optimizer steps on %d process(es)",
        cfg.model.train_mode,
        len(dataset),
        trainable,
        expected,
        world_size,
    )
    interrupt = StopOnInterrupt()
    trainer = VideoLLMTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        data_collator=VideoChatCollator(model.tokenizer.pad_token_id),
        callbacks=[*(callbacks or []), interrupt],
    )
    resume = resolve_resume(cfg)
    if resume:
        logger.info("resuming from %s", resume)
    with interrupt.installed():
        output = trainer.train(resume_from_checkpoint=resume)
    trainer.save_model(cfg.out)

    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    runtime = float(output.metrics.get("train_runtime", 0.0))
    tokens = trainer.state.num_input_tokens_seen
    result = TrainResult(
        out=cfg.out,
        global_step=trainer.state.global_step,
        expected_steps=expected,
        train_loss=float(output.training_loss),
        first_loss=losses[0] if losses else None,
        last_loss=losses[-1] if losses else None,
        samples_per_second=float(output.metrics.get("train_samples_per_second", 0.0)),
        tokens_per_second=(tokens / runtime) if tokens and runtime else None,
        runtime_s=runtime,
        resumed_from=resume,
    )
    if trainer.args.should_save:
        summary = {
            "result": result.__dict__,
            "config": to_dict(cfg),
            "log_history": trainer.state.log_history,
        }
        (Path(cfg.out) / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, default=str))
    return result


def load_train_config(path: str | None, overrides: list[str], flags: dict) -> TrainConfig:
    """Load a recipe: a shipped preset name (``videochatgpt_7b``, ``breakfast``) or a YAML path."""
    if path and not Path(path).is_file():  # a folder named like a preset must not shadow it
        preset = resources.files("videollm.train") / "recipes" / f"{path}.yaml"
        if not preset.is_file():
            raise ConfigError(f"recipe {path} is neither a file nor a shipped preset")
        path = str(preset)
    return load_config(TrainConfig, path, overrides, flags=flags)
