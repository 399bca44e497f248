"""The features a checkpoint answers a benchmark from, made once and kept by key.

Features of a benchmark's videos go under ``features_root/<key>``, the key a digest of the
videos folder and the extraction settings that shape a feature file (:func:`features_key`).
So a second model with the same encoder, a re-run, or the ``benchmark`` pipeline's scoring
tasks after its extract task, extract nothing.

A question about part of a video (MVBench's ``start``/``end``) is answered from that clip's
features, ``<video>@<start ms>-<end ms>`` (:func:`feature_id`), sampled from that part alone.

Two ways in: :func:`extract_features` extracts what is missing (``videollm benchmark``, the
pipeline's extract task), and :func:`read_features` only reads what an extract task made
(the pipeline's scoring tasks: no encoder, no lock, so two models score at once).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from videollm.data.records import video_ref_to_id
from videollm.errors import ConfigError
from videollm.features.extract import extract
from videollm.features.extract_config import ExtractConfig
from videollm.features.store import FAILURES_NAME, MANIFEST_NAME, feature_path, read_jsonl
from videollm.storage import join
from videollm.storage.staging import stage_in, stage_out
from videollm.video.paths import list_videos
from videollm.video.sampling import Span

logger = logging.getLogger(__name__)

#: Settings that change what a feature file holds; the others (workers, batch) do not.
FEATURE_KEYS = ("encoder", "layer", "num_frames", "pooling", "pooling_options", "resize_shortest")


def feature_settings(cfg: ExtractConfig) -> dict[str, Any]:
    """The settings of ``cfg`` that shape its features (what an extract task is handed)."""
    return {k: getattr(cfg, k) for k in FEATURE_KEYS}


def features_key(videos_uri: str, cfg: ExtractConfig) -> str:
    """A digest of the videos folder and the settings that shape its features."""
    canonical = json.dumps(
        {"videos": videos_uri, **feature_settings(cfg)}, sort_keys=True, default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def item_span(item: dict[str, Any]) -> Span | None:
    """The part of its video an item asks about (seconds), or None for the whole video."""
    start, end = item.get("start"), item.get("end")
    return None if start is None or end is None else (float(start), float(end))


def feature_id(item: dict[str, Any]) -> str:
    """The features an item is answered from: its video's, or its clip's,
    ``<video>@<start ms>-<end ms>`` (whole milliseconds: exact, and safe in file names and
    S3 keys)."""
    span = item_span(item)
    if span is None:
        return item["video"]
    return f"{item['video']}@{round(span[0] * 1000)}-{round(span[1] * 1000)}"


def clips_of(items: Collection[dict[str, Any]]) -> dict[str, tuple[str, Span]]:
    """Clip id → (video id, span) for the items that ask about part of a video."""
    return {feature_id(it): (it["video"], span) for it in items if (span := item_span(it))}


@dataclass
class BenchFeatures:
    """A local folder of a benchmark's features, and the videos that failed to decode.

    Attributes:
        folder: Holds ``<video_id>.safetensors`` for each video that has features.
        failures: ``failures.jsonl`` rows (``video_id``, ``source``, ``error``).
    """

    folder: Path
    failures: list[dict[str, Any]] = field(default_factory=list)

    def has(self, video_id: str) -> bool:
        """Whether the video has a feature file."""
        return feature_path(self.folder, video_id).is_file()


def locate_videos(videos_uri: str, needed: Collection[str]) -> tuple[Path, dict[str, Path]]:
    """The local videos folder, and needed video id → file for the needed videos it holds.

    From an ``s3://`` prefix only the needed videos are downloaded. Missing ones are logged
    (their questions are skipped and counted as such).
    """
    wanted = set(needed)
    local = stage_in(videos_uri, keep=lambda rel: video_ref_to_id(rel) in wanted)
    found = {vid: path for vid, path in list_videos(local) if vid in wanted}
    _warn_missing(wanted - set(found), f"missing from {videos_uri}")
    return local, found


def extract_features(
    videos_uri: str,
    needed: Collection[str],
    cfg: ExtractConfig,
    features_root: str,
    clips: dict[str, tuple[str, Span]] | None = None,
) -> BenchFeatures:
    """Extract the needed features into ``features_root/<key>``, skipping done ones.

    Args:
        videos_uri: The benchmark's videos folder or prefix.
        needed: Feature ids (:func:`feature_id`): video ids, and clip ids found in ``clips``.
        cfg: The model's extraction settings.
        features_root: Folder or prefix of the keyed feature folders.
        clips: Clip id → (video id, span) (:func:`clips_of`).

    Raises:
        OutputLockedError: Another process on this machine is writing that folder.
    """
    clips = {c: clip for c, clip in (clips or {}).items() if c in needed}
    videos_dir, videos = locate_videos(videos_uri, {clips.get(v, (v,))[0] for v in needed})
    plain = {v for v in needed if v not in clips and v in videos}
    clips = {c: clip for c, clip in clips.items() if clip[0] in videos}
    target = join(features_root, features_key(videos_uri, cfg))
    if not plain and not clips:
        return BenchFeatures(stage_in(target))
    with stage_out(target) as local:
        result = extract(videos_dir, local, cfg, only=plain, clips=clips)
    if result.failures:
        logger.warning("%d benchmark video(s) failed to decode", len(result.failures))
    return BenchFeatures(local, list(result.failures))


def read_features(
    videos_uri: str, needed: Collection[str], cfg: ExtractConfig, features_root: str
) -> BenchFeatures:
    """The needed videos' features as an extract task left them; nothing is extracted.

    Raises:
        ConfigError: No extract task ran with these settings: the folder holds neither a
            manifest nor a failures list (the message names the folder and the settings).
    """
    wanted = set(needed)
    uri = join(features_root, features_key(videos_uri, cfg))
    kept = (FAILURES_NAME, MANIFEST_NAME)
    local = stage_in(uri, keep=lambda rel: Path(rel).stem in wanted or rel in kept)
    failures_file = local / FAILURES_NAME
    failures = [
        f for f in read_jsonl(failures_file) if f.get("video_id") in wanted
    ] if failures_file.is_file() else []  # fmt: skip
    found = BenchFeatures(local, failures)
    failed = {f.get("video_id") for f in failures}
    missing = {v for v in wanted if not found.has(v) and v not in failed}
    if wanted and not (local / MANIFEST_NAME).is_file() and not failures_file.is_file():
        raise ConfigError(
            f"no features of {videos_uri} under {uri}: no extract task ran with these "
            f"settings {feature_settings(cfg)} (the benchmark pipeline's extract_benchmark, "
            "or a suite with extract: true)"
        )
    _warn_missing(missing, f"without features in {uri}")
    return found


def _warn_missing(missing: set[str], why: str) -> None:
    if missing:
        shown = ", ".join(sorted(missing)[:5])
        logger.warning("%d video(s) %s, e.g. %s; their questions are skipped", len(missing),
                       why, shown)  # fmt: skip
