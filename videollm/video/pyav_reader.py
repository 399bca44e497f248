"""Front-to-back decoding with PyAV: slower, but it opens what other decoders reject.

Truncated files: if some frames still decode (a cut Matroska or AVI stream), the video is
treated as being as long as what decodes and frames are sampled from that part, with a
warning: a partly downloaded video is still useful, and the metadata records the frame count
that was actually used.
"""

from __future__ import annotations

import logging
from pathlib import Path

import av
import numpy as np
import torch

from videollm.errors import VideoDecodeError
from videollm.video.sampled import SampledVideo, first_line, sample_indices, sampled_video
from videollm.video.sampling import Span

logger = logging.getLogger(__name__)


def read_pyav(
    path: Path, num_frames: int, span: Span | None = None, threads: int = 0, device: str = "cpu"
) -> SampledVideo:
    """The segment-midpoint frames of ``path``, on the CPU.

    ``threads`` and ``device`` are accepted so every reader takes the same arguments; PyAV
    lets FFmpeg pick its threads and decodes on the CPU.

    Raises:
        VideoDecodeError: No video stream, no frame decodes, or the span cannot be placed.
        av.error.FFmpegError: The container cannot be opened.
    """
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise VideoDecodeError(str(path), "no video stream")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else 0.0
        declared = int(stream.frames or 0)
        seconds = _seconds(container, stream)
    total = declared
    if total <= 0:
        # Some containers (raw streams, some AVIs) do not store a frame count: count by decoding.
        total, _, _ = _decode_pass(path, set())
    if total <= 0:
        raise VideoDecodeError(str(path), "no frames could be decoded")
    if not fps and seconds > 0:
        fps = total / seconds  # no frame rate stored: derive it so the duration is known
    indices = sample_indices(path, total, num_frames, fps, span)
    decoded, kept, err = _decode_pass(path, set(indices))
    if len(kept) < len(indices):
        # Truncated: the stream ended (or broke) before the last wanted frame, so ``decoded``
        # is how many frames really decode. Sample again from those.
        if decoded == 0:
            raise VideoDecodeError(str(path), f"no frames could be decoded ({err or 'empty'})")
        logger.warning(
            "%s: only %d of %d frames decode (%s); sampling from those",
            path,
            decoded,
            total,
            err or "stream ended early",
        )
        total = decoded
        indices = sample_indices(path, total, num_frames, fps, span)
        _, kept, err = _decode_pass(path, set(indices))
        if len(kept) < len(indices):
            raise VideoDecodeError(str(path), f"decoding is not repeatable ({err})")
    frames = torch.from_numpy(np.stack([kept[i] for i in indices]))
    return sampled_video(frames, indices, total, fps, "pyav")


def _seconds(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> float:
    """The video stream's duration from the container (0.0 when it does not say)."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / av.time_base
    return 0.0


def _decode_pass(path: Path, wanted: set[int]) -> tuple[int, dict[int, np.ndarray], str | None]:
    """Decode front to back; return (frames decoded, wanted frames as RGB arrays, error).

    Stops right after the last wanted frame, so ``frames decoded`` is the true frame count
    only when ``wanted`` is empty or not all wanted frames were found.
    """
    kept: dict[int, np.ndarray] = {}
    count = 0
    last = max(wanted) if wanted else -1
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                if count in wanted:
                    kept[count] = frame.to_ndarray(format="rgb24")
                count += 1
                if wanted and count > last:
                    break  # nothing more to collect
    except (av.error.FFmpegError, OSError) as err:
        return count, kept, first_line(err)
    return count, kept, None
