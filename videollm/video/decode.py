"""Read the sampled frames of a video: decord first, PyAV when decord cannot.

Frames are sampled at segment midpoints (:func:`videollm.video.sampling.segment_midpoints`),
exactly as Video-ChatGPT does. decord seeks straight to the wanted frames; PyAV decodes the
stream front to back and keeps the wanted ones, which is slower but opens files decord's
bundled FFmpeg rejects.

Truncated files: if the container is unreadable (an mp4 cut before its ``moov`` index) the
file raises :class:`~videollm.errors.VideoDecodeError`. If some frames still decode (a cut
Matroska or AVI stream), the video is treated as being as long as what decodes and frames are
sampled from that part, with a warning: a partly downloaded video is still useful, and the
metadata records the frame count that was actually used.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import torch
import torch.nn.functional as F

from videollm.errors import VideoDecodeError
from videollm.video.sampling import Span, segment_midpoints, span_midpoints

logger = logging.getLogger(__name__)

# ftyp brands of HEIF/AVIF still images: ISO-BMFF files like mp4, which FFmpeg also opens.
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"mif1", b"avif"})


@dataclass
class SampledVideo:
    """Frames sampled from one video.

    Attributes:
        frames: ``T×H×W×3`` uint8 RGB frames.
        indices: 0-based source frame index of each sampled frame.
        total_frames: Frames in the video (that decode).
        fps: Average frame rate; when the container gives none, frames over the stream's
            duration (0.0 when neither is known).
        duration_s: ``total_frames / fps`` (0.0 when the frame rate is unknown).
    """

    frames: torch.Tensor
    indices: list[int]
    total_frames: int
    fps: float
    duration_s: float


def image_format(head: bytes) -> str | None:
    """The image format whose signature starts ``head`` (a file's first 16 bytes), or None.

    FFmpeg decodes a still image as a one-frame video, so an image renamed ``.mp4`` would
    otherwise be extracted or answered as if it were a clip. (A raw Motion-JPEG stream also
    starts like a JPEG and is refused too; real videos come in a container.)
    """
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":  # AVI is RIFF too, with "AVI "
        return "WebP"
    if head[:2] == b"BM" and head[6:10] == b"\0\0\0\0":  # "BM" alone is too weak a signature
        return "BMP"
    if head[:4] in (b"II*\0", b"MM\0*"):
        return "TIFF"
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return "HEIF/AVIF"
    return None


#: ``decoder`` choices: ``auto`` tries decord, then PyAV when decord cannot read a file.
DECODERS = ("auto", "decord", "pyav")


def read_video(
    path: str | Path,
    num_frames: int = 100,
    resize_shortest: int | None = None,
    decode_threads: int = 0,
    decoder: str = "auto",
    span: Span | None = None,
) -> SampledVideo:
    """Decode ``min(num_frames, total)`` segment-midpoint frames of ``path``.

    Every decoder samples the same frames (segment midpoints of the frames that decode).

    Args:
        path: Video file.
        num_frames: Most frames to sample.
        resize_shortest: If set, resize so the shorter side is this many pixels
            (aspect ratio kept, bilinear with antialiasing).
        decode_threads: decord decoder threads; 0 lets FFmpeg choose. Decode workers that
            run side by side should use 1 so they do not fight over cores.
        decoder: One of :data:`DECODERS`. ``pyav`` alone avoids decord (unmaintained since
            2021) where it misbehaves.
        span: ``(start, end)`` in seconds: sample only that part of the video
            (:func:`~videollm.video.sampling.span_midpoints`).

    Returns:
        The sampled frames and what is known about the video.

    Raises:
        VideoDecodeError: The file is missing, empty, an image or not a video, no frame
            decodes, or ``span`` cannot be placed in it.
    """
    p = Path(path)
    if not p.exists():
        raise VideoDecodeError(str(p), "file does not exist")
    if not p.is_file():
        raise VideoDecodeError(str(p), "not a regular file")
    if p.stat().st_size == 0:
        raise VideoDecodeError(str(p), "file is empty")
    with p.open("rb") as f:
        kind = image_format(f.read(16))
    if kind is not None:
        raise VideoDecodeError(str(p), f"{p} is a {kind} image, not a video")
    if decoder not in DECODERS:
        raise ValueError(f"decoder: {decoder!r} is not one of {', '.join(DECODERS)}")
    if decoder == "pyav":
        video = _read_pyav_only(p, num_frames, span)
    elif decoder == "decord":
        try:
            video = _read_decord(p, num_frames, decode_threads, span)
        except VideoDecodeError:
            raise
        except Exception as err:
            raise VideoDecodeError(str(p), f"decord failed: {_short(err)}") from err
    else:
        video = _read_any(p, num_frames, decode_threads, span)
    if resize_shortest is not None:
        video.frames = resize_shortest_edge(video.frames, resize_shortest)
    return video


def _indices(path: Path, total: int, num_frames: int, fps: float, span: Span | None) -> list[int]:
    """The frames to sample; a span that cannot be placed is the video's decode error."""
    try:
        return span_midpoints(total, num_frames, fps, span)
    except ValueError as err:
        raise VideoDecodeError(str(path), str(err)) from err


def _read_pyav_only(p: Path, num_frames: int, span: Span | None) -> SampledVideo:
    try:
        return _read_pyav(p, num_frames, span)
    except VideoDecodeError:
        raise
    except Exception as err:
        raise VideoDecodeError(str(p), f"PyAV failed: {_short(err)}") from err


def _read_any(p: Path, num_frames: int, decode_threads: int, span: Span | None) -> SampledVideo:
    """decord, then PyAV when decord cannot read the file."""
    try:
        return _read_decord(p, num_frames, decode_threads, span)
    except Exception as decord_err:
        # A span error too: decord may know no frame rate where PyAV reads one.
        logger.debug("decord could not read %s (%s); trying PyAV", p, decord_err)
        try:
            return _read_pyav(p, num_frames, span)
        except VideoDecodeError:
            raise
        except Exception as pyav_err:
            raise VideoDecodeError(
                str(p),
                f"decord and PyAV both failed: decord: {_short(decord_err)}; "
                f"PyAV: {_short(pyav_err)}",
            ) from pyav_err


def read_frames(
    paths: list[Path], num_frames: int = 100, resize_shortest: int | None = None
) -> SampledVideo:
    """A video given as its frames, one image file each, in order: sampled as a video is.

    The segment-midpoint frames of ``paths`` (``min(num_frames, len(paths))`` of them) are
    decoded, so N images give the frames a video of N frames would. This is how OpenAI-style
    clients send video (GPT-4o takes it so, lmms-eval sends it so).

    Raises:
        VideoDecodeError: An image does not decode, or the frames differ in size.
    """
    frames = []
    for i in segment_midpoints(len(paths), num_frames):
        try:
            with av.open(str(paths[i])) as container:
                frame = next(container.decode(video=0))
        except (av.error.FFmpegError, StopIteration, OSError) as err:
            raise VideoDecodeError(f"frame {i}", f"frame {i} is not a readable image") from err
        frames.append(torch.from_numpy(frame.to_ndarray(format="rgb24")))
    if not frames:
        raise VideoDecodeError("frames", "no frames")
    if len({f.shape for f in frames}) > 1:
        raise VideoDecodeError("frames", "the frames differ in size; a video's frames share one")
    sampled = _sampled(
        torch.stack(frames), segment_midpoints(len(paths), num_frames), len(paths), 0.0
    )
    if resize_shortest is not None:
        sampled.frames = resize_shortest_edge(sampled.frames, resize_shortest)
    return sampled


def resize_shortest_edge(frames: torch.Tensor, size: int) -> torch.Tensor:
    """Resize ``T×H×W×3`` uint8 frames so ``min(H, W) == size``, keeping the aspect ratio."""
    h, w = frames.shape[1], frames.shape[2]
    if min(h, w) == size:
        return frames
    scale = size / min(h, w)
    new_h, new_w = (size, max(1, round(w * scale))) if h <= w else (max(1, round(h * scale)), size)
    # A T×H×W×3 tensor seen as T×3×H×W is channels_last, the layout of torch's fast uint8
    # antialiased resize (no float copy of the frames needed).
    x = frames.permute(0, 3, 1, 2)
    x = F.interpolate(x, size=(new_h, new_w), mode="bilinear", antialias=True, align_corners=False)
    return x.permute(0, 2, 3, 1).contiguous()


def _short(err: BaseException) -> str:
    """First line of an error, without decord's long C++ stack traces."""
    text = str(err).strip().splitlines()
    return (text[0] if text else type(err).__name__)[:300]


def _read_decord(
    path: Path, num_frames: int, threads: int, span: Span | None = None
) -> SampledVideo:
    """Seek-and-grab with decord. Raises anything decord raises."""
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
        indices = _indices(path, total, num_frames, fps, span)
        frames = torch.from_numpy(reader.get_batch(indices).asnumpy())
    finally:
        del reader
    return _sampled(frames, indices, total, fps)


def _read_pyav(path: Path, num_frames: int, span: Span | None = None) -> SampledVideo:
    """Sequential decode with PyAV, keeping the segment-midpoint frames."""
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
    indices = _indices(path, total, num_frames, fps, span)
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
        indices = _indices(path, total, num_frames, fps, span)
        _, kept, err = _decode_pass(path, set(indices))
        if len(kept) < len(indices):
            raise VideoDecodeError(str(path), f"decoding is not repeatable ({err})")
    frames = torch.from_numpy(np.stack([kept[i] for i in indices]))
    return _sampled(frames, indices, total, fps)


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
        return count, kept, _short(err)
    return count, kept, None


def _sampled(frames: torch.Tensor, indices: list[int], total: int, fps: float) -> SampledVideo:
    fps = fps if fps > 0 and math.isfinite(fps) else 0.0
    duration = total / fps if fps > 0 else 0.0
    return SampledVideo(frames, list(indices), total, fps, duration)
