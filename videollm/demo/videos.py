"""Synthetic demo videos, written with PyAV.

Each clip is a solid background in its class colour (red, green or blue) with a white square
that moves left or right, so a model can learn "what colour" and "which way" from a handful of
tiny videos. There is no ffmpeg binary here; PyAV's bundled encoders do the writing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple

import av
import numpy as np
import torch

logger = logging.getLogger(__name__)

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 200, 40),
    "blue": (30, 40, 220),
}
DIRECTIONS = ("left", "right")

# Container (file suffix) → (PyAV format name, codec, pixel format). ``mov``/cinepak is an old
# codec whose decoder support differs between FFmpeg builds, which exercises the PyAV fallback.
FORMATS: dict[str, tuple[str, str, str]] = {
    "mp4": ("mp4", "libx264", "yuv420p"),
    "avi": ("avi", "mpeg4", "yuv420p"),
    "mkv": ("matroska", "mjpeg", "yuvj420p"),
    "mov": ("mov", "cinepak", "rgb24"),
}


@dataclass
class ClipSpec:
    """What to draw: a ``colour`` background with a white square moving ``direction``."""

    colour: str = "red"
    direction: str = "right"
    num_frames: int = 16
    width: int = 64
    height: int = 48
    square: int = 12


class SyntheticVideo(NamedTuple):
    """One generated clip: where it is and its two labels."""

    path: Path
    colour: str
    direction: str


def render_clip(spec: ClipSpec) -> np.ndarray:
    """Draw ``spec`` as a ``T×H×W×3`` uint8 array."""
    if spec.colour not in COLOURS:
        raise ValueError(f"unknown colour {spec.colour!r}; choose from {sorted(COLOURS)}")
    if spec.direction not in DIRECTIONS:
        raise ValueError(f"unknown direction {spec.direction!r}; choose from {DIRECTIONS}")
    frames = np.empty((spec.num_frames, spec.height, spec.width, 3), dtype=np.uint8)
    frames[:] = COLOURS[spec.colour]
    travel = spec.width - spec.square
    top = (spec.height - spec.square) // 2
    for t in range(spec.num_frames):
        step = round(travel * t / max(1, spec.num_frames - 1))
        left = step if spec.direction == "right" else travel - step
        frames[t, top : top + spec.square, left : left + spec.square] = 255
    return frames


def _pick_codec(codec: str) -> str:
    """Fall back from libx264 to mpeg4 where the PyAV build has no x264."""
    try:
        av.codec.Codec(codec, "w")
        return codec
    except Exception:
        if codec in ("libx264", "h264"):
            logger.debug("encoder %s unavailable, using mpeg4", codec)
            return "mpeg4"
        raise


def write_video(
    path: str | Path,
    frames_or_spec: np.ndarray | torch.Tensor | ClipSpec,
    codec: str | None = None,
    fps: int = 15,
    faststart: bool = False,
) -> Path:
    """Encode frames (``T×H×W×3`` uint8) or a :class:`ClipSpec` to ``path``.

    Args:
        path: Output file; its suffix picks the container (see ``FORMATS``).
        frames_or_spec: The frames, or a spec to render.
        codec: Encoder name; default is the container's entry in ``FORMATS``.
        fps: Frame rate.
        faststart: For mp4/mov, put the index before the frames (as streaming sites do), so
            a truncated copy still has decodable frames.

    Returns:
        ``path`` as a ``Path``.
    """
    out = Path(path)
    suffix = out.suffix.lstrip(".").lower()
    if suffix not in FORMATS:
        raise ValueError(f"unsupported container {suffix!r}; choose from {sorted(FORMATS)}")
    fmt, default_codec, pix_fmt = FORMATS[suffix]
    codec = _pick_codec(codec or default_codec)
    if codec == "mpeg4" and pix_fmt != "yuv420p":
        pix_fmt = "yuv420p"
    if isinstance(frames_or_spec, ClipSpec):
        frames = render_clip(frames_or_spec)
    elif isinstance(frames_or_spec, torch.Tensor):
        frames = frames_or_spec.numpy()
    else:
        frames = frames_or_spec
    frames = np.ascontiguousarray(frames, dtype=np.uint8)
    out.parent.mkdir(parents=True, exist_ok=True)
    options = {"movflags": "faststart"} if faststart and fmt in ("mp4", "mov") else {}
    with av.open(str(out), mode="w", format=fmt, options=options) as container:
        stream = container.add_stream(codec, rate=Fraction(fps))
        stream.width = frames.shape[2]
        stream.height = frames.shape[1]
        stream.pix_fmt = pix_fmt
        if codec == "libx264":
            # Fast, and no B-frame reordering surprises for the tests.
            stream.options = {"preset": "ultrafast", "tune": "zerolatency"}
        for array in frames:
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return out


def make_synthetic_videos(
    out_dir: str | Path,
    n_per_class: int = 4,
    colours: tuple[str, ...] = ("red", "green", "blue"),
    containers: tuple[str, ...] = ("mp4", "avi", "mkv"),
    num_frames: int = 16,
    size: tuple[int, int] = (64, 48),
    fps: int = 15,
) -> list[SyntheticVideo]:
    """Write ``n_per_class`` clips per colour, alternating direction and cycling containers.

    Args:
        out_dir: Folder to write into (created).
        n_per_class: Clips per colour.
        colours: Background colours (the classes).
        containers: File suffixes to cycle through (keys of ``FORMATS``).
        num_frames: Frames per clip.
        size: ``(width, height)``.
        fps: Frame rate.

    Returns:
        ``(path, colour, direction)`` for every clip, in writing order.
    """
    out = Path(out_dir)
    videos: list[SyntheticVideo] = []
    for colour in colours:
        for i in range(n_per_class):
            direction = DIRECTIONS[i % len(DIRECTIONS)]
            suffix = containers[(len(videos)) % len(containers)]
            spec = ClipSpec(colour, direction, num_frames, width=size[0], height=size[1])
            path = write_video(out / f"{colour}_{direction}_{i:02d}.{suffix}", spec, fps=fps)
            videos.append(SyntheticVideo(path, colour, direction))
    logger.info("wrote %d synthetic videos to %s", len(videos), out)
    return videos
