"""Read the sampled frames of a video with torchcodec, decord or PyAV.

Frames are sampled at segment midpoints (:func:`videollm.video.sampling.segment_midpoints`),
exactly as Video-ChatGPT does, and every decoder samples the same frames. ``decoder=auto``
tries the decoders that load here in order of preference: torchcodec (maintained, seeks, can
decode on the GPU), decord (seeks, unmaintained since 2021), then PyAV (decodes front to back:
slower, but it opens files the others reject and samples what a truncated file still holds).
Each one gets the files the one before could not read.

An unreadable container (an mp4 cut before its ``moov`` index, a text file) raises
:class:`~videollm.errors.VideoDecodeError` naming the file and each decoder's reason.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import av
import torch
import torch.nn.functional as F

from videollm.errors import ConfigError, VideoDecodeError
from videollm.video.decord_reader import decord_problem, read_decord
from videollm.video.pyav_reader import read_pyav
from videollm.video.sampled import SampledVideo, first_line, sampled_video
from videollm.video.sampling import Span, segment_midpoints
from videollm.video.torchcodec_reader import read_torchcodec, torchcodec_problem

__all__ = [
    "DECODERS",
    "SampledVideo",
    "auto_decoders",
    "check_decoder",
    "decoder_problem",
    "read_frames",
    "read_video",
    "resize_shortest_edge",
]

logger = logging.getLogger(__name__)

# ftyp brands of HEIF/AVIF still images: ISO-BMFF files like mp4, which FFmpeg also opens.
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"mif1", b"avif"})

#: A reader: ``(path, num_frames, span, threads, device)`` to the sampled frames.
Reader = Callable[[Path, int, Span | None, int, str], SampledVideo]

#: The decoders in ``auto``'s order of preference, with the name errors call them by.
_READERS: dict[str, tuple[str, Reader]] = {
    "torchcodec": ("torchcodec", read_torchcodec),
    "decord": ("decord", read_decord),
    "pyav": ("PyAV", read_pyav),
}

#: ``decoder`` choices.
DECODERS = ("auto", *_READERS)

#: Frames resized at a time on a GPU: 16 frames of 1080p are ~200 MB in fp16.
_GPU_RESIZE_FRAMES = 16


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


def decoder_problem(decoder: str) -> str | None:
    """Why ``decoder`` cannot run here (not installed, no FFmpeg it loads), or None."""
    if decoder == "torchcodec":
        return torchcodec_problem()
    if decoder == "decord":
        return decord_problem()
    return None  # PyAV is a dependency and bundles its FFmpeg


def auto_decoders() -> list[str]:
    """The decoders ``auto`` tries, in order: those of torchcodec, decord, PyAV that load."""
    return [name for name in _READERS if decoder_problem(name) is None]


def check_decoder(decoder: str) -> None:
    """Refuse a decoder that is unknown or cannot run on this machine.

    Raises:
        ConfigError: The name is not in :data:`DECODERS`, or that decoder does not load here
            (the message says why and what to do).
    """
    if decoder not in DECODERS:
        raise ConfigError(f"decoder: {decoder!r} is not one of {', '.join(DECODERS)}")
    if decoder != "auto" and (problem := decoder_problem(decoder)) is not None:
        hint = ""
        if decoder == "decord":
            hint = "decord has wheels for Linux x86_64 and Windows only, "
        elif "FFmpeg" in problem:
            hint = "install FFmpeg's shared libraries (e.g. apt-get install ffmpeg), or "
        raise ConfigError(
            f"decoder: {decoder} cannot decode on this machine ({problem}); {hint}use decoder=auto"
        )


def read_video(
    path: str | Path,
    num_frames: int = 100,
    resize_shortest: int | None = None,
    decode_threads: int = 0,
    decoder: str = "auto",
    span: Span | None = None,
    device: str = "cpu",
) -> SampledVideo:
    """Decode ``min(num_frames, total)`` segment-midpoint frames of ``path``.

    Every decoder samples the same frames (segment midpoints of the frames that decode).

    Args:
        path: Video file.
        num_frames: Most frames to sample.
        resize_shortest: If set, resize so the shorter side is this many pixels
            (aspect ratio kept, bilinear with antialiasing).
        decode_threads: Decoder threads; 0 lets FFmpeg choose. Decode workers that run side
            by side should use 1 so they do not fight over cores.
        decoder: One of :data:`DECODERS`; a named one is the only one tried.
        span: ``(start, end)`` in seconds: sample only that part of the video
            (:func:`~videollm.video.sampling.span_midpoints`).
        device: Where torchcodec decodes: ``cpu``, or ``cuda``/``cuda:N`` for the GPU's
            video decoder (the frames then stay on that GPU). decord and PyAV decode on the
            CPU whatever it says.

    Returns:
        The sampled frames and what is known about the video.

    Raises:
        VideoDecodeError: The file is missing, empty, an image or not a video, no frame
            decodes, or ``span`` cannot be placed in it.
        ConfigError: ``decoder`` is unknown or does not load here (:func:`check_decoder`).
    """
    check_decoder(decoder)
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
    chain = auto_decoders() if decoder == "auto" else [decoder]
    video = _read_first(p, chain, num_frames, span, decode_threads, device)
    if resize_shortest is not None:
        video.frames = resize_shortest_edge(video.frames, resize_shortest)
    return video


def _read_first(
    path: Path, chain: list[str], num_frames: int, span: Span | None, threads: int, device: str
) -> SampledVideo:
    """The first of ``chain``'s readers that reads ``path``; each failure passes it on.

    A span error passes it on too: one decoder may know no frame rate where another reads
    one. A lone decoder's own :class:`VideoDecodeError` (e.g. "no video stream") is raised as
    it is; when several were tried, the error gives each one's reason.
    """
    reasons: list[tuple[str, str]] = []  # (decoder, why it failed)
    for name in chain:
        label, reader = _READERS[name]
        try:
            return reader(path, num_frames, span, threads, device)
        except VideoDecodeError as err:
            if len(chain) == 1:
                raise
            reasons.append((label, err.reason))
            last: Exception = err
        except torch.OutOfMemoryError:
            raise  # the machine's trouble, not the file's: another decoder would not help
        except Exception as err:
            reasons.append((label, first_line(err)))
            last = err
        logger.debug("could not read %s with %s: %s", path, *reasons[-1])
    if len(chain) > 1 and len({why for _, why in reasons}) == 1:
        raise VideoDecodeError(str(path), reasons[0][1]) from last  # e.g. a span off the end
    labels = [label for label, _ in reasons]
    if len(labels) == 1:
        who = labels[0]
    else:
        who = f"{', '.join(labels[:-1])} and {labels[-1]} {'both' if len(labels) == 2 else 'all'}"
    details = reasons[0][1] if len(reasons) == 1 else "; ".join(f"{a}: {b}" for a, b in reasons)
    raise VideoDecodeError(str(path), f"{who} failed: {details}") from last


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
    sampled = sampled_video(
        torch.stack(frames), segment_midpoints(len(paths), num_frames), len(paths), 0.0, "pyav"
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
    # antialiased resize on the CPU (no float copy of the frames needed).
    x = frames.permute(0, 3, 1, 2)
    if x.device.type == "cpu":
        x = F.interpolate(x, (new_h, new_w), mode="bilinear", antialias=True, align_corners=False)
        return x.permute(0, 2, 3, 1).contiguous()
    # On a GPU (frames torchcodec decoded there) the antialiased kernel takes floats: fp16, a
    # few frames at a time, so the copy stays small beside the encoder (0..255 and the
    # interpolated values are exact enough in fp16 to round to the same uint8).
    out = torch.empty((len(x), 3, new_h, new_w), dtype=torch.uint8, device=x.device)
    for i in range(0, len(x), _GPU_RESIZE_FRAMES):
        part = x[i : i + _GPU_RESIZE_FRAMES].half()
        part = F.interpolate(
            part, (new_h, new_w), mode="bilinear", antialias=True, align_corners=False
        )
        out[i : i + _GPU_RESIZE_FRAMES] = part.round_().clamp_(0, 255).to(torch.uint8)
    return out.permute(0, 2, 3, 1).contiguous()
