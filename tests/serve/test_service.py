"""The BentoML service over real HTTP: answers, bad input, concurrency, readiness, auth."""

from __future__ import annotations

import io
import json
import re
import shutil
import struct
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import av
import httpx
import numpy as np
import pytest
from bento_server import TOKEN, start_server, stop_server
from safetensors.torch import load_file

from videollm.demo.videos import ClipSpec, write_truncated_video, write_video

AUTH = {"Authorization": f"Bearer {TOKEN}"}
QUESTION = "What colour is the video?"


def _video(colour_data, colour: str) -> Path:
    return next(p for p in sorted(colour_data["videos"].iterdir()) if p.name.startswith(colour))


def _chat(server, path: Path, name: str | None = None, **fields):
    """POST /chat; a field given as None is left out of the form."""
    data = {"question": QUESTION, "max_new_tokens": "8", **fields}
    data = {k: v for k, v in data.items() if v is not None}
    files = {"video": (name or path.name, path.read_bytes(), "video/mp4")}
    return httpx.post(f"{server.url}/chat", data=data, files=files, headers=AUTH, timeout=60)


def _png(path: Path, size: int = 16) -> Path:
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


def _jpeg(path: Path, size: int = 16) -> Path:
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


def _turns(*values: str) -> str:
    """A ``history`` form field: ``values`` as alternating human, gpt turns."""
    roles = ("human", "gpt")
    return json.dumps([{"from": roles[i % 2], "value": v} for i, v in enumerate(values)])


def _error(response) -> str:
    body = response.json()
    assert isinstance(body, dict), body  # every 4xx has one shape: {"error": ...}
    return body["error"]


@pytest.mark.slow
def test_chat_answers_with_timings(server, colour_data):
    for colour in ("red", "green", "blue"):
        response = _chat(server, _video(colour_data, colour))
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["answer"] == colour
        assert body["model_version"] == "ckpt"
        assert set(body["timings"]) == {"decode_ms", "encode_ms", "generate_ms"}
        assert all(v > 0 for v in body["timings"].values())


@pytest.mark.slow
def test_bentoml_client_chat_and_features(server, colour_data):
    import bentoml

    with bentoml.SyncHTTPClient(server.url, token=TOKEN, timeout=60) as client:
        body = client.chat(video=_video(colour_data, "blue"), question=QUESTION, max_new_tokens=8)
        assert body["answer"] == "blue"
        feats = next(p for p in sorted(colour_data["features"].glob("green*.safetensors")))
        body = client.chat_features(features=feats, question=QUESTION, max_new_tokens=8)
        assert body["answer"] == "green"


@pytest.mark.slow
def test_extract_returns_the_same_features_as_offline(server, colour_data, tmp_path):
    video = _video(colour_data, "red")
    files = {"video": (video.name, video.read_bytes(), "video/mp4")}
    response = httpx.post(f"{server.url}/extract", files=files, headers=AUTH, timeout=60)
    assert response.status_code == 200
    (tmp_path / "f.safetensors").write_bytes(response.content)
    served = load_file(tmp_path / "f.safetensors")["features"]
    offline = load_file(colour_data["features"] / f"{video.stem}.safetensors")["features"]
    assert served.shape == offline.shape
    assert (served.float() - offline.float()).abs().max() < 1e-2


@pytest.mark.slow
def test_bad_inputs_get_clear_4xx_and_the_server_stays_up(server, colour_data, tmp_path):
    good = _video(colour_data, "green")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n" * 50)
    cut = write_truncated_video(
        next(colour_data["videos"].glob("*.mp4")), tmp_path / "cut.mp4", 0.3
    )
    long = write_video(
        tmp_path / "long.mp4", ClipSpec("red", num_frames=60), fps=15
    )  # 4 s > 2 s cap
    big = tmp_path / "big.mp4"
    big.write_bytes(good.read_bytes() + b"\0" * (2 << 20))
    # FFmpeg decodes a still image as a one-frame video: an image renamed .mp4 must still fail.
    png = _png(tmp_path / "photo.mp4")
    jpeg = _jpeg(tmp_path / "snapshot.mp4")
    odd = json.dumps([{"from": "human", "value": "hi"}])
    no_value = json.dumps([{"from": "human"}, {"from": "gpt", "value": "ok"}])
    swapped = json.dumps([{"from": "gpt", "value": "hi"}, {"from": "human", "value": "ok"}])
    cases = [
        (_chat(server, empty), 400, "empty"),
        (_chat(server, text), 400, "video"),
        (_chat(server, png), 400, "video: the upload is a PNG image, not a video"),
        (_chat(server, jpeg), 400, "video: the upload is a JPEG image, not a video"),
        (_chat(server, cut), 400, "video"),
        (_chat(server, long), 400, "limit is 2 s"),
        (_chat(server, big), 413, "limit"),
        (_chat(server, good, question=""), 400, "question"),
        (_chat(server, good, question="why " * 100), 400, "question"),
        (_chat(server, good, max_new_tokens="500"), 400, "max_new_tokens"),
        (_chat(server, good, question=f"<video>\n{QUESTION}"), 400, "question: must not contain"),
        (_chat(server, good, history=odd), 400, "odd number of turns"),
        (_chat(server, good, history=no_value), 400, "history[0].value"),
        (_chat(server, good, history=swapped), 400, "history[0].from: expected 'human'"),
        (_chat(server, good, history=_turns("<video> hi", "ok")), 400, "history[0].value"),
        (_chat(server, good, history=_turns("a" * 200, "b" * 200)), 400, "limit is 300"),
        (_chat(server, good, history=_turns(*"abcdef")), 400, "history: 6 turns, the limit"),
    ]
    for response, status, needle in cases:
        assert response.status_code == status, response.text
        assert needle in _error(response)
        assert _chat(server, good).json()["answer"] == "green"  # the next valid request works
    # The text file, the truncated video and the two images were counted as decode failures.
    metrics = httpx.get(f"{server.url}/metrics").text
    counts = re.findall(r"^videollm_decode_failures_total(?:\{[^}]*\})? (\S+)$", metrics, re.M)
    assert counts and float(counts[0]) >= 4


@pytest.mark.slow
def test_history_and_default_max_new_tokens(server, colour_data):
    good = _video(colour_data, "green")
    # Left out, max_new_tokens is 128 lowered to the server's cap (32 here), not a 400.
    response = _chat(server, good, max_new_tokens=None)
    assert response.status_code == 200, response.text
    assert response.json()["answer"] == "green"
    # With history, the video placeholder goes into the first human turn (none in the text).
    history = _turns("What colour is the video?", "green")
    response = _chat(server, good, history=history, question="And now?")
    assert response.status_code == 200, response.text
    assert isinstance(response.json()["answer"], str)


@pytest.mark.slow
def test_path_like_filenames_never_escape_the_request_dir(server, colour_data, tmp_path):
    target = tmp_path / "escaped.mp4"
    response = _chat(server, _video(colour_data, "red"), name=f"../../../../{target}")
    assert response.status_code == 200
    assert not target.exists()


@pytest.mark.slow
def test_twenty_concurrent_requests_are_all_answered(server, colour_data):
    video = _video(colour_data, "blue")
    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(lambda _: _chat(server, video), range(20)))
    assert [r.status_code for r in responses] == [200] * 20
    assert {r.json()["answer"] for r in responses} == {"blue"}


@pytest.mark.slow
def test_auth_and_open_health_endpoints(server, colour_data):
    video = _video(colour_data, "red")
    files = {"video": (video.name, video.read_bytes(), "video/mp4")}
    response = httpx.post(
        f"{server.url}/chat", data={"question": QUESTION}, files=files, timeout=60
    )
    assert response.status_code == 401
    wrong = httpx.post(
        f"{server.url}/chat", files=files, headers={"Authorization": "Bearer x"}, timeout=60
    )
    assert wrong.status_code == 401
    assert "bearer token" in _error(wrong)
    assert httpx.get(f"{server.url}/readyz").status_code == 200
    metrics = httpx.get(f"{server.url}/metrics").text
    assert "videollm_requests_total" in metrics and "videollm_videos_decoded_total" in metrics


@pytest.mark.slow
def test_not_ready_until_a_model_appears_and_auth_off(tmp_path, served_checkpoint, colour_data):
    later = tmp_path / "registered-later"
    env = {"VIDEOLLM_CHECKPOINT": str(later), "VIDEOLLM_LOAD_RETRY_S": "1"}
    srv = start_server(tmp_path, env, wait_ready=False)
    try:
        assert httpx.get(f"{srv.url}/readyz").status_code == 503
        files = {"video": ("v.mp4", b"x", "video/mp4")}
        response = httpx.post(f"{srv.url}/chat", data={"question": "q"}, files=files, timeout=30)
        assert response.status_code == 503  # no token needed when VIDEOLLM_API_TOKEN is unset
        deadline = time.monotonic() + 30
        while "registered-later" not in srv.log.read_text():  # the log says what it waits for
            assert time.monotonic() < deadline, "the load failure was never logged"
            time.sleep(0.2)
        # The model shows up (e.g. the first pipeline run registers it): the server gets ready.
        shutil.copytree(served_checkpoint, later)
        deadline = time.monotonic() + 60
        while httpx.get(f"{srv.url}/readyz").status_code != 200:
            assert time.monotonic() < deadline, "never became ready"
            time.sleep(0.5)
        assert _chat(srv, _video(colour_data, "red")).json()["answer"] == "red"
    finally:
        stop_server(srv)
