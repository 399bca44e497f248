"""torchcodec: decord's maintained successor, decoding on the CPU or on the GPU (NVDEC).

torchcodec does not bundle FFmpeg: it loads the system's libraries (FFmpeg 4 to 8) when it is
imported. Where none loads, :func:`torchcodec_problem` says why and ``decoder=auto`` goes on
with decord. With ``device="cuda"`` frames are decoded by the GPU's video engine and come back
as CUDA tensors, so they never cross PCIe as pixels.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from videollm.errors import VideoDecodeError
from videollm.video.sampled import SampledVideo, first_line, sample_indices, sampled_video
from videollm.video.sampling import Span

logger = logging.getLogger(__name__)


@functools.cache  # once per process; forked decode workers inherit the answer
def torchcodec_problem() -> str | None:
    """Why torchcodec cannot decode here (not installed, no FFmpeg it can load), or None."""
    try:
        import torchcodec.decoders  # noqa: F401
    except Exception as err:  # ImportError, or RuntimeError when no FFmpeg library loads
        return first_line(err)
    return None


def read_torchcodec(
    path: Path, num_frames: int, span: Span | None = None, threads: int = 0, device: str = "cpu"
) -> SampledVideo:
    """The segment-midpoint frames of ``path``, on ``device``.

    Exact seek mode: the file's packets are scanned once, so frame ``i`` is the ``i``-th
    frame in display order, as decord and PyAV count them. A truncated file whose index
    promises more frames than decode is sampled from the frames that do, with a warning.

    Raises:
        VideoDecodeError: No video stream, no frame decodes, or the span cannot be placed.
        RuntimeError: torchcodec cannot open the file (its message says why).
    """
    from torchcodec.decoders import VideoDecoder

    def open_decoder() -> VideoDecoder:
        return VideoDecoder(
            str(path), dimension_order="NHWC", num_ffmpeg_threads=threads, device=device
        )

    try:
        decoder = open_decoder()
    except ValueError as err:
        # torchcodec opens an audio-only container, then finds no best video stream.
        if "video stream" in str(err):
            raise VideoDecodeError(str(path), "no video stream") from err
        raise
    meta = decoder.metadata
    total = len(decoder)
    if total <= 0:
        raise VideoDecodeError(str(path), "no frames could be decoded")
    declared = meta.num_frames_from_header or 0
    if 0 < total < declared:
        # Fewer packets than the header promises: a cut file, whose last packet may be cut
        # too. Count what really decodes, as PyAV does by decoding it.
        decoded = _decodable_frames(open_decoder, total)
        decoder = open_decoder()
        logger.warning(
            "%s: only %d of %d frames decode (the file ends early); sampling from those",
            path,
            decoded,
            declared,
        )
        total = decoded
        if total == 0:
            raise VideoDecodeError(str(path), "no frames could be decoded (the file ends early)")
    # The stored rate first: the one measured from packets can be off by a rounding (Matroska
    # timestamps are in milliseconds), and decord and PyAV report the stored one.
    fps = float(meta.average_fps_from_header or meta.average_fps or 0.0)
    indices = sample_indices(path, total, num_frames, fps, span)
    try:
        frames = decoder.get_frames_at(indices).data
    except RuntimeError as err:
        decoded = _decodable_frames(open_decoder, total)
        if decoded == 0:
            raise VideoDecodeError(
                str(path), f"no frames could be decoded ({first_line(err)})"
            ) from err
        logger.warning(
            "%s: only %d of %d frames decode (%s); sampling from those",
            path,
            decoded,
            total,
            first_line(err),
        )
        total = decoded
        indices = sample_indices(path, total, num_frames, fps, span)
        try:
            frames = open_decoder().get_frames_at(indices).data
        except RuntimeError as again:
            raise VideoDecodeError(
                str(path), f"decoding is not repeatable ({first_line(again)})"
            ) from again
    return sampled_video(frames, indices, total, fps, "torchcodec")


def _decodable_frames(open_decoder: Callable[[], Any], total: int) -> int:
    """How many leading frames decode: a truncated file decodes up to where it was cut.

    A binary search (each probe seeks to the keyframe before it), so a cut file costs a few
    GOPs of decoding, not a pass over the whole video. A probe that fails can leave the
    decoder unusable for the next, so each failure opens the file again (a packet scan, no
    decoding).
    """
    decoder = open_decoder()
    lo, hi = 0, total  # frames [0, lo) decode; frame hi does not (hi == total: not probed)
    while lo < hi:
        mid = (lo + hi) // 2
        try:
            decoder[mid]
        except (RuntimeError, IndexError):
            hi = mid
            decoder = open_decoder()
        else:
            lo = mid + 1
    return lo
