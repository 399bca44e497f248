"""Train/validation split of chat records, grouped by video.

Splitting by record would put questions about the same video on both sides and make validation
scores measure memorisation, so whole videos go to one side or the other.
"""

from __future__ import annotations

import random
from typing import Any

from videollm.errors import ConfigError


def split_by_video(
    records: list[dict[str, Any]], val_fraction: float, seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Split records into ``(train, val)`` so that no video is in both.

    The split depends only on the set of video ids and ``seed`` (not on record order), so it is
    reproducible. ``round(n_videos * val_fraction)`` videos go to validation; when
    ``val_fraction > 0`` and there are at least two videos, validation gets at least one and
    training keeps at least one. Records keep their input order within each split.

    Args:
        records: Chat records (each with a ``video`` key).
        val_fraction: Fraction of videos for validation, in ``[0, 1)``.
        seed: Seed of the shuffle that picks validation videos.

    Returns:
        ``(train, val)`` lists of the same record objects.

    Raises:
        ConfigError: If ``val_fraction`` is outside ``[0, 1)``.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ConfigError(f"val_fraction: must be in [0, 1), got {val_fraction!r}")
    # Sorted first so that the shuffle result does not depend on input order.
    videos = sorted({rec["video"] for rec in records})
    n_val = 0
    if val_fraction > 0 and len(videos) >= 2:
        n_val = min(max(round(len(videos) * val_fraction), 1), len(videos) - 1)
    random.Random(seed).shuffle(videos)
    val_videos = set(videos[:n_val])
    train = [rec for rec in records if rec["video"] not in val_videos]
    val = [rec for rec in records if rec["video"] in val_videos]
    return train, val
