"""Extract features for a folder of videos: decode ahead, encode in batches, pool, save.

Decoding runs ahead of the encoder (:mod:`videollm.features.decode_loader`: worker processes,
or threads when torchcodec decodes on the GPU); the frames of ``batch_size`` videos go
through the encoder in one forward pass and are split back per video. A video that cannot be
decoded is written to ``failures.jsonl`` and never stops the run. Finished videos are skipped
on a re-run, so an interrupted extraction resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from tqdm import tqdm

from videollm.errors import ConfigError, FeatureFormatError
from videollm.features.decode_loader import Decoded, Item, decode_device, decoded_batches
from videollm.features.encoder import VideoEncoder, resolve_device, tune_cpu_allocator
from videollm.features.extract_config import (
    ExtractConfig,
    check_frame_bound,
    normalize_recorded,
    recorded_config,
)
from videollm.features.manifest import repair_manifest
from videollm.features.pooling import Pooling, build_pooling, pool
from videollm.features.store import (
    FAILURES_NAME,
    FEATURES_KEY,
    MANIFEST_NAME,
    append_jsonl,
    encoder_dtype,
    feature_metadata,
    feature_path,
    file_sha256,
    manifest_record,
    read_jsonl,
    read_metadata,
    save_features,
)
from videollm.hub import resolve_model_ref
from videollm.video.decode import check_decoder, read_video
from videollm.video.paths import VIDEO_EXTENSIONS, in_shard, list_videos
from videollm.video.sampling import Span

__all__ = ["ExtractConfig", "ExtractResult", "extract", "features_for_video"]

logger = logging.getLogger(__name__)

_EXTENSIONS = " ".join(sorted(VIDEO_EXTENSIONS))


@dataclass
class ExtractResult:
    """What one :func:`extract` run did.

    Attributes:
        done: Videos extracted in this run.
        skipped: Videos whose features already existed.
        failed: Videos that could not be decoded (listed in ``failures``/``failures.jsonl``).
        failures: ``{"video_id", "source", "error"}`` per failed video.
        seconds: Wall time of the run, model loading included.
        videos_per_s: ``done / seconds``.
        frames: Frames encoded in this run.
    """

    done: int = 0
    skipped: int = 0
    failed: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    videos_per_s: float = 0.0
    frames: int = 0


def _check_existing(path: Path, cfg: ExtractConfig) -> dict[str, str] | None:
    """Metadata of a finished feature file, None if it must be redone.

    Raises:
        ConfigError: The file was made with different settings; mixing them would be silent
            corruption of the dataset.
    """
    try:
        meta = read_metadata(path)
    except FeatureFormatError as err:
        logger.warning("%s; extracting it again", err)
        return None
    made_in, now_in = meta.get("encoder_dtype"), encoder_dtype(cfg)
    # Files from before the dtype was recorded carry none: they are taken as they are.
    if made_in is not None and made_in != now_in:
        raise ConfigError(
            f"{path} was encoded in {made_in}, this run would encode in {now_in}: the features "
            f"differ slightly, so one folder holds one dtype; set dtype={made_in} to resume, or "
            "use another output folder"
        )
    recorded = json.loads(meta.get("extract_config", "{}"))
    if isinstance(recorded.get("encoder"), str):
        # Files from before encoders were stored absolute may name the same folder relatively.
        recorded["encoder"] = _absolute_if_local(recorded["encoder"], str(Path.cwd()))
    recorded = normalize_recorded(recorded)
    wanted = recorded_config(cfg)
    if recorded != wanted:
        diff = {k: (recorded.get(k), v) for k, v in wanted.items() if recorded.get(k) != v}
        raise ConfigError(
            f"{path} was extracted with different settings {diff} (recorded, now); "
            "use another output folder or delete the old features"
        )
    return meta


@functools.cache  # every file of a folder records the same encoder: resolve it once
def _absolute_if_local(ref: str, cwd: str) -> str:
    del cwd  # part of the cache key only: a relative folder means another one elsewhere
    try:
        return resolve_model_ref(ref, "encoder")
    except ConfigError:  # a folder that is gone: compare as recorded
        return ref


def _plan(items: list[Item], out: Path, cfg: ExtractConfig) -> tuple[list[Item], int]:
    """Split videos into to-do and already-done; add missing manifest lines for done ones."""
    manifest = out / MANIFEST_NAME
    listed = {rec.get("video_id") for rec in read_jsonl(manifest)}
    todo: list[Item] = []
    skipped = 0
    for vid, path, span in items:
        fpath = feature_path(out, vid)
        meta = _check_existing(fpath, cfg) if fpath.exists() else None
        if meta is None:
            todo.append((vid, path, span))
            continue
        skipped += 1
        if vid not in listed:
            # A crash between saving the file and appending its manifest line.
            with safe_open(str(fpath), framework="pt") as f:
                shape = f.get_slice(FEATURES_KEY).get_shape()
            frames = int(meta.get("frames", -1))
            sha = file_sha256(fpath)
            append_jsonl(manifest, manifest_record(vid, fpath, str(path), shape, frames, sha))
    return todo, skipped


def _encode_batch(
    encoder: VideoEncoder, items: list[Decoded], pooling: Pooling
) -> list[torch.Tensor]:
    """Pooled features of several videos from one encoder forward pass."""
    videos = [it.video for it in items if it.video is not None]
    # Preprocess per video (sizes may differ), then one forward pass for all frames.
    pixels = torch.cat([encoder.preprocess(v.frames) for v in videos])
    tokens = encoder.encode_pixels(pixels)
    per_video = tokens.split([v.frames.shape[0] for v in videos])
    return [pooling.pool(t) for t in per_video]


def extract(
    videos: str | Path,
    out_dir: str | Path,
    cfg: ExtractConfig,
    on_saved: Callable[[Path], None] | None = None,
    shard: tuple[int, int] | None = None,
    only: Collection[str] | None = None,
    clips: Mapping[str, tuple[str, Span]] | None = None,
) -> ExtractResult:
    """Extract features of every video under ``videos`` into ``out_dir``.

    Args:
        videos: A folder (searched recursively) or a text file of video paths.
        out_dir: Where ``<video_id>.safetensors``, ``manifest.jsonl`` and ``failures.jsonl`` go.
        cfg: Extraction settings.
        on_saved: Called with each feature file once it and its manifest line are written
            (e.g. to upload it at once, so an interrupted remote run loses nothing finished).
        shard: ``(index, count)``: only this shard's videos (see :func:`in_shard`).
        only: Only the videos with these ids (a benchmark's sample of a folder).
        clips: Parts of videos to extract as well, each into its own feature file: clip id →
            (video id, ``(start, end)`` in seconds), e.g. MVBench's questions about a segment.

    Returns:
        Counts, failures and throughput. ``failed > 0`` means some videos were unusable.

    Raises:
        ConfigError: ``out_dir`` holds features made with different settings, ``videos``
            holds no video or two videos with one id, a clip's video is not there, or the
            chosen decoder does not load on this machine.
        FileNotFoundError: ``videos`` does not exist.
    """
    start = time.perf_counter()
    out = Path(out_dir)
    # Recorded with the features and then in checkpoints: a relative folder would only load
    # from this working directory.
    cfg = dataclasses.replace(cfg, encoder=resolve_model_ref(cfg.encoder, "encoder"))
    check_frame_bound(cfg)
    check_decoder(cfg.decoder)
    pairs = list_videos(videos)
    if not pairs and shard is None:  # a shard may be empty: the hash gave it no video
        raise ConfigError(f"videos: no videos found under {videos} ({_EXTENSIONS})")
    items = _items(pairs, shard, only, clips or {})
    out.mkdir(parents=True, exist_ok=True)
    repair_manifest(out)
    todo, skipped = _plan(items, out, cfg)
    result = ExtractResult(skipped=skipped)
    # Failed videos are retried on every run, so the file describes the latest run only.
    (out / FAILURES_NAME).write_text("")
    if skipped:
        logger.info("%d videos already extracted in %s; skipping them", skipped, out)
    if todo:
        _run(todo, out, cfg, result, on_saved)
    result.seconds = time.perf_counter() - start
    result.videos_per_s = result.done / result.seconds if result.seconds > 0 else 0.0
    logger.info(
        "extracted %d, skipped %d, failed %d videos in %.1f s (%.2f videos/s)",
        result.done,
        result.skipped,
        result.failed,
        result.seconds,
        result.videos_per_s,
    )
    return result


def _items(
    pairs: list[tuple[str, Path]],
    shard: tuple[int, int] | None,
    only: Collection[str] | None,
    clips: Mapping[str, tuple[str, Span]],
) -> list[Item]:
    """The videos (of the shard, of ``only``) and the clips to extract."""
    files = dict(pairs)
    if shard is not None:
        pairs = [(vid, path) for vid, path in pairs if in_shard(vid, *shard)]
    if only is not None:
        wanted = set(only)
        pairs = [(vid, path) for vid, path in pairs if vid in wanted]
    items: list[Item] = [(vid, path, None) for vid, path in pairs]
    for clip, (vid, span) in clips.items():
        if vid not in files:
            raise ConfigError(f"clip {clip}: video {vid!r} is not among the videos")
        items.append((clip, files[vid], span))
    return items


def _run(
    todo: list[Item],
    out: Path,
    cfg: ExtractConfig,
    result: ExtractResult,
    on_saved: Callable[[Path], None] | None,
) -> None:
    # Start the workers before loading the model: they decode while it loads, and the forked
    # processes do not carry a copy of the weights. The model is loaded at the first video
    # that decodes, so a re-run that only retries broken files never loads it.
    device = str(resolve_device(cfg.device))
    batches = decoded_batches(todo, cfg, decode_device(cfg, device))
    encoder: VideoEncoder | None = None
    pooling = build_pooling(cfg)
    with tqdm(total=len(todo), unit="video", desc="extract") as bar:
        for batch in batches:
            good = [it for it in batch if it.error is None]
            for item in (it for it in batch if it.error is not None):
                logger.warning("skipping %s: %s", item.video_id, item.error)
                failure = {"video_id": item.video_id, "source": item.source, "error": item.error}
                result.failures.append(failure)
                append_jsonl(out / FAILURES_NAME, failure)
            if good:
                if encoder is None:
                    encoder = VideoEncoder(cfg.encoder, cfg.layer, cfg.device, cfg.dtype)
                    if encoder.device.type == "cpu":
                        tune_cpu_allocator()
                for item, feats in zip(good, _encode_batch(encoder, good, pooling), strict=True):
                    saved = _save(item, feats, out, cfg)
                    if on_saved is not None:
                        on_saved(saved)
                    result.frames += len(item.video.indices) if item.video else 0
            result.done += len(good)
            result.failed = len(result.failures)
            bar.update(len(batch))
            bar.set_postfix(failed=result.failed)


def _save(item: Decoded, feats: torch.Tensor, out: Path, cfg: ExtractConfig) -> Path:
    assert item.video is not None
    meta = feature_metadata(cfg, item.video, item.source, item.sha256)
    if item.span is not None:
        meta["span_s"] = json.dumps(list(item.span))  # the part of the source sampled
    path = save_features(feature_path(out, item.video_id), feats, meta)
    frames = len(item.video.indices)
    record = manifest_record(
        item.video_id, path, item.source, feats.shape, frames, file_sha256(path)
    )
    append_jsonl(out / MANIFEST_NAME, record)
    return path


def features_for_video(
    path: str | Path, cfg: ExtractConfig, encoder: VideoEncoder | None = None
) -> tuple[torch.Tensor, dict[str, str]]:
    """Features and metadata of one video, as :func:`extract` would store them (fp16, CPU).

    Args:
        path: Video file.
        cfg: Extraction settings (must match those the model was trained on).
        encoder: A loaded encoder to reuse across calls (e.g. in a chat session).

    Raises:
        VideoDecodeError: The video cannot be decoded.
    """
    video = read_video(path, cfg.num_frames, cfg.resize_shortest, decoder=cfg.decoder)
    encoder = encoder or VideoEncoder(cfg.encoder, cfg.layer, cfg.device, cfg.dtype)
    feats = pool(encoder.encode(video.frames), cfg).to("cpu", torch.float16)
    return feats, feature_metadata(cfg, video, path, file_sha256(path))
