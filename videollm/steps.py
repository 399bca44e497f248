"""The steps as a user (or a pipeline) runs them: storage, lineage and MLflow around each one.

Each ``run_*`` function takes paths or ``s3://`` / ``minio://`` URIs, stages remote inputs into a
local cache, calls the plain step function (``extract``, ``convert``, ``train``, ``evaluate``),
writes ``_meta.json`` beside the output, uploads it, and records the step as an MLflow run.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from videollm.config_loader import to_dict
from videollm.data.convert import ConvertConfig, ConvertResult, convert
from videollm.data.records import read_records, video_ref_to_id
from videollm.errors import ConfigError
from videollm.eval.evaluate import EvalConfig, check_sources, evaluate
from videollm.features.extract import ExtractConfig, ExtractResult, extract
from videollm.features.store import MANIFEST_NAME, shard_dir
from videollm.lineage import META_FILE, build_meta, content_digest, write_meta
from videollm.storage import is_remote, join
from videollm.storage.staging import stage_in, stage_out
from videollm.storage.sync import upload_file
from videollm.tracking import (
    CHECKPOINT_TAG,
    log_artifact,
    log_dataset,
    log_metrics,
    log_text,
    step_run,
)
from videollm.tracking.callback import MlflowTrainCallback
from videollm.tracking.lookup import log_metrics_to_run
from videollm.tracking.runs import active_run_id, rename_active_run
from videollm.tracking.stale import claim_output
from videollm.train.loop import TrainResult, check_checkpoint_folder, records_file, train
from videollm.train.train_config import TrainConfig
from videollm.video.paths import VIDEO_EXTENSIONS, in_shard, video_id

logger = logging.getLogger(__name__)

#: Tag of an evaluate run: what it scored, a checkpoint URI or ``MODEL @ URL`` of an endpoint.
MODEL_TAG = "videollm.model"


def stage_in_videos(uri: str, shard: tuple[int, int] | None = None) -> Path:
    """Like :func:`stage_in`, but a remote folder of videos only downloads ``shard``'s videos."""
    if shard is None:
        return stage_in(uri)

    def mine(rel: str) -> bool:
        path = Path(rel)
        return path.suffix.lower() in VIDEO_EXTENSIONS and in_shard(video_id(path), *shard)

    return stage_in(uri, keep=mine)


def _claim(step: str) -> Callable[[Path], None]:
    """Record the active MLflow run as the output's writer (closes a dead writer's run)."""
    return lambda local: claim_output(local, step)


def _digest(uri: str, local: Path) -> str | None:
    return content_digest(local) if local.exists() else None


def _finish(
    step: str, out: Path, config: dict[str, Any], inputs: dict[str, tuple[str, Path]]
) -> None:
    """Write ``_meta.json`` and log the inputs as MLflow datasets."""
    meta = build_meta(step, config, {k: (uri, _digest(uri, p)) for k, (uri, p) in inputs.items()})
    meta["mlflow_run_id"] = active_run_id()
    write_meta(out, meta)
    for name, (uri, _) in inputs.items():
        log_dataset(uri, name=name, digest=meta["inputs"][name]["digest"], context=step)


def run_extract(
    videos: str, out: str, cfg: ExtractConfig, shard: tuple[int, int] | None = None
) -> ExtractResult:
    """Extract features of ``videos`` (folder, list file or URI) into ``out`` (folder or URI).

    With ``shard=(index, count)`` only that shard's videos are fetched and extracted, into
    ``out/shard-NNN``; training and evaluation read a sharded features folder as one.
    """
    params = to_dict(cfg) | {"videos": videos, "out": out}
    if shard is not None:
        index, count = shard
        if not 0 <= index < count:
            raise ConfigError(f"shard {index} of {count}: need 0 <= index < count")
        out = shard_dir(out, index)
        params |= {"shard": index, "num_shards": count}
    with step_run("extract", params):
        local_videos = stage_in_videos(videos, shard)
        with stage_out(out, claim=_claim("extract")) as local_out:
            on_saved = None
            if is_remote(out):
                # Upload each feature file the moment it is finished: a killed run keeps it.
                def on_saved(path: Path) -> None:
                    upload_file(path, join(out, path.name))
                    upload_file(local_out / MANIFEST_NAME, join(out, MANIFEST_NAME))

            result = extract(local_videos, local_out, cfg, on_saved=on_saved, shard=shard)
            _finish("extract", local_out, to_dict(cfg), {"videos": (videos, local_videos)})
        log_metrics(
            {
                "extract/done": result.done,
                "extract/skipped": result.skipped,
                "extract/failed": result.failed,
                "extract/videos_per_s": result.videos_per_s,
            }
        )
        if result.failures:
            log_text("".join(json.dumps(f) + "\n" for f in result.failures), "failures.jsonl")
    return result


def run_convert(cfg: ConvertConfig) -> ConvertResult:
    """Convert annotations at ``cfg.input`` into records at ``cfg.out`` (paths or URIs)."""
    with step_run("convert", to_dict(cfg)):
        local_in = stage_in(cfg.input)
        with stage_out(cfg.out, claim=_claim("convert")) as local_out:
            local_cfg = dataclasses.replace(cfg, input=str(local_in), out=str(local_out))
            result = convert(local_cfg)
            _finish("convert", local_out, to_dict(cfg), {"annotations": (cfg.input, local_in)})
        log_metrics({f"convert/{k}": v for k, v in result.counts.items()})
    return result


def run_train(cfg: TrainConfig) -> TrainResult:
    """Train from records and features (paths or URIs) into ``cfg.out`` (path or URI)."""
    # The registry needs an absolute source: a relative path means nothing to other machines.
    tags = {CHECKPOINT_TAG: cfg.out if is_remote(cfg.out) else str(Path(cfg.out).resolve())}
    with step_run("train", to_dict(cfg), tags=tags, log_system_metrics=True):
        records = stage_in(cfg.records)
        features = stage_in(cfg.features)
        with stage_out(cfg.out, check=check_checkpoint_folder, claim=_claim("train")) as local_out:
            local_cfg = dataclasses.replace(
                cfg, records=str(records), features=str(features), out=str(local_out)
            )
            result = train(local_cfg, callbacks=[MlflowTrainCallback()])
            inputs = {
                "records": (cfg.records, records_file(records)),
                "features": (cfg.features, features),
            }
            _finish("train", local_out, to_dict(cfg), inputs)
        log_metrics(
            {
                "train/final_loss": result.last_loss or 0.0,
                "train/samples_per_s": result.samples_per_second,
                "train/tokens_per_s_avg": result.tokens_per_second or 0.0,
            }
        )
    return result


def training_run_of(checkpoint: Path) -> str | None:
    """The MLflow run that trained a checkpoint (from its ``_meta.json``), if recorded."""
    meta = checkpoint / META_FILE
    return json.loads(meta.read_text()).get("mlflow_run_id") if meta.is_file() else None


def predictions_markdown(predictions: Path, limit: int = 20) -> str:
    """A Markdown table of the first ``limit`` predictions, for the MLflow UI."""
    lines = ["| id | question | answer | prediction |", "| --- | --- | --- | --- |"]
    for raw in predictions.read_text().splitlines()[:limit]:
        row = json.loads(raw)
        cells = [
            str(row[k]).replace("|", "\\|").replace("\n", " ")
            for k in ("id", "question", "answer", "pred")
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def run_evaluate(cfg: EvalConfig) -> dict[str, float]:
    """Evaluate a checkpoint or a served model (paths or URIs) and record ``val/*`` metrics.

    A checkpoint's metrics go on its training run too: the training run then holds ``val/*``
    metrics next to its checkpoint URI, which is what ``videollm select`` ranks. A served
    model (``endpoint.url``) has no training run; its evaluate run is named after the model and
    tagged ``videollm.model = MODEL @ URL``, so ``videollm runs compare`` and the MLflow UI
    show it beside the champion's evaluation under the same metric names.
    """
    check_sources(cfg)
    endpoint = cfg.endpoint
    scored = endpoint.display() if endpoint.url else cfg.checkpoint
    with step_run("evaluate", to_dict(cfg), tags={MODEL_TAG: scored}) as run:
        records = stage_in(cfg.records)
        if endpoint.url:
            # Named after the model, so tables of runs show which model each row scored.
            short = endpoint.model.rsplit("/", 1)[-1]
            rename_active_run(f"evaluate-{short}-{run.info.run_id[:6]}")
            source = "videos"
            local = {"videos": stage_in_videos_of(cfg.videos, records)}
        else:
            source = "checkpoint"
            local = {"checkpoint": stage_in(cfg.checkpoint), "features": stage_in(cfg.features)}
        with stage_out(cfg.out, claim=_claim("evaluate")) as local_out:
            local_cfg = dataclasses.replace(
                cfg,
                records=str(records),
                out=str(local_out),
                **{k: str(v) for k, v in local.items()},
            )
            metrics = evaluate(local_cfg)
            inputs = {
                source: (getattr(cfg, source), local[source]),
                "records": (cfg.records, records),
            }
            _finish("evaluate", local_out, to_dict(cfg), inputs)
        val = {f"val/{k}": v for k, v in metrics.items()}
        log_metrics(val)
        log_artifact(local_out / "predictions.jsonl")
        log_text(predictions_markdown(local_out / "predictions.jsonl"), "predictions.md")
        train_run = None if endpoint.url else training_run_of(local["checkpoint"])
        if train_run:
            log_metrics_to_run(train_run, val)
    return metrics


def stage_in_videos_of(uri: str, records: Path) -> Path:
    """Like :func:`stage_in`, but a remote folder of videos only downloads the videos that
    ``records`` names (a validation split needs a fraction of a dataset's videos)."""
    if not is_remote(uri):
        return Path(uri)
    needed = {r["video"] for r in read_records(records)}
    return stage_in(uri, keep=lambda rel: video_ref_to_id(rel) in needed)
