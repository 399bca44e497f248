"""The features a checkpoint answers a benchmark from, made once and kept by key.

Features of a benchmark's videos go under ``features_root/<key>``, the key a digest of the
videos folder and the extraction settings that shape a feature file (:func:`features_key`).
So a second model with the same encoder, a re-run, or the ``benchmark`` pipeline's scoring
tasks after its extract task, extract nothing.

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
from videollm.features.extract import extract
from videollm.features.extract_config import ExtractConfig
from videollm.features.store import FAILURES_NAME, feature_path, read_jsonl
from videollm.storage import join
from videollm.storage.staging import stage_in, stage_out
from videollm.video.paths import list_videos

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
    videos_uri: str, needed: Collection[str], cfg: ExtractConfig, features_root: str
) -> BenchFeatures:
    """Extract the needed videos' features into ``features_root/<key>``, skipping done ones.

    Raises:
        OutputLockedError: Another process on this machine is writing that folder.
    """
    videos_dir, videos = locate_videos(videos_uri, needed)
    target = join(features_root, features_key(videos_uri, cfg))
    if not videos:
        return BenchFeatures(stage_in(target))
    with stage_out(target) as local:
        result = extract(videos_dir, local, cfg, only=set(videos))
    if result.failures:
        logger.warning("%d benchmark video(s) failed to decode", len(result.failures))
    return BenchFeatures(local, list(result.failures))


def read_features(
    videos_uri: str, needed: Collection[str], cfg: ExtractConfig, features_root: str
) -> BenchFeatures:
    """The needed videos' features as an extract task left them; nothing is extracted."""
    wanted = set(needed)
    uri = join(features_root, features_key(videos_uri, cfg))
    local = stage_in(uri, keep=lambda rel: Path(rel).stem in wanted or rel == FAILURES_NAME)
    failures_file = local / FAILURES_NAME
    failures = [
        f for f in read_jsonl(failures_file) if f.get("video_id") in wanted
    ] if failures_file.is_file() else []  # fmt: skip
    found = BenchFeatures(local, failures)
    failed = {f.get("video_id") for f in failures}
    _warn_missing(
        {v for v in wanted if not found.has(v) and v not in failed},
        f"without features in {uri} (was the extract task run for these settings?)",
    )
    return found


def _warn_missing(missing: set[str], why: str) -> None:
    if missing:
        shown = ", ".join(sorted(missing)[:5])
        logger.warning("%d video(s) %s, e.g. %s; their questions are skipped", len(missing),
                       why, shown)  # fmt: skip
