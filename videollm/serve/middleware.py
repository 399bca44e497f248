"""ASGI middleware: optional bearer-token auth, early rejection of oversized uploads, and one
shape, ``{"error": message}``, for every 4xx body."""

from __future__ import annotations

import hmac
import json
import os
from typing import Any

# Health and metrics stay open: Kubernetes probes and Prometheus carry no token.
OPEN_PATHS = frozenset({"/livez", "/readyz", "/healthz", "/metrics", "/docs.json"})


async def _reply(send: Any, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _unwrapped(body: bytes) -> bytes:
    """``[{"error": ...}]`` → ``{"error": ...}``; any other body unchanged."""
    try:
        data = json.loads(body)
    except ValueError:
        return body
    if isinstance(data, list) and len(data) == 1 and isinstance(data[0], dict):
        return json.dumps(data[0]).encode()
    return body


class _FlatClientErrors:
    """Wraps ``send`` so that a 4xx JSON body is an object, never a one-item list.

    BentoML 1.4 answers an API's 4xx ``BentoMLException`` with ``[{"error": ...}]`` (a stray
    tuple in its handler) but its own validation errors, and ours above, with an object; clients
    should parse one shape. Only 4xx responses are held back, and their bodies are small.
    """

    def __init__(self, send: Any) -> None:
        self.send = send
        self.start: dict | None = None
        self.chunks: list[bytes] = []

    async def __call__(self, message: dict) -> None:
        if message["type"] == "http.response.start" and 400 <= message["status"] < 500:
            self.start = message
            return
        if self.start is None or message["type"] != "http.response.body":
            await self.send(message)
            return
        self.chunks.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        body = _unwrapped(b"".join(self.chunks))
        headers = [(k, v) for k, v in self.start["headers"] if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await self.send({**self.start, "headers": headers})
        await self.send({"type": "http.response.body", "body": body})
        self.start, self.chunks = None, []


class GuardMiddleware:
    """Checks ``Authorization: Bearer $VIDEOLLM_API_TOKEN`` (when set) and ``Content-Length``.

    The size check runs before the body is read, so an oversized upload is refused without
    being buffered (BentoML reads multipart bodies into memory).
    """

    def __init__(self, app: Any, max_upload_mb: int = 200) -> None:
        self.app = app
        self.max_bytes = max_upload_mb * 2**20 + 64 * 1024  # room for multipart framing
        self.token = os.environ.get("VIDEOLLM_API_TOKEN") or None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        headers = {k.decode().lower(): v.decode() for k, v in scope.get("headers", [])}
        if self.token is not None:
            given = headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode()):
                await _reply(send, 401, "missing or wrong bearer token (Authorization header)")
                return
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await _reply(send, 413, f"request body of {length} bytes exceeds the upload limit")
            return
        await self.app(scope, receive, _FlatClientErrors(send))
