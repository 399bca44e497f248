"""Seek-and-grab with decord: fast random access, but unmaintained since 2021."""

from __future__ import annotations

import functools
import math
from pathlib import Path

import torch

from videollm.video.sampled import SampledVideo, first_line, sample_indices, sampled_video
from videollm.video.sampling import Span


def read_decord(
    path: Path, num_frames: int, span: Span | None = None, threads: int = 0, device: str = "cpu"
) -> SampledVideo:
    """The segment-midpoint frames of ``path``, on the CPU. Raises anything decord raises.

    ``device`` is accepted so every reader takes the same arguments; decord decodes on the CPU.
    """
    import decord  # imported lazily: it loads its own FFmpeg

    # FFmpeg's own messages ("moov atom not found") would interleave with our log lines;
    # the reason still reaches the caller through the exception.
    decord.logging.set_level(decord.logging.QUIET)
    reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=threads)
    try:
        total = len(reader)
        if total <= 0:
            raise RuntimeError("decord reports 0 frames")
        fps = float(reader.get_avg_fps() or 0.0)
        if not (fps > 0 and math.isfinite(fps)):
            # No frame rate in the container (decord then divides by 0): the last frame's end
            # time still gives the duration, which limits such as a maximum length need.
            end = float(reader.get_frame_timestamp(total - 1)[1])
            fps = total / end if end > 0 else 0.0
        indices = sample_indices(path, total, num_frames, fps, span)
        frames = torch.from_numpy(reader.get_batch(indices).asnumpy())
    finally:
        del reader
    return sampled_video(frames, indices, total, fps, "decord")


@functools.cache  # once per process; forked decode workers inherit the answer
def decord_problem() -> str | None:
    """Why decord cannot decode here (no wheel for this platform), or None."""
    try:
        import decord  # noqa: F401
    except Exception as err:
        return first_line(err)
    return None
