"""What each KFP component does, as plain functions a test can call.

Components in ``components/`` only map KFP inputs/outputs onto these. Big data moves by URI:
features and records under a prefix keyed by what they are made from
(``<work_uri>/features|records/<key>``, so a re-run with the same inputs reuses them and KFP's
cache can skip the task), the rest under one prefix per pipeline run
(``<work_uri>/<run>/checkpoint|eval|bento``). What the tasks return is small: URIs, counts,
metrics and a Markdown report.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from videollm.data.convert import ConvertConfig
from videollm.errors import ConfigError, VideoLLMError
from videollm.storage import is_remote, join, resolve
from videollm.video.paths import VIDEO_EXTENSIONS

logger = logging.getLogger(__name__)

FORMATS = typing.get_args(typing.get_type_hints(ConvertConfig)["format"])


@dataclass
class TaskResult:
    """A task's small outputs.

    Attributes:
        uri: Where its big output went.
        metrics: Numbers for the KFP Metrics artifact.
        report: Markdown for the KFP Markdown artifact.
        manifest: JSON for the Dataset/Model artifact (always includes ``uri``).
    """

    uri: str
    metrics: dict[str, float] = field(default_factory=dict)
    report: str = ""
    manifest: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.manifest = {"uri": self.uri, **self.manifest}


def init_task(experiment: str, platform_config: str, platform_secret: str) -> None:
    """Per-task set-up: INFO logs to the task's log, a check that the platform ConfigMap and
    Secret reached the pod (:func:`~videollm.kfp.preflight.check_platform`), and the
    run's MLflow experiment.

    Raises:
        ConfigError: inside a cluster, the ConfigMap or Secret is missing or incomplete.
    """
    from videollm.kfp.preflight import check_platform

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    check_platform(platform_config, platform_secret)
    if experiment:
        os.environ["MLFLOW_EXPERIMENT_NAME"] = experiment


def log_metrics(artifact: Any, result: TaskResult) -> None:
    """Copy ``result.metrics`` into a KFP ``Metrics`` artifact (names made KFP-safe)."""
    for name, value in result.metrics.items():
        artifact.log_metric(name.replace("/", "_"), float(value))


def single_uri(uris: list[str]) -> str:
    """The one prefix that every collected shard output names."""
    distinct = sorted(set(uris))
    if len(distinct) != 1:
        raise VideoLLMError(f"expected every shard to share one prefix, got {distinct}")
    return distinct[0]


def work_root(work_uri: str) -> str:
    """``work_uri``, or by default ``s3://$VIDEOLLM_BUCKET/runs``.

    ``VIDEOLLM_BUCKET`` comes from the platform ConfigMap, so on a cluster the data goes to the
    bucket the Helm chart created, whatever it is named.

    Raises:
        ConfigError: neither is set.
    """
    if work_uri:
        return work_uri
    bucket = os.environ.get("VIDEOLLM_BUCKET", "").strip()
    if not bucket:
        raise ConfigError(
            "work_uri: required (a folder or s3:// prefix for the run's data) when the "
            "platform ConfigMap gives no VIDEOLLM_BUCKET"
        )
    return f"s3://{bucket}/runs"


def work_dir(work_uri: str, run_id: str) -> str:
    """The prefix every task of one pipeline run writes under."""
    return join(work_root(work_uri), run_id or "run")


def keyed_dir(work_uri: str, kind: str, **inputs: Any) -> str:
    """``<work_uri>/<kind>/<key>``: where data made from exactly ``inputs`` goes.

    The key is a digest of the inputs, not the run id: every run with the same inputs reads
    and writes the same prefix (extraction skips videos already there), and the task that
    writes it has the same KFP inputs, so KFP's cache can skip it altogether.
    """
    canonical = json.dumps(inputs, sort_keys=True, default=str)
    return join(work_root(work_uri), kind, hashlib.sha256(canonical.encode()).hexdigest()[:16])


def features_dir(work_uri: str, videos_uri: str, encoder: str, num_frames: int) -> str:
    """Where ``extract`` puts the features of these videos, encoder and frames."""
    return keyed_dir(
        work_uri, "features", videos_uri=videos_uri, encoder=encoder, num_frames=int(num_frames)
    )


def records_dir(
    work_uri: str,
    annotations_uri: str,
    annotation_format: str,
    num_frames: int,
    val_fraction: float,
) -> str:
    """Where ``convert`` puts the records made from these annotations and settings."""
    return keyed_dir(
        work_uri,
        "records",
        annotations_uri=annotations_uri,
        annotation_format=annotation_format,
        num_frames=int(num_frames),
        val_fraction=float(val_fraction),
    )


def plan_shards(
    videos_uri: str,
    annotations_uri: str,
    annotation_format: str,
    num_shards: int,
    require_annotations: bool = True,
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

    Raises:
        ConfigError: unknown format, fewer than one shard, or a missing dataset.
    """
    if annotation_format not in FORMATS:
        raise ConfigError(
            f"annotation_format: {annotation_format!r} is not one of {', '.join(FORMATS)}"
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


def extract_shard(
    videos_uri: str, features_uri: str, encoder: str, num_frames: int, shard: int, num_shards: int
) -> TaskResult:
    """Extract one shard's features into ``features_uri/shard-NNN``."""
    from videollm.features.extract_config import ExtractConfig
    from videollm.steps import run_extract

    cfg = ExtractConfig(encoder=encoder, num_frames=num_frames)
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


def write_outputs(result: TaskResult, manifest_path: str, report_path: str | None = None) -> None:
    """Write the manifest (Dataset/Model artifact) and the report (Markdown artifact)."""
    Path(manifest_path).parent.mkdir(parents=True, exist_ok=True)
    Path(manifest_path).write_text(json.dumps(result.manifest, indent=2) + "\n")
    if report_path:
        Path(report_path).parent.mkdir(parents=True, exist_ok=True)
        Path(report_path).write_text(result.report or "(nothing to report)\n")
