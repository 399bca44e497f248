"""Frame sampling shared by extraction and annotation conversion.

Video-ChatGPT samples ``min(num_frames, total)`` frames at segment midpoints: the video is cut
into that many equal segments and the middle frame of each is kept. Converters that talk about
frame ranges (Breakfast) must use the same mapping so answers point at feature positions.
"""

from __future__ import annotations

import math

#: A part of a video, ``(start, end)`` in seconds.
Span = tuple[float, float]


def num_sampled(total_frames: int, num_frames: int) -> int:
    """How many frames are sampled from a video of ``total_frames`` frames."""
    return max(0, min(num_frames, total_frames))


def segment_midpoints(total_frames: int, num_frames: int) -> list[int]:
    """0-based indices of the segment-midpoint frames (Video-ChatGPT's sampling)."""
    n = num_sampled(total_frames, num_frames)
    if n == 0:
        return []
    seg = total_frames / n
    return [min(total_frames - 1, int(seg * i + seg / 2)) for i in range(n)]


def frame_to_sample(frame: int, total_frames: int, num_frames: int) -> int:
    """Map a 0-based source frame to the index of the sampled frame whose segment holds it."""
    n = num_sampled(total_frames, num_frames)
    if n == 0:
        raise ValueError("video has no frames")
    frame = min(max(frame, 0), total_frames - 1)
    return min(n - 1, int(frame * n / total_frames))


def span_midpoints(
    total_frames: int,
    num_frames: int,
    fps: float,
    span: Span | None = None,
) -> list[int]:
    """Segment midpoints of the frames inside ``span`` (seconds), or of the whole video.

    A benchmark that asks about part of a video (MVBench's ``start``/``end``) samples only
    that part, the same way: the frames from ``round(start·fps)`` to ``round(end·fps)``
    (clipped to the video) are cut into ``num_frames`` segments.

    Raises:
        ValueError: ``span`` is given but the frame rate is unknown, or it lies outside the
            video (the message says why).
    """
    if span is None:
        return segment_midpoints(total_frames, num_frames)
    start, end = span
    if not (math.isfinite(start) and math.isfinite(end) and 0 <= start <= end):
        raise ValueError(f"{start!r} to {end!r} is not a span of seconds (0 <= start <= end)")
    if not fps > 0:
        raise ValueError(f"the video has no frame rate, so the span {start:g}-{end:g} s "
                         "cannot be placed")  # fmt: skip
    first = max(0, round(start * fps))
    last = min(total_frames - 1, round(end * fps))
    if last < first:
        raise ValueError(f"the span {start:g}-{end:g} s lies outside the video "
                         f"({total_frames / fps:.1f} s)")  # fmt: skip
    return [first + i for i in segment_midpoints(last - first + 1, num_frames)]
