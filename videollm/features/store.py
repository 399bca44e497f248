"""Feature files: one ``<video_id>.safetensors`` per video, plus a manifest. Never pickle.

Each file holds one tensor, ``features`` (``tokens×D``, fp16), and string metadata (see
``METADATA_KEYS``). ``extract_config`` is the JSON of the settings that made the features, so
training can check it loads features made the way it expects. ``manifest.jsonl`` gets one line
per finished video; ``failures.jsonl`` one line per video that could not be used.

The only use of pickle is :func:`import_videochatgpt_pickle`, an explicit opt-in that converts
Video-ChatGPT's ``.pkl`` features (unpickling runs code from the file: trusted files only).
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save

from videollm.atomic import atomic_write_bytes
from videollm.config_loader import from_dict
from videollm.errors import FeatureFormatError
from videollm.features.extract_config import ExtractConfig, recorded_config
from videollm.video.decode import SampledVideo

logger = logging.getLogger(__name__)

FEATURES_KEY = "features"
SUFFIX = ".safetensors"
MANIFEST_NAME = "manifest.jsonl"
SHARD_PREFIX = "shard-"
FAILURES_NAME = "failures.jsonl"
METADATA_KEYS = (
    "encoder",
    "layer",
    "pooling",
    "pooling_options",
    "num_frames",
    "frames",
    "fps",
    "duration_s",
    "source",
    "source_sha256",
    "encoder_dtype",
    "decoder",
    "extract_config",
)


def feature_path(out_dir: str | Path, video_id: str) -> Path:
    """Where the features of ``video_id`` live under ``out_dir``.

    Sharded extraction (the pipeline's parallel extract tasks) writes ``shard-NNN/``
    subfolders; a video found in one of them is read from there.
    """
    path = Path(out_dir) / f"{video_id}{SUFFIX}"
    if path.is_file():
        return path
    return next(Path(out_dir).glob(f"{SHARD_PREFIX}*/{glob.escape(video_id)}{SUFFIX}"), path)


def shard_dir(out_dir: str, index: int) -> str:
    """The subfolder (or sub-prefix) shard ``index`` of a sharded extraction writes to."""
    return f"{out_dir.rstrip('/')}/{SHARD_PREFIX}{index:03d}"


def _as_str(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def save_features(
    path: str | Path, tensor: torch.Tensor, metadata: Mapping[str, Any] | None = None
) -> Path:
    """Atomically write ``tensor`` (stored as fp16) and ``metadata`` to ``path``.

    The file is written to a temporary name in the same folder, synced, then renamed, so a
    crash never leaves a half-written ``.safetensors`` that a re-run would mistake for done.

    Args:
        path: Target ``.safetensors`` file.
        tensor: ``tokens×D`` features.
        metadata: Values that are not strings are stored as JSON.

    Returns:
        ``path`` as a ``Path``.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {k: _as_str(v) for k, v in (metadata or {}).items()}
    blob = save({FEATURES_KEY: tensor.detach().to("cpu", torch.float16).contiguous()}, meta)
    atomic_write_bytes(out, blob)
    return out


def read_metadata(path: str | Path) -> dict[str, str]:
    """Metadata of a feature file, checking it has a ``features`` tensor (header only).

    Raises:
        FeatureFormatError: Missing file, not safetensors, or no ``features`` tensor.
    """
    p = Path(path)
    if not p.is_file():
        raise FeatureFormatError(f"feature file {p} does not exist")
    try:
        with safe_open(str(p), framework="pt") as f:
            keys = list(f.keys())
            meta = f.metadata() or {}
    except Exception as err:  # safetensors raises its own SafetensorError and OSError
        reason = f"is not a valid safetensors file: {err}"
        raise FeatureFormatError(f"feature file {p} {reason}") from err
    if FEATURES_KEY not in keys:
        raise FeatureFormatError(f"feature file {p} has no {FEATURES_KEY!r} tensor (has {keys})")
    return dict(meta)


def load_features(path: str | Path) -> tuple[torch.Tensor, dict[str, str]]:
    """Load ``(features, metadata)`` from a feature file.

    Raises:
        FeatureFormatError: Missing file, not safetensors, or no ``features`` tensor.
    """
    p = Path(path)
    meta = read_metadata(p)
    try:
        with safe_open(str(p), framework="pt") as f:
            tensor = f.get_tensor(FEATURES_KEY)
    except Exception as err:
        raise FeatureFormatError(f"feature file {p} is corrupt: {err}") from err
    return tensor, meta


def feature_metadata(
    cfg: ExtractConfig, video: SampledVideo, source: str | Path, source_sha256: str
) -> dict[str, str]:
    """The metadata stored with the features of ``video`` (keys: ``METADATA_KEYS``)."""
    return {
        "encoder": cfg.encoder,
        "layer": str(cfg.layer),
        "pooling": cfg.pooling,
        "pooling_options": json.dumps(cfg.pooling_options, sort_keys=True),
        "num_frames": str(cfg.num_frames),
        "frames": str(len(video.indices)),
        "fps": repr(float(video.fps)),
        "duration_s": repr(float(video.duration_s)),
        "source": str(source),
        "source_sha256": source_sha256,
        # What the encoder ran in (features are stored fp16 either way); a resumed run that
        # would encode in another dtype is refused (features/extract.py).
        "encoder_dtype": encoder_dtype(cfg),
        # Which decoder read the video (informational: every decoder samples the same frames,
        # and their YUV→RGB conversions differ by a level or two at most).
        "decoder": video.decoder,
        "extract_config": json.dumps(recorded_config(cfg), sort_keys=True),
    }


def encoder_dtype(cfg: ExtractConfig) -> str:
    """The dtype the encoder runs in for ``cfg`` (``dtype=auto`` resolved on this machine)."""
    from videollm.features.encoder import dtype_name, resolve_device, resolve_dtype

    return dtype_name(resolve_dtype(cfg.dtype, resolve_device(cfg.device)))


def read_extract_config(metadata: Mapping[str, str]) -> ExtractConfig:
    """The :class:`ExtractConfig` recorded in a feature file's metadata."""
    if "extract_config" not in metadata:
        raise FeatureFormatError("feature metadata has no 'extract_config'")
    return from_dict(ExtractConfig, json.loads(metadata["extract_config"]))


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def append_jsonl(path: str | Path, record: Mapping[str, Any]) -> None:
    """Append one JSON line and fsync, so finished work survives a crash."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record, sort_keys=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    """Records of a JSONL file; a missing file has none. A torn last line is skipped."""
    p = Path(path)
    if not p.exists():
        return
    lines = p.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                logger.warning("%s: ignoring a torn last line", p)
                continue
            raise FeatureFormatError(f"{p}:{i + 1}: not valid JSON") from None


def manifest_record(
    video_id: str,
    file: Path,
    source: str,
    shape: tuple[int, ...] | torch.Size,
    frames: int,
    sha256: str,
) -> dict[str, Any]:
    """One ``manifest.jsonl`` line; ``sha256`` is that of the feature file (for transfers)."""
    return {
        "video_id": video_id,
        "file": file.name,
        "source": source,
        "tokens": int(shape[0]),
        "dim": int(shape[1]),
        "frames": frames,
        "sha256": sha256,
    }


def import_videochatgpt_pickle(
    pkl_path: str | Path, out_dir: str | Path, allow_pickle: bool = False
) -> list[Path]:
    """Convert a Video-ChatGPT features pickle (``{video_id: 356×1024 array}``) to safetensors.

    Args:
        pkl_path: The ``.pkl`` file.
        out_dir: Where ``<video_id>.safetensors`` files and ``manifest.jsonl`` go.
        allow_pickle: Must be True: unpickling can run arbitrary code from the file.

    Returns:
        The files written.

    Raises:
        FeatureFormatError: Not allowed, unreadable, or not a mapping of 2-D arrays.
    """
    src = Path(pkl_path)
    if not allow_pickle:
        raise FeatureFormatError(
            f"refusing to load {src}: pickle files can run arbitrary code when loaded. "
            "Re-run with allow_pickle=True (CLI: allow_pickle=true) only for files you trust."
        )
    import pickle  # the only place videollm unpickles, behind the opt-in above

    try:
        with open(src, "rb") as f:
            data = pickle.load(f)  # explicit, documented opt-in
    except Exception as err:
        raise FeatureFormatError(f"cannot read pickle {src}: {err}") from err
    if not isinstance(data, Mapping):
        raise FeatureFormatError(f"{src}: expected a dict video_id → array, got {type(data)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # Video-ChatGPT made these with its default recipe, which is ExtractConfig's default.
    recipe = ExtractConfig()
    base = {
        "encoder": recipe.encoder,
        "layer": str(recipe.layer),
        "pooling": recipe.pooling,
        "pooling_options": json.dumps(recipe.pooling_options, sort_keys=True),
        "num_frames": str(recipe.num_frames),
        "fps": "0.0",
        "duration_s": "0.0",
        "source": str(src),
        "source_sha256": file_sha256(src),
        "extract_config": json.dumps(recorded_config(recipe), sort_keys=True),
        "imported_from": "videochatgpt_pickle",
    }
    written: list[Path] = []
    for vid, array in data.items():
        tensor = torch.as_tensor(array)
        if tensor.ndim != 2:
            raise FeatureFormatError(f"{src}: {vid!r} has shape {tuple(tensor.shape)}, not 2-D")
        frames = _padded_frames(tensor, recipe.num_frames)
        path = save_features(feature_path(out, str(vid)), tensor, {**base, "frames": str(frames)})
        record = manifest_record(str(vid), path, str(src), tensor.shape, frames, file_sha256(path))
        append_jsonl(out / MANIFEST_NAME, record)
        written.append(path)
    logger.info("imported %d videos from %s", len(written), src)
    return written


def _padded_frames(tensor: torch.Tensor, num_frames: int) -> int:
    """Frames behind Video-ChatGPT features: the non-zero rows of the padded per-frame block."""
    if tensor.shape[0] <= num_frames:
        return -1  # not the spatio-temporal layout; unknown
    return int(tensor[:num_frames].abs().sum(dim=1).gt(0).sum())
