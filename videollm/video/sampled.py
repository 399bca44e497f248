"""What every decoder returns, and the steps they share: placing samples, naming errors."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from videollm.errors import VideoDecodeError
from videollm.video.sampling import Span, span_midpoints


@dataclass
class SampledVideo:
    """Frames sampled from one video.

    Attributes:
        frames: ``T×H×W×3`` uint8 RGB frames (on the GPU when torchcodec decoded there).
        indices: 0-based source frame index of each sampled frame.
        total_frames: Frames in the video (that decode).
        fps: Average frame rate; when the container gives none, frames over the stream's
            duration (0.0 when neither is known).
        duration_s: ``total_frames / fps`` (0.0 when the frame rate is unknown).
        decoder: The decoder that read it (``torchcodec``, ``decord`` or ``pyav``).
    """

    frames: torch.Tensor
    indices: list[int]
    total_frames: int
    fps: float
    duration_s: float
    decoder: str = ""


def sampled_video(
    frames: torch.Tensor, indices: list[int], total: int, fps: float, decoder: str
) -> SampledVideo:
    """A :class:`SampledVideo`, its frame rate sanitised and its duration derived."""
    fps = fps if fps > 0 and math.isfinite(fps) else 0.0
    duration = total / fps if fps > 0 else 0.0
    return SampledVideo(frames, list(indices), total, fps, duration, decoder)


def sample_indices(
    path: Path, total: int, num_frames: int, fps: float, span: Span | None
) -> list[int]:
    """The frames to sample; a span that cannot be placed is the video's decode error."""
    try:
        return span_midpoints(total, num_frames, fps, span)
    except ValueError as err:
        raise VideoDecodeError(str(path), str(err)) from err


# torchcodec and decord prefix their messages with where in their C++ they were raised:
# "SingleStreamDecoder, /__w/.../SingleStreamDecoder.cpp:52, Could not open input file: ...",
# "[04:17:10] /github/workspace/src/video/video_reader.cc:151: Check failed: ...".
_CPP_ORIGIN = re.compile(r"^(?:\w+, \S+\.(?:cpp|cc|h):\d+, |\[[\d:]+\] \S+\.(?:cpp|cc|h):\d+: )")


def first_line(err: BaseException) -> str:
    """The first line of an error, without C++ stack traces or source locations."""
    text = str(err).strip().splitlines()
    line = text[0] if text else type(err).__name__
    return _CPP_ORIGIN.sub("", line)[:300]
