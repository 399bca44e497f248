"""Broken video files for the bad-input tests: what a user's upload or download can look like.

Test helpers, kept out of the library: the demo and the platform never write broken videos.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np


def write_truncated_video(src: str | Path, dst: str | Path, fraction: float = 0.5) -> Path:
    """Copy the first ``fraction`` of ``src``'s bytes to ``dst`` (a download cut short)."""
    data = Path(src).read_bytes()
    out = Path(dst)
    out.write_bytes(data[: int(len(data) * fraction)])
    return out


def write_empty_file(path: str | Path) -> Path:
    """Create a 0-byte file (e.g. ``empty.mp4``)."""
    out = Path(path)
    out.write_bytes(b"")
    return out


def write_text_as_video(path: str | Path) -> Path:
    """Write a text file under a video name (e.g. ``notes.mp4``)."""
    out = Path(path)
    out.write_text("This is not a video, just text renamed to look like one.\n" * 20)
    return out


def write_audio_only(path: str | Path, seconds: float = 0.5, rate: int = 8000) -> Path:
    """Write a silent audio-only Matroska file (e.g. ``song.mkv``): a container without video."""
    out = Path(path)
    samples = int(seconds * rate)
    with av.open(str(out), mode="w", format="matroska") as container:
        stream = container.add_stream("pcm_s16le", rate=rate)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, samples), dtype=np.int16), format="s16", layout="mono"
        )
        frame.sample_rate = rate
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return out
