"""An OpenAI-compatible video endpoint on a real local port, for tests of its clients.

It takes video the way vLLM does (a base64 ``data:`` URL in a ``video_url`` part), decodes it
with PyAV and answers the dominant colour of the first frame, so scores of what it says are
meaningful and, with one colour answered wrongly, exactly predictable.
"""

from __future__ import annotations

import base64
import io
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import av

COLOURS = ("red", "green", "blue")


@dataclass
class FakeVideoLLM:
    """What the server answers, and every request it got."""

    url: str = ""
    wrong_for: str | None = None  # answer this colour wrongly
    failures: list[tuple[int, str]] = field(default_factory=list)  # served first, in order
    key: str | None = None  # when set, a request without `Bearer key` gets a 401
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, body: dict[str, Any]) -> str:
        url = body["messages"][0]["content"][0]["video_url"]["url"]
        data = base64.b64decode(url.split(",", 1)[1])
        with av.open(io.BytesIO(data)) as container:
            frame = next(container.decode(video=0)).to_ndarray(format="rgb24")
        colour = COLOURS[int(frame.reshape(-1, 3).mean(axis=0).argmax())]
        return "purple" if colour == self.wrong_for else colour


def endpoint_handler(fake: FakeVideoLLM) -> type[BaseHTTPRequestHandler]:
    """A request handler that answers as ``fake`` says and records each request there."""

    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, message: str) -> None:
            # A careless server that echoes the Authorization header in its error body.
            auth = self.headers.get("Authorization")
            self._send(status, {"error": {"message": f"{message} (got {auth})", "code": status}})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with fake.lock:
                fake.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": body}
                )
                failure = fake.failures.pop(0) if fake.failures else None
            if self.path != "/v1/chat/completions":
                return self._error(404, "Not Found")
            if fake.key and self.headers.get("Authorization") != f"Bearer {fake.key}":
                return self._error(401, "invalid api key")
            if failure:
                return self._error(*failure)
            reply = {"role": "assistant", "content": fake.answer(body)}
            self._send(
                200,
                {
                    "id": "chatcmpl-1",
                    "object": "chat.completion",
                    "model": f"served/{body['model']}",
                    "choices": [{"index": 0, "message": reply, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11},
                },
            )

        def log_message(self, *args: Any) -> None:  # keep pytest output clean
            pass

    return Handler
