"""Finding videos and naming them.

A video's id is its path relative to the root it was found under, without the extension, with
path separators replaced by ``_``. For a flat folder this is the file stem (Video-ChatGPT's
``v_xxx`` ids); for Breakfast (``P03/cam01/P03_cereals.avi`` under
``BreakfastII_15fps_qvga_sync``) it is ``P03_cam01_P03_cereals``, the name its
``segmentation_coarse`` label files use. Features are stored as ``<video_id>.safetensors`` and
chat records refer to videos by the same id.
"""

from __future__ import annotations

import zlib
from pathlib import Path

from videollm.errors import ConfigError

VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp"}
)


def video_id(path: str | Path, root: str | Path | None = None) -> str:
    """The id of ``path``: relative to ``root`` (if given), extension dropped, ``/`` → ``_``."""
    p = Path(path)
    rel = p.relative_to(root) if root is not None else Path(p.name)
    return "_".join(rel.with_suffix("").parts)


def in_shard(vid: str, index: int, count: int) -> bool:
    """Whether video ``vid`` belongs to shard ``index`` of ``count``.

    A hash of the id, not a position in a listing: every worker agrees on the split without
    seeing the whole list, and a remote worker can download just its own videos.
    """
    return zlib.crc32(vid.encode()) % count == index


def list_videos(source: str | Path) -> list[tuple[str, Path]]:
    """List ``(video_id, path)`` pairs from a folder (recursive), one video or a list file.

    A text file holds one path per line (blank lines and ``#`` comments skipped); relative
    paths are resolved against the file's folder and ids are file stems.

    Raises:
        FileNotFoundError: If ``source`` does not exist.
        ConfigError: If two videos map to the same id.
    """
    src = Path(source)
    if not src.exists():
        raise FileNotFoundError(f"videos source {src} does not exist")
    pairs: list[tuple[str, Path]] = []
    if src.is_file() and src.suffix.lower() in VIDEO_EXTENSIONS:
        return [(video_id(src), src)]  # one video, not a list file
    if src.is_dir():
        for p in sorted(src.rglob("*")):
            if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS:
                pairs.append((video_id(p, src), p))
    else:
        try:
            lines = src.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError:
            raise ConfigError(
                f"videos: {src} is neither a folder, a video file nor a text list of video paths"
            ) from None
        for raw in lines:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            p = Path(line) if Path(line).is_absolute() else src.parent / line
            pairs.append((video_id(p), p))
    seen: dict[str, Path] = {}
    for vid, p in pairs:
        if vid in seen:
            raise ConfigError(
                f"videos {seen[vid]} and {p} both map to id {vid!r} (ids join folders with "
                "'_'); rename one of them"
            )
        seen[vid] = p
    return pairs
