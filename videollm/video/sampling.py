"""Frame sampling shared by extraction and annotation conversion.

Video-ChatGPT samples ``min(num_frames, total)`` frames at segment midpoints: the video is cut
into that many equal segments and the middle frame of each is kept. Converters that talk about
frame ranges (Breakfast) must use the same mapping so answers point at feature positions.
"""

from __future__ import annotations


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
