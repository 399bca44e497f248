"""Bad HTTP requests against the real server, one table row each.

Every row's request must get its status with a JSON ``{"error": ...}`` body naming the
culprit, be counted exactly once in ``videollm_requests_total``, and leave the server
answering: a valid request right after it succeeds. The server is the shared ``server``
fixture: token auth, 1 MB uploads, 2 s videos, 200-character questions, 300 characters and 4
turns of history, 32 new tokens at most.
"""

from __future__ import annotations

import json
import select
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import torch
from bento_server import TOKEN, Server
from broken_videos import write_truncated_video
from safetensors.torch import save_file
from serve_helpers import AUTH, QUESTION, chat, counters, error_of, jpeg, png, turns, video_of

from videollm.demo.videos import ClipSpec, write_video

pytestmark = pytest.mark.slow

LIMIT = 2**20  # the server's VIDEOLLM_MAX_UPLOAD_MB=1
CHUNK = 64 * 2**10
STREAMED = 64 * LIMIT  # what the chunked upload offers: far more than any socket buffers


@pytest.fixture(scope="module")
def files(colour_data, tmp_path_factory) -> dict[str, Path]:
    """The uploads the rows send, written once."""
    root = tmp_path_factory.mktemp("bad_uploads")
    good = video_of(colour_data, "green")
    (root / "empty.mp4").write_bytes(b"")
    (root / "notes.mp4").write_text("not a video\n" * 50)
    big = root / "big.mp4"
    big.write_bytes(good.read_bytes() + b"\0" * (2 * LIMIT))
    save_file({"features": torch.zeros(3, 5)}, root / "wrong_shape.safetensors")
    save_file({"pixels": torch.zeros(2)}, root / "no_features.safetensors")
    (root / "garbage.safetensors").write_bytes(b"garbage" * 10)
    return {
        "good": good,
        "empty": root / "empty.mp4",
        "text": root / "notes.mp4",
        "big": big,
        # FFmpeg decodes a still image as a one-frame video: an image renamed .mp4 must fail.
        "png": png(root / "photo.mp4"),
        "jpeg": jpeg(root / "snapshot.mp4"),
        # Cut to 30 % of its bytes, an MP4 loses its index (at the end): nothing decodes.
        "cut": write_truncated_video(
            next(colour_data["videos"].glob("*.mp4")), root / "cut.mp4", 0.3
        ),
        "long": write_video(root / "long.mp4", ClipSpec("red", num_frames=60), fps=15),  # 4 s
        "wrong_shape": root / "wrong_shape.safetensors",
        "no_features": root / "no_features.safetensors",
        "garbage": root / "garbage.safetensors",
    }


def _post(server: Server, path: str, upload: tuple | None, headers=AUTH, **fields):
    """POST ``path`` with a form of question, max_new_tokens and ``fields`` (None: left out)."""
    data = {"question": QUESTION, "max_new_tokens": "8", **fields}
    data = {k: v for k, v in data.items() if v is not None}
    files = {upload[0]: upload[1:]} if upload else None
    return httpx.post(f"{server.url}{path}", data=data, files=files, headers=headers, timeout=60)


def _video(files, name: str, kind: str = "video/mp4") -> tuple[str, str, bytes, str]:
    return ("video", files[name].name, files[name].read_bytes(), kind)


def _features(files, name: str) -> tuple[str, str, bytes, str]:
    return ("features", files[name].name, files[name].read_bytes(), "application/octet-stream")


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _chunked_upload(server: Server) -> httpx.Response:
    """POST /chat a ``Transfer-Encoding: chunked`` video of ``STREAMED`` bytes over a socket.

    It sends ``CHUNK`` at a time until the server answers (or closes), then checks that the
    server answered long before taking everything: at most the limit plus what the sockets'
    kernel buffers hold went out.
    """
    url = httpx.URL(server.url)
    head = (
        f"POST /chat HTTP/1.1\r\nHost: {url.host}:{url.port}\r\nAuthorization: Bearer {TOKEN}\r\n"
        "Content-Type: multipart/form-data; boundary=XyZ\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    part = (
        b'--XyZ\r\nContent-Disposition: form-data; name="video"; filename="big.mp4"\r\n'
        b"Content-Type: video/mp4\r\n\r\n"
    )
    sent = 0
    with socket.create_connection((url.host, url.port), timeout=30) as sock:
        # A small send buffer: what we count as sent is then (nearly) what reached the server.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, CHUNK)
        sock.sendall(head + _chunk(part))
        try:
            while sent < STREAMED and not select.select([sock], [], [], 0)[0]:
                sock.sendall(_chunk(b"\0" * CHUNK))
                sent += CHUNK
            if sent >= STREAMED:  # the server read it all: finish the request properly
                sock.sendall(_chunk(b"\r\n--XyZ--\r\n") + b"0\r\n\r\n")
        except OSError:  # it answered and closed the connection while we were sending
            pass
        raw = _read_response(sock)
    # About 1.5 MB in practice; reading the whole body, as before the fix, takes all 64 MB.
    assert sent < 8 * LIMIT, f"the server took {sent} bytes of a body over a {LIMIT}-byte limit"
    head_raw, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head_raw.decode("latin-1").split("\r\n")
    headers = [tuple(h.split(": ", 1)) for h in header_lines]
    return httpx.Response(int(status_line.split()[1]), headers=headers, content=body)


def _read_response(sock: socket.socket) -> bytes:
    """One HTTP response (with ``Content-Length``) off ``sock``, however the peer closes."""
    raw = b""
    while True:
        head, sep, body = raw.partition(b"\r\n\r\n")
        if sep:
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            if len(body) >= length:
                return raw
        try:
            data = sock.recv(65536)
        except ConnectionResetError:  # after the response: the peer had our unread bytes
            data = b""
        if not data:
            assert sep, f"no response before the connection closed: {raw!r}"
            return raw
        raw += data


@dataclass(frozen=True)
class Row:
    """A bad request and what the server must answer.

    Attributes:
        name: The row's test id.
        send: Sends the request: ``send(server, files)``.
        status: The expected HTTP status.
        needle: Text the ``error`` must contain (it names the culprit).
        api: The ``api`` label it is counted under.
        outcome: The ``outcome`` label it is counted under.
        decode_failure: Whether it counts in ``videollm_decode_failures_total`` too.
    """

    name: str
    send: Callable[[Server, dict[str, Path]], httpx.Response]
    status: int
    needle: str
    api: str = "chat"
    outcome: str = "bad_request"
    decode_failure: bool = False


def _chat_with(name: str = "good", **fields) -> Callable[[Server, dict], httpx.Response]:
    return lambda server, files: _post(server, "/chat", _video(files, name), **fields)


def _chat_features(name: str) -> Callable[[Server, dict], httpx.Response]:
    return lambda server, files: _post(server, "/chat_features", _features(files, name))


ODD = json.dumps([{"from": "human", "value": "hi"}])
NO_VALUE = json.dumps([{"from": "human"}, {"from": "gpt", "value": "ok"}])
SWAPPED = json.dumps([{"from": "gpt", "value": "hi"}, {"from": "human", "value": "ok"}])
NO_TEMP_PATH = "/tmp"  # what a server-side path in an error would start with

ROWS = [
    # Size: refused while streaming, or from Content-Length, before the upload is spooled.
    Row("chunked-over-limit", lambda s, f: _chunked_upload(s), 413,
        "request body exceeds the upload limit of 1 MB (VIDEOLLM_MAX_UPLOAD_MB)", "chat",
        "too_large"),
    Row("content-length-over-limit", _chat_with("big"), 413,
        "exceeds the upload limit of 1 MB", "chat", "too_large"),
    # Generation settings.
    Row("temperature-negative", _chat_with(temperature="-1"), 400, "temperature: must be >= 0"),
    Row("temperature-nan", _chat_with(temperature="nan"), 400, "temperature: expected a finite"),
    Row("temperature-inf", _chat_with(temperature="inf"), 400, "temperature: expected a finite"),
    Row("temperature-huge", _chat_with(temperature="1e30"), 400, "temperature: must be <= 100"),
    Row("temperature-not-a-number", _chat_with(temperature="warm"), 400,
        "temperature: Input should be a valid number"),
    Row("max-new-tokens-zero", _chat_with(max_new_tokens="0"), 400, "max_new_tokens: must be"),
    Row("max-new-tokens-negative", _chat_with(max_new_tokens="-5"), 400,
        "max_new_tokens: must be"),
    Row("max-new-tokens-over-cap", _chat_with(max_new_tokens="500"), 400,
        "max_new_tokens: must be between 1 and 32"),
    Row("max-new-tokens-huge", _chat_with(max_new_tokens="1" + "0" * 30), 400,
        "max_new_tokens: must be between 1 and 32"),
    Row("max-new-tokens-fraction", _chat_with(max_new_tokens="1.5"), 400,
        "max_new_tokens: Input should be a valid integer"),
    # The question.
    Row("question-empty", _chat_with(question=""), 400, "question: required"),
    Row("question-too-long", _chat_with(question="why " * 100), 400,
        "question: 400 characters, the limit is 200"),
    Row("question-with-placeholder", _chat_with(question=f"<video>\n{QUESTION}"), 400,
        "question: must not contain '<video>'"),
    # History.
    Row("history-not-json", _chat_with(history="not json"), 400,
        "history: Input should be a valid list"),
    Row("history-not-objects", _chat_with(history="[1, 2]"), 400,
        "history[0]: Input should be a valid dictionary"),
    Row("history-odd", _chat_with(history=ODD), 400, "odd number of turns"),
    Row("history-no-value", _chat_with(history=NO_VALUE), 400, "history[0].value"),
    Row("history-swapped", _chat_with(history=SWAPPED), 400, "history[0].from: expected 'human'"),
    Row("history-placeholder", _chat_with(history=turns("<video> hi", "ok")), 400,
        "history[0].value: must not contain '<video>'"),
    Row("history-too-many-chars", _chat_with(history=turns("a" * 200, "b" * 200)), 400,
        "history: 400 characters in all, the limit is 300"),
    Row("history-too-many-turns", _chat_with(history=turns(*"abcdef")), 400,
        "history: 6 turns, the limit is 4"),
    # The upload.
    Row("video-missing", lambda s, f: _post(s, "/chat", None), 400, "video: Field required"),
    Row("video-empty", _chat_with("empty"), 400, "video: the uploaded file is empty"),
    Row("video-text-file", _chat_with("text"), 400, "video: ", decode_failure=True),
    Row("video-png", _chat_with("png"), 400, "video: the upload is a PNG image, not a video",
        decode_failure=True),
    Row("video-jpeg", _chat_with("jpeg"), 400, "video: the upload is a JPEG image, not a video",
        decode_failure=True),
    Row("video-truncated", _chat_with("cut"), 400, "video: ", decode_failure=True),
    Row("video-too-long", _chat_with("long"), 400, "video: 4 s long, the limit is 2 s"),
    Row("video-wrong-content-type",
        lambda s, f: _post(s, "/chat", _video(f, "good", "text/plain")), 400,
        "video: Invalid content type text/plain, expected video/*"),
    Row("extract-text-file", lambda s, f: _post(s, "/extract", _video(f, "text")), 400,
        "video: ", "extract", decode_failure=True),
    # Features instead of a video.
    Row("features-garbage", _chat_features("garbage"), 400,
        "features: the upload is not a valid safetensors file", "chat_features"),
    Row("features-no-tensor", _chat_features("no_features"), 400,
        "features: the upload has no 'features' tensor", "chat_features"),
    Row("features-wrong-shape", _chat_features("wrong_shape"), 400,
        "features: shape (3, 5), the model needs", "chat_features"),
    # Routing and auth.
    Row("unknown-path", lambda s, f: _post(s, "/nope", None), 404,
        "no such endpoint: POST /nope", "other", "not_found"),
    Row("wrong-method", lambda s, f: httpx.get(f"{s.url}/chat", headers=AUTH), 405,
        "method GET is not allowed on /chat; use POST", "chat", "method_not_allowed"),
    Row("token-missing", lambda s, f: _post(s, "/chat", _video(f, "good"), headers={}), 401,
        "bearer token", "chat", "unauthorized"),
    Row("token-wrong",
        lambda s, f: _post(s, "/chat", _video(f, "good"), headers={"Authorization": "Bearer x"}),
        401, "bearer token", "chat", "unauthorized"),
    Row("token-other-scheme",
        lambda s, f: _post(s, "/chat", _video(f, "good"),
                           headers={"Authorization": f"Basic {TOKEN}"}),
        401, "bearer token", "chat", "unauthorized"),
]  # fmt: skip


def _delta(before: dict, after: dict) -> dict:
    return {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after if after[k] != before.get(k)}


@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
def test_bad_request_gets_a_named_error_is_counted_and_the_server_stays_up(server, files, row):
    requests_before = counters(server, "videollm_requests_total")
    decode_before = counters(server, "videollm_decode_failures_total")

    response = row.send(server, files)

    assert response.status_code == row.status, response.text
    message = error_of(response)
    assert row.needle in message
    assert NO_TEMP_PATH not in message and "bentoml-request" not in message
    counted = _delta(requests_before, counters(server, "videollm_requests_total"))
    assert counted == {(("api", row.api), ("outcome", row.outcome)): 1.0}
    decoded = _delta(decode_before, counters(server, "videollm_decode_failures_total"))
    assert sum(decoded.values()) == (1.0 if row.decode_failure else 0.0)
    after = chat(server, files["good"])  # the server is still up and answering
    assert after.status_code == 200, after.text
    assert after.json()["answer"] == "green"


@pytest.mark.parametrize("header", [f"bearer {TOKEN}", f"BEARER {TOKEN}", f"Bearer   {TOKEN}"])
def test_the_bearer_scheme_is_case_insensitive(server, files, header):
    response = _post(server, "/chat", _video(files, "good"), headers={"authorization": header})
    assert response.status_code == 200, response.text
    assert response.json()["answer"] == "green"
