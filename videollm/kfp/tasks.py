"""What each KFP component does, as plain functions a test can call.

Components in ``components/`` only map KFP inputs/outputs onto these; the inputs and outputs
themselves are in :mod:`videollm.kfp.task_io`, the data's locations in
:mod:`videollm.kfp.work_dirs`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from videollm.data.adapters import ADAPTERS
from videollm.data.convert import ConvertConfig
from videollm.errors import ConfigError, VideoLLMError
from videollm.kfp.task_io import TaskResult, whole_numbers
from videollm.storage import is_remote, join, resolve
from videollm.video.paths import VIDEO_EXTENSIONS

if TYPE_CHECKING:  # imported late: torch is slow to import and planning needs none of it
    from videollm.features.extract_config import ExtractConfig

logger = logging.getLogger(__name__)


def plan_shards(
    videos_uri: str,
    annotations_uri: str,
    annotation_format: str,
    num_shards: int,
    require_annotations: bool = True,
    pooling: str = "spatiotemporal",
    pooling_options: dict[str, Any] | None = None,
) -> list[int]:
    """Check the run's inputs up front and return the shard indices to extract.

    A bad parameter fails here, in the first task, with a message that names it, instead of
    deep inside extraction or training.

    Args:
        videos_uri: Folder or ``s3://`` prefix of the videos.
        annotations_uri: Annotation file or folder.
        annotation_format: Its format.
        num_shards: Extract tasks wanted.
        require_annotations: Whether ``annotations_uri`` must be given (not for extract-only).
        pooling: The extract tasks' pooling (checked here, with its options).
        pooling_options: Its options.

    Raises:
        ConfigError: unknown format or pooling, bad pooling options, fewer than one shard, or
            a missing dataset.
    """
    extract_config(pooling, pooling_options)
    if annotation_format not in ADAPTERS:
        raise ConfigError(
            f"annotation_format: {annotation_format!r} is not one of {', '.join(ADAPTERS)}"
        )
    if num_shards < 1:
        raise ConfigError(f"num_shards: must be at least 1, got {num_shards}")
    num_videos = count_videos(videos_uri)
    if num_videos == 0:
        raise ConfigError(f"videos_uri: no videos found under {videos_uri}")
    if require_annotations and not annotations_uri:
        raise ConfigError("annotations_uri: required (an annotation file or folder)")
    if annotations_uri and not _exists(annotations_uri):
        raise ConfigError(f"annotations_uri: {annotations_uri} does not exist")
    shards = shard_count(num_shards, num_videos)
    logger.info("%d videos → %d extract shards", num_videos, shards)
    return list(range(shards))


def shard_count(num_shards: int, num_videos: int) -> int:
    """How many shards the videos are really split into: no more shards than videos.

    ``plan_shards`` launches this many extract tasks and each task assigns videos with the
    same count, so no video hashes to a shard that was never launched.
    """
    return max(1, min(int(num_shards), num_videos))


def count_videos(uri: str) -> int:
    """Videos under a folder or prefix (0 when it does not exist)."""
    storage, prefix = resolve(uri)
    if not is_remote(uri) and not Path(uri).is_dir():
        return 0
    return sum(Path(key).suffix.lower() in VIDEO_EXTENSIONS for key in storage.list(prefix))


def _exists(uri: str) -> bool:
    storage, key = resolve(uri)
    return storage.exists(key) or bool(storage.list(key)) if key else Path(uri).exists()


def extract_config(
    pooling: str, pooling_options: dict[str, Any] | None, **settings: Any
) -> ExtractConfig:
    """The extract settings the pipeline parameters give (KFP's float numbers made whole).

    Raises:
        ConfigError: Unknown ``pooling`` or invalid ``pooling_options``.
    """
    from videollm.features.extract_config import ExtractConfig

    options = whole_numbers(dict(pooling_options or {}))
    return ExtractConfig(pooling=pooling, pooling_options=options, **settings)


def extract_shard(
    videos_uri: str,
    features_uri: str,
    encoder: str,
    num_frames: int,
    shard: int,
    num_shards: int,
    pooling: str = "spatiotemporal",
    pooling_options: dict[str, Any] | None = None,
) -> TaskResult:
    """Extract one shard's features into ``features_uri/shard-NNN``.

    Raises:
        ConfigError: Unknown ``pooling`` or invalid ``pooling_options``.
    """
    from videollm.steps import run_extract

    cfg = extract_config(pooling, pooling_options, encoder=encoder, num_frames=num_frames)
    # Loop items can reach a component as floats (kfp.local); shard indices are whole numbers.
    # The task gets the requested count; the planned one may be smaller (fewer videos).
    shard, num_shards = int(shard), shard_count(num_shards, count_videos(videos_uri))
    result = run_extract(videos_uri, features_uri, cfg, shard=(shard, num_shards))
    lines = [
        f"## Extract shard {shard} of {num_shards}",
        "",
        f"* done: {result.done}",
        f"* skipped (already extracted): {result.skipped}",
        f"* failed: {result.failed}",
    ]
    if result.failures:
        lines += ["", "| video | error |", "|---|---|"]
        lines += [f"| {f.get('video_id', '?')} | {f.get('error', '')} |" for f in result.failures]
    metrics = {
        "done": result.done,
        "skipped": result.skipped,
        "failed": result.failed,
        "videos_per_s": result.videos_per_s,
    }
    return TaskResult(features_uri, metrics, "\n".join(lines) + "\n", {"shard": shard})


def convert_annotations(
    annotations_uri: str,
    annotation_format: str,
    records_uri: str,
    num_frames: int,
    val_fraction: float = 0.1,
) -> TaskResult:
    """Annotations → chat records with a train/val split."""
    from videollm.steps import run_convert

    cfg = ConvertConfig(
        format=annotation_format,
        input=annotations_uri,
        out=records_uri,
        num_frames=num_frames,
        val_fraction=val_fraction,
    )
    result = run_convert(cfg)
    if not result.counts["val"]:
        # Fail here, before training: evaluate and select need a validation split.
        raise ConfigError(
            f"val_fraction: the validation split of {annotations_uri} is empty "
            f"(val_fraction={val_fraction}); raise it or add videos"
        )
    return TaskResult(records_uri, {k: float(v) for k, v in result.counts.items()})


def evaluate_checkpoint(
    checkpoint_uri: str,
    records_uri: str,
    features_uri: str,
    eval_uri: str,
    gpus: int | str = 0,
) -> TaskResult:
    """Evaluate on the validation split; the report shows sample predictions.

    Args:
        gpus: 1 evaluates on the GPU (bf16 where the card supports it), 0 on the CPU (fp32).

    Raises:
        ConfigError: ``gpus`` is neither 0 nor 1 (one model replica uses one GPU).
    """
    from videollm.config_loader import load_config
    from videollm.eval.evaluate import EvalConfig
    from videollm.steps import run_evaluate
    from videollm.storage.staging import stage_in

    if str(gpus).strip() not in ("0", "1"):
        raise ConfigError(f"eval_gpus: 0 (CPU) or 1 (one GPU), got {gpus!r}")
    flags = {
        "checkpoint": checkpoint_uri,
        "records": join(records_uri, "val.jsonl"),
        "features": features_uri,
        "out": eval_uri,
        "device": "cuda" if str(gpus).strip() == "1" else "cpu",
    }
    metrics = run_evaluate(load_config(EvalConfig, flags=flags))
    predictions = stage_in(join(eval_uri, "predictions.jsonl"))
    rows = [json.loads(line) for line in predictions.read_text().splitlines()[:10]]
    lines = ["## Evaluation", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {v:.4f} |" for k, v in sorted(metrics.items())]
    lines += [
        "",
        "### Sample predictions",
        "",
        "| question | answer | prediction |",
        "|---|---|---|",
    ]
    lines += [
        f"| {_cell(r['question'])} | {_cell(r['answer'])} | {_cell(r['pred'])} |" for r in rows
    ]
    return TaskResult(eval_uri, dict(metrics), "\n".join(lines) + "\n")


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")[:200]


def select_model(
    experiment: str, metric: str, registered_model_name: str, alias: str = "champion"
) -> TaskResult:
    """Register the best run and move ``alias`` to it if it beats the current champion."""
    from videollm.tracking import select_champion

    result = select_champion(experiment, metric, "max", registered_model_name, alias)
    if result.champion_version is None:
        raise VideoLLMError(f"no run in {experiment!r} has {metric} and a checkpoint")
    uri = f"models:/{registered_model_name}@{alias}"
    verdict = "promoted" if result.promoted else "kept"
    report = f"## Champion\n\n{uri}: {verdict} version {result.champion_version}\n\n"
    report += "```\n" + result.table() + "\n```\n"
    best = result.best.value if result.best else float("nan")
    manifest = {"version": result.champion_version, "promoted": result.promoted}
    return TaskResult(uri, {metric.replace("/", "_"): best}, report, manifest)


def package_model(model_uri: str, bento_uri: str) -> TaskResult:
    """Package the champion as a Bento and store the ``.bento`` archive at ``bento_uri``."""
    import tempfile

    import bentoml

    from videollm.serve.package import package
    from videollm.storage.sync import upload_file

    done = package(model_uri=model_uri)
    assert done.bento_tag is not None
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / f"{done.bento_tag.replace(':', '-')}.bento"
        bentoml.export_bento(done.bento_tag, str(archive))
        target = join(bento_uri, archive.name)
        upload_file(archive, target)
    report = f"## Bento\n\n`{done.bento_tag}` from {model_uri}, stored at `{target}`.\n\n"
    report += (
        f"Serve it: `bentoml import {target}` then `videollm serve --bento {done.bento_tag}`\n"
    )
    return TaskResult(target, {}, report, {"bento": done.bento_tag, **done.labels})
