"""torchcodec: decord's maintained successor, decoding on the CPU or on the GPU (NVDEC).

torchcodec does not bundle FFmpeg: it loads the system's libraries (FFmpeg 4 to 8) when it is
imported. Where none loads, :func:`torchcodec_problem` says why and ``decoder=auto`` goes on
with decord. With ``device="cuda"`` frames are decoded by the GPU's video engine and come back
as CUDA tensors, so they never cross PCIe as pixels.
"""

from __future__ import annotations

import functools
import logging
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch

from videollm.errors import VideoDecodeError
from videollm.video.sampled import SampledVideo, first_line, sample_indices, sampled_video
from videollm.video.sampling import Span

logger = logging.getLogger(__name__)


@functools.cache  # once per process; forked decode workers inherit the answer
def torchcodec_problem() -> str | None:
    """Why torchcodec cannot decode here (not installed, no FFmpeg it can load), or None."""
    try:
        import torchcodec.decoders  # noqa: F401
    except ImportError as err:
        return f"{first_line(err)} (pip install torchcodec)"
    except Exception as err:  # RuntimeError when no FFmpeg library loads
        return load_error_summary(str(err))
    return None


# A library the dynamic loader could not find: "libavutil.so.60: cannot open shared object file".
_MISSING_LIBRARY = re.compile(r"(lib[\w.+-]+\.so[\d.]*): cannot open shared object file")
_FFMPEG_LIBRARY = re.compile(r"^lib(av|sw|postproc)")


def load_error_summary(message: str) -> str:
    """What torchcodec's long "Could not load libtorchcodec" error comes down to.

    It tries FFmpeg 8 down to 4 and lists a traceback for each. A library other than
    FFmpeg's that is missing (libpython, say) is what stops the FFmpeg that is installed, so it
    is named first; otherwise no FFmpeg is installed at all.
    """
    missing = list(dict.fromkeys(_MISSING_LIBRARY.findall(message)))
    others = [lib for lib in missing if not _FFMPEG_LIBRARY.match(lib)]
    if others:
        return f"it needs {', '.join(others)}, which is not installed"
    if missing:
        return f"no FFmpeg 4 to 8 shared libraries found ({', '.join(missing)} missing)"
    return first_line(RuntimeError(message))


@functools.cache
def torchcodec_device_problem(device: str) -> str | None:
    """Why torchcodec cannot decode on ``device``, or None (the CPU always works).

    PyPI's torchcodec 0.13.0 is a CPU build: only the CUDA build from PyTorch's index opens a
    decoder on a GPU, so a tiny clip is decoded there once to find out.
    """
    if not device.startswith("cuda"):
        return None
    if not torch.cuda.is_available():
        return "CUDA is not available"
    from torchcodec.decoders import VideoDecoder

    with tempfile.TemporaryDirectory() as tmp:
        clip = _write_probe_clip(Path(tmp) / "probe.mp4")
        try:
            VideoDecoder(str(clip), device=device)[0]
        except Exception as err:  # e.g. "Unsupported device: cuda" from a CPU build
            return f"{first_line(err)} (install torchcodec's CUDA build from PyTorch's index)"
    return None


def _write_probe_clip(path: Path) -> Path:
    """Two black 64×64 frames in H.264 (which every NVDEC decodes) where PyAV has x264."""
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream(codec, rate=1)
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        black = np.zeros((64, 64, 3), dtype=np.uint8)
        for _ in range(2):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(black, format="rgb24")))
        out.mux(stream.encode(None))
    return path


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
    if 0 < total < declared and not _decodes(decoder, total - 1):
        # Fewer packets than the header promises and the last one does not decode: a cut
        # file. (Fewer packets alone can be an edit list that drops frames on purpose.)
        total = _decodable_frames(open_decoder, total - 1)
        _warn_cut(path, total, declared, "the file ends early")
        decoder = open_decoder()  # a failed decode can leave a decoder unusable
    if total == 0:
        raise VideoDecodeError(str(path), "no frames could be decoded (the file ends early)")
    # The stored rate first: the one measured from packets can be off by a rounding (Matroska
    # timestamps are in milliseconds), and decord and PyAV report the stored one.
    fps = float(meta.average_fps_from_header or meta.average_fps or 0.0)
    indices = sample_indices(path, total, num_frames, fps, span)
    try:
        frames = decoder.get_frames_at(indices).data
    except RuntimeError as err:
        if isinstance(err, torch.OutOfMemoryError) or device != "cpu":
            raise  # the GPU's trouble, not the file's: no truncation search on it
        # A cut file whose header says nothing of its length (Matroska): found only now.
        decoded = _decodable_frames(open_decoder, total)
        if decoded == 0:
            raise VideoDecodeError(
                str(path), f"no frames could be decoded ({first_line(err)})"
            ) from err
        _warn_cut(path, decoded, total, first_line(err))
        total = decoded
        indices = sample_indices(path, total, num_frames, fps, span)
        try:
            frames = open_decoder().get_frames_at(indices).data
        except RuntimeError as again:
            raise VideoDecodeError(
                str(path), f"decoding is not repeatable ({first_line(again)})"
            ) from again
    return sampled_video(frames, indices, total, fps, "torchcodec")


def _warn_cut(path: Path, decoded: int, total: int, why: str) -> None:
    logger.warning(
        "%s: only %d of %d frames decode (%s); sampling from those", path, decoded, total, why
    )


def _decodes(decoder: Any, index: int) -> bool:
    """Whether frame ``index`` decodes."""
    try:
        decoder[index]
    except (RuntimeError, IndexError):
        return False
    return True


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
        if _decodes(decoder, mid):
            lo = mid + 1
        else:
            hi = mid
            decoder = open_decoder()
    return lo
