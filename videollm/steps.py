"""The steps as a user (or a pipeline) runs them: storage, lineage and MLflow around each one.

Each ``run_*`` function takes paths or ``s3://`` / ``minio://`` URIs, stages remote inputs into a
local cache, calls the plain step function (``extract``, ``convert``, ``train``, ``evaluate``),
writes ``_meta.json`` beside the output, uploads it, and records the step as an MLflow run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from videollm.config import to_dict
from videollm.data.convert import ConvertConfig, ConvertResult, convert
from videollm.errors import ConfigError
from videollm.eval.evaluate import EvalConfig, evaluate
from videollm.features.extract import ExtractConfig, ExtractResult, extract
from videollm.features.store import MANIFEST_NAME, shard_dir
from videollm.lineage import META_FILE, build_meta, content_digest, write_meta
from videollm.locking import exclusive_output
from videollm.ranks import is_main_process
from videollm.storage import is_remote, join, resolve
from videollm.storage.sync import download_prefix, upload_dir, upload_file
from videollm.tracking import (
    CHECKPOINT_TAG,
    log_artifact,
    log_dataset,
    log_metrics,
    log_text,
    step_run,
)
from videollm.tracking.callback import MlflowTrainCallback
from videollm.tracking.stale import claim_output
from videollm.train.config import TrainConfig
from videollm.train.recipe import TrainResult, check_checkpoint_folder, records_file, train
from videollm.video.paths import VIDEO_EXTENSIONS, in_shard, video_id

logger = logging.getLogger(__name__)


def cache_dir(uri: str) -> Path:
    """Local cache folder for a remote URI (``VIDEOLLM_CACHE_DIR``, default ~/.cache/videollm)."""
    root = Path(os.environ.get("VIDEOLLM_CACHE_DIR", Path.home() / ".cache" / "videollm"))
    return root / hashlib.sha256(uri.encode()).hexdigest()[:16]


def stage_in(uri: str) -> Path:
    """A local path holding the object or prefix at ``uri`` (downloaded when remote)."""
    if not is_remote(uri):
        return Path(uri)
    storage, key = resolve(uri)
    if key and storage.exists(key):  # a single object, e.g. .../val.jsonl
        local = cache_dir(uri) / Path(key).name
        storage.get(key, local)
        return local
    return download_prefix(uri, cache_dir(uri))


def stage_in_videos(uri: str, shard: tuple[int, int] | None = None) -> Path:
    """Like :func:`stage_in`, but a remote folder of videos only downloads ``shard``'s videos."""
    if shard is None or not is_remote(uri):
        return stage_in(uri)
    storage, key = resolve(uri)
    if key and storage.exists(key):  # a list file, not a folder
        return stage_in(uri)

    def mine(rel: str) -> bool:
        path = Path(rel)
        return path.suffix.lower() in VIDEO_EXTENSIONS and in_shard(video_id(path), *shard)

    return download_prefix(uri, cache_dir(uri), keep=mine)


@contextmanager
def stage_out(uri: str, step: str, check: Callable[[Path], None] | None = None) -> Iterator[Path]:
    """A local folder for a step's output; uploaded to ``uri`` when the step succeeds.

    What already exists under a remote ``uri`` is fetched first, so finished work (features,
    checkpoints) is reused and a re-run resumes instead of starting over. The (local or
    staging) folder is locked for the step, so a second writer on this machine is refused.
    A local output also records the active MLflow run as its writer, which closes the run of
    an earlier writer that died (see :func:`~videollm.tracking.stale.claim_output`); a remote
    prefix may be written from other machines, where no lock here could tell a dead writer
    from a live one. Under ``torchrun`` only rank 0 does either.
    ``check`` (e.g. "is this folder a checkpoint?") sees the folder before anything is written.

    Raises:
        ConfigError: ``uri`` is an existing file.
        OutputLockedError: Another process is writing the folder.
    """
    remote = is_remote(uri)
    local = cache_dir(uri) if remote else Path(uri)
    if local.exists() and not local.is_dir():
        raise ConfigError(f"out: {uri} is an existing file, not a folder")
    main = is_main_process()
    with exclusive_output(local) if main else nullcontext():
        if remote:
            download_prefix(uri, local)
        local.mkdir(parents=True, exist_ok=True)
        if check is not None:
            check(local)
        if main and not remote:
            claim_output(local, step)
        yield local
        if remote:
            upload_dir(local, uri)


def _digest(uri: str, local: Path) -> str | None:
    return content_digest(local) if local.exists() else None


def _finish(
    step: str, out: Path, config: dict[str, Any], inputs: dict[str, tuple[str, Path]]
) -> None:
    """Write ``_meta.json`` and log the inputs as MLflow datasets."""
    meta = build_meta(step, config, {k: (uri, _digest(uri, p)) for k, (uri, p) in inputs.items()})
    meta["mlflow_run_id"] = _active_run_id()
    write_meta(out, meta)
    for name, (uri, _) in inputs.items():
        log_dataset(uri, name=name, digest=meta["inputs"][name]["digest"], context=step)


def _active_run_id() -> str | None:
    import mlflow

    run = mlflow.active_run()
    return run.info.run_id if run else None


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
        with stage_out(out, "extract") as local_out:
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
        with stage_out(cfg.out, "convert") as local_out:
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
        with stage_out(cfg.out, "train", check=check_checkpoint_folder) as local_out:
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
    """Evaluate a checkpoint (path or URI) and record the metrics on its training run too.

    The training run then holds ``val/*`` metrics next to its checkpoint URI, which is what
    ``videollm select`` ranks.
    """
    with step_run("evaluate", to_dict(cfg)):
        checkpoint = stage_in(cfg.checkpoint)
        records = stage_in(cfg.records)
        features = stage_in(cfg.features)
        with stage_out(cfg.out, "evaluate") as local_out:
            local_cfg = dataclasses.replace(
                cfg,
                checkpoint=str(checkpoint),
                records=str(records),
                features=str(features),
                out=str(local_out),
            )
            metrics = evaluate(local_cfg)
            inputs = {"checkpoint": (cfg.checkpoint, checkpoint), "records": (cfg.records, records)}
            _finish("evaluate", local_out, to_dict(cfg), inputs)
        val = {f"val/{k}": v for k, v in metrics.items()}
        log_metrics(val)
        log_artifact(local_out / "predictions.jsonl")
        log_text(predictions_markdown(local_out / "predictions.jsonl"), "predictions.md")
        train_run = training_run_of(checkpoint)
        if train_run:
            from mlflow import MlflowClient

            client = MlflowClient()
            for key, value in val.items():
                client.log_metric(train_run, key, float(value))
    return metrics
