"""``videollm evaluate``: answer every validation question and score the answers.

Writes ``predictions.jsonl`` (Video-ChatGPT's ``{id, question, answer, pred}`` rows, plus
``task``) and ``metrics.json``. No LLM judge is needed; one can be added with ``judge.url``.

The answers come from a checkpoint (with the videos' features) or, with ``endpoint.url``, from a
served model on an OpenAI-compatible endpoint (with the videos themselves,
:mod:`videollm.eval.endpoint`); both are scored the same way, so their metrics compare.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from videollm.atomic import atomic_write_text
from videollm.config_loader import check_int, to_dict
from videollm.data.dataset import check_features_exist
from videollm.data.records import read_records
from videollm.data.tokenize import VIDEO_PLACEHOLDER
from videollm.errors import ConfigError
from videollm.eval.endpoint import EndpointConfig, answer_with_endpoint, video_files
from videollm.eval.generate import GenerationArgs, generate_answers
from videollm.eval.judge import JudgeConfig, judge_predictions
from videollm.eval.metrics import compute_metrics
from videollm.features.store import feature_path, load_features
from videollm.model.video_llm import VideoLLM

logger = logging.getLogger(__name__)


@dataclass
class EvalConfig:
    """Settings of ``videollm evaluate``.

    Attributes:
        checkpoint: Checkpoint folder written by ``videollm train``.
        records: Records to answer (usually ``RECORDS_DIR/val.jsonl``).
        features: Feature folder of the videos the records name (with ``checkpoint``).
        videos: Folder of the videos the records name (with ``endpoint``), as given to
            ``videollm extract``.
        out: Folder for ``predictions.jsonl`` and ``metrics.json``.
        batch_size: Questions generated together.
        limit: Answer at most this many questions (0 = all).
        device: ``auto``, ``cpu`` or ``cuda``.
        allow_empty: Accept records with no question (write empty predictions and no
            metrics) instead of failing; an empty validation split is usually a mistake.
        generation: Decoding settings (sent to an endpoint as ``max_tokens``/``temperature``).
        judge: Optional OpenAI-compatible LLM judge (off unless ``judge.url`` is set).
        endpoint: A served model to score instead of a checkpoint (off unless ``endpoint.url``
            is set); ``batch_size`` and ``device`` do not apply to it.
    """

    checkpoint: str = ""
    records: str = ""
    features: str = ""
    videos: str = ""
    out: str = ""
    batch_size: int = 8
    limit: int = 0
    device: str = "auto"
    allow_empty: bool = False
    generation: GenerationArgs = field(default_factory=GenerationArgs)
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    endpoint: EndpointConfig = field(default_factory=EndpointConfig)


def check_sources(cfg: EvalConfig) -> None:
    """Check that the answers have exactly one source: a checkpoint or an endpoint.

    Raises:
        ConfigError: Both or neither given, or the source's inputs are missing or misplaced.
    """
    if cfg.endpoint.url:
        if cfg.checkpoint:
            raise ConfigError(
                "checkpoint and endpoint.url both given (--checkpoint, --endpoint): score "
                "either a checkpoint or a served model, not both"
            )
        if cfg.features:
            raise ConfigError(
                "features: not used when scoring an endpoint (it is sent the videos, "
                "--videos); drop --features"
            )
        if not cfg.videos:
            raise ConfigError(
                "videos: required with endpoint.url (--videos DIR): the folder of the videos "
                "the records name, as given to `videollm extract`"
            )
        return
    missing = [k for k in ("checkpoint", "features") if not getattr(cfg, k)]
    if missing:
        flags = " and ".join(f"--{k}" for k in missing)
        raise ConfigError(
            f"{', '.join(missing)}: required to evaluate a checkpoint ({flags}); to score a "
            "served model give --endpoint URL --model NAME --videos DIR instead"
        )
    if cfg.videos:
        raise ConfigError(
            "videos: only used with endpoint.url (--endpoint); a checkpoint reads the "
            "features (--features)"
        )


def questions_of(record: dict) -> list[dict]:
    """One evaluation item per (question, answer) turn pair, earlier turns as history."""
    items = []
    conv = record["conversations"]
    for k in range(0, len(conv) - 1, 2):
        question = conv[k]["value"].replace(VIDEO_PLACEHOLDER, "").strip()
        items.append(
            {
                "id": record["id"] if k == 0 else f"{record['id']}_t{k // 2}",
                "video": record["video"],
                "task": record.get("task", "qa"),
                "question": question,
                "answer": conv[k + 1]["value"],
                "prompt": conv[: k + 1],
            }
        )
    return items


def check_device(device: str) -> None:
    """Refuse ``cuda`` where no GPU is visible, before minutes of loading a 7B model.

    (On a GPU the model loads in bf16 where the card supports it, fp32 elsewhere:
    :func:`videollm.model.video_llm.default_dtype`.)

    Raises:
        ConfigError: a CUDA device was asked for and CUDA is not available.
    """
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"device: {device!r}, but no CUDA GPU is visible here (no GPU in this pod or "
            "machine?); use device=cpu, or eval_gpus=0 in the pipeline"
        )


def evaluate(cfg: EvalConfig) -> dict[str, float]:
    """Answer the questions of ``cfg.records`` and write predictions and metrics to ``cfg.out``.

    Returns:
        The metrics (also in ``metrics.json``).

    Raises:
        ConfigError: Invalid settings (see :func:`check_sources`) or no questions.
        EndpointError: With ``endpoint.url``: a request failed after retries, or the
            endpoint is unusable (:mod:`videollm.eval.endpoint`).
    """
    check_sources(cfg)
    records = read_records(cfg.records)
    if cfg.endpoint.url:
        videos = video_files(cfg.videos, {r["video"] for r in records})
    else:
        check_features_exist(records, cfg.features)
    items = [q for r in records for q in questions_of(r)]
    if cfg.limit:
        items = items[: cfg.limit]
    if not items and not cfg.allow_empty:
        raise ConfigError(
            f"records: {cfg.records} holds no questions to evaluate (an empty validation "
            "split?); give --allow-empty to accept that"
        )
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    extra: dict[str, Any] = {}
    if cfg.endpoint.url:
        answers = answer_with_endpoint(items, videos, cfg.endpoint, cfg.generation)
        preds = answers.preds
        extra["endpoint"] = answers.summary(cfg.endpoint)
    else:
        preds = _generate(cfg, items)
    rows = [
        {k: it[k] for k in ("id", "question", "answer", "task")} | {"pred": pred}
        for it, pred in zip(items, preds, strict=True)
    ]
    atomic_write_text(out / "predictions.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    metrics = compute_metrics(rows)
    if cfg.judge.url:
        metrics |= judge_predictions(rows, cfg.judge)
    (out / "metrics.json").write_text(
        json.dumps({"metrics": metrics, "config": to_dict(cfg), **extra}, indent=2) + "\n"
    )
    logger.info("evaluated %d questions: %s", len(rows), metrics)
    return metrics


def _generate(cfg: EvalConfig, items: list[dict]) -> list[str]:
    """Answers from the checkpoint, ``cfg.batch_size`` questions per ``generate`` call."""
    check_int(cfg.batch_size, 1, "batch_size")
    check_device(cfg.device)
    model = VideoLLM.from_checkpoint(cfg.checkpoint, device=cfg.device)
    preds: list[str] = []
    bar = tqdm(total=len(items), desc="evaluate", unit="question")
    for start in range(0, len(items), cfg.batch_size):
        batch = items[start : start + cfg.batch_size]
        feats = [load_features(feature_path(cfg.features, it["video"]))[0] for it in batch]
        preds += generate_answers(model, [it["prompt"] for it in batch], feats, cfg.generation)
        bar.update(len(batch))
    bar.close()
    return preds
