"""What the HTTP tests of the service share: calls, the error shape, odd uploads, metrics."""

from __future__ import annotations

import io
import json
import re
import struct
import zlib
from pathlib import Path

import av
import httpx
import numpy as np
from bento_server import TOKEN, Server

AUTH = {"Authorization": f"Bearer {TOKEN}"}
QUESTION = "What colour is the video?"


def video_of(colour_data: dict[str, Path], colour: str) -> Path:
    """The first test video of ``colour``."""
    return next(p for p in sorted(colour_data["videos"].iterdir()) if p.name.startswith(colour))


def chat(server: Server, path: Path, name: str | None = None, **fields: str | None):
    """POST /chat; a field given as None is left out of the form."""
    data = {"question": QUESTION, "max_new_tokens": "8", **fields}
    data = {k: v for k, v in data.items() if v is not None}
    files = {"video": (name or path.name, path.read_bytes(), "video/mp4")}
    return httpx.post(f"{server.url}/chat", data=data, files=files, headers=AUTH, timeout=60)


def error_of(response: httpx.Response) -> str:
    """The ``error`` of a 4xx body, checking it has the one shape: a JSON ``{"error": ...}``."""
    assert response.headers["content-type"] == "application/json", response.headers
    body = response.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), str), body
    return body["error"]


def turns(*values: str) -> str:
    """A ``history`` form field: ``values`` as alternating human, gpt turns."""
    roles = ("human", "gpt")
    return json.dumps([{"from": roles[i % 2], "value": v} for i, v in enumerate(values)])


def png(path: Path, size: int = 16) -> Path:
    """A valid RGB PNG (no PIL needed): signature, IHDR, one zlib IDAT, IEND."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    rows = b"".join(b"\0" + b"\x00\xff\x00" * size for _ in range(size))  # filter 0, green
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)  # 8-bit RGB
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )
    return path


def jpeg(path: Path, size: int = 16) -> Path:
    """A one-image JPEG from PyAV's MJPEG encoder."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="image2pipe") as out:
        stream = out.add_stream("mjpeg", rate=1)
        stream.width = stream.height = size
        stream.pix_fmt = "yuvj420p"
        pixels = np.zeros((size, size, 3), np.uint8)
        pixels[..., 1] = 255
        frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
        for packet in [*stream.encode(frame), *stream.encode()]:
            out.mux(packet)
    path.write_bytes(buf.getvalue())
    return path


def counters(server: Server, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Every sample of the Prometheus counter ``name``, keyed by its sorted labels."""
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    samples = {}
    for labels, value in re.findall(rf"^{name}(?:\{{([^}}]*)\}})? (\S+)$", text, re.M):
        key = tuple(sorted(re.findall(r'(\w+)="([^"]*)"', labels)))
        samples[key] = float(value)
    return samples
