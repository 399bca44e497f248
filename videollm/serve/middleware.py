"""ASGI middleware: optional bearer-token auth, the upload limit, one shape, ``{"error":
message}``, for every 4xx body, and a report of every rejected request."""

from __future__ import annotations

import hmac
import json
import logging
import os
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

logger = logging.getLogger(__name__)

# Health and metrics stay open: Kubernetes probes and Prometheus carry no token.
OPEN_PATHS = frozenset({"/livez", "/readyz", "/healthz", "/metrics", "/docs.json"})

# Called with (path, status) for every response of status >= 400 that reaches the client.
RejectHook = Callable[[str, int], None]

# Room for the multipart framing around an upload of exactly the limit.
FRAMING_BYTES = 64 * 1024

# The OpenAI-compatible API: JSON bodies carry the video base64-encoded (4/3 of its size), and
# errors take OpenAI's shape, ``{"error": {"message", "type", "param", "code"}}``.
OPENAI_PREFIX = "/v1/"


def _openai_shape(status: int, message: str) -> dict[str, Any]:
    from videollm.serve.openai_api import openai_error

    return openai_error(status, message)


class _BodyTooLarge(BaseException):
    """Raised out of ``receive`` to stop the app mid-body.

    A ``BaseException`` so that BentoML's ``except Exception`` (which would log a traceback and
    answer 500) lets it through to :class:`GuardMiddleware`; ``finally`` blocks, such as the one
    that frees the request's temp dir, still run.
    """


def authorized(header: bytes, token: str) -> bool:
    """Whether an ``Authorization`` header is ``Bearer <token>``.

    The scheme matches in any case (RFC 7235 §2.1) and may be followed by several spaces. The
    token is compared in constant time, and compared even when the scheme is wrong, so the
    answer's timing says nothing about the token.
    """
    scheme, _, credentials = header.strip().partition(b" ")
    same = hmac.compare_digest(credentials.strip(), token.encode())
    return scheme.lower() == b"bearer" and same


def _field(loc: list[Any]) -> str:
    """Pydantic's ``["history", 0, "value"]`` → ``history[0].value`` (as the engine names it)."""
    name = ""
    for part in loc:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "body"


def validation_message(detail: list[Any]) -> str | None:
    """BentoML's pydantic error list as ``field: reason; ...``; None when it is not one."""
    parts = []
    for item in detail:
        if not isinstance(item, dict) or not isinstance(item.get("loc"), list | tuple):
            return None
        reason = str(item.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{_field(list(item['loc']))}: {reason}")
    return "; ".join(parts) or None


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:  # a status http.HTTPStatus does not list
        return f"HTTP {status}"


def _router_message(status: int, scope: dict, headers: list[tuple[bytes, bytes]]) -> str:
    """What Starlette's router means by its plain-text 404 and 405, naming the culprit."""
    method, path = scope.get("method", ""), scope.get("path", "")
    if status == 404:
        return f"no such endpoint: {method} {path}"
    if status == 405:
        allow = next((v.decode("latin-1") for k, v in headers if k.lower() == b"allow"), "")
        return f"method {method} is not allowed on {path}" + (f"; use {allow}" if allow else "")
    return _phrase(status)


def client_error_body(
    status: int, body: bytes, scope: dict, headers: list[tuple[bytes, bytes]]
) -> bytes:
    """The body a 4xx response should carry: a JSON object whose ``error`` names the culprit.

    BentoML answers an API's 4xx ``BentoMLException`` with ``[{"error": ...}]`` (a stray tuple
    in its handler), its input validation with ``{"error": "1 validation error for Input",
    "detail": [...]}`` (the field only in ``detail``), and Starlette's router an unknown path or
    method with plain text. Clients should parse one shape and read one message.
    """
    openai = scope.get("path", "").startswith(OPENAI_PREFIX)
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    changed = isinstance(data, list) and len(data) == 1 and isinstance(data[0], dict)
    if changed:
        data = data[0]
    if not isinstance(data, dict):
        message = _router_message(status, scope, headers)
        shaped = _openai_shape(status, message) if openai else {"error": message}
        return json.dumps(shaped).encode()
    if openai and not isinstance(data.get("error"), dict):
        message = data.get("error") or data.get("detail") or _phrase(status)
        return json.dumps(_openai_shape(status, str(message))).encode()
    if "error" not in data:
        data, changed = {"error": _phrase(status), **data}, True
    detail = data.get("detail")
    named = validation_message(detail) if isinstance(detail, list) else None
    if named is not None:
        data, changed = {**data, "error": named}, True
    return json.dumps(data).encode() if changed else body


class _Exchange:
    """One request passing the guard: counts its body as it is read, and fixes up its 4xx.

    ``receive`` raises :class:`_BodyTooLarge` once more than ``max_bytes`` came in, whatever
    the framing (``Content-Length`` or chunked), so an oversized upload stops being read there
    instead of being spooled to disk first. ``send`` holds back a 4xx start until its (small)
    body is complete, to rewrite that body, and reports every status >= 400 it passes on.
    """

    def __init__(
        self, scope: dict, receive: Any, send: Any, max_bytes: int, on_reject: RejectHook | None
    ) -> None:
        self.scope, self._receive, self._send = scope, receive, send
        self.max_bytes = max_bytes
        self.on_reject = on_reject
        self.received = 0
        self.started = False  # a response start went out to the client
        self._start: dict | None = None
        self._chunks: list[bytes] = []

    async def receive(self) -> dict:
        message = await self._receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.max_bytes:
                raise _BodyTooLarge
        return message

    async def _pass_on(self, message: dict) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            status = message["status"]
            if status >= 400 and self.on_reject is not None:
                self.on_reject(self.scope["path"], status)
        await self._send(message)

    async def send(self, message: dict) -> None:
        if message["type"] == "http.response.start" and 400 <= message["status"] < 500:
            self._start = message
            return
        if self._start is None or message["type"] != "http.response.body":
            await self._pass_on(message)
            return
        self._chunks.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        start, headers = self._start, list(self._start.get("headers", []))
        body = client_error_body(start["status"], b"".join(self._chunks), self.scope, headers)
        kept = [(k, v) for k, v in headers if k.lower() not in (b"content-length", b"content-type")]
        kept += [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        self._start, self._chunks = None, []
        await self._pass_on({**start, "headers": kept})
        await self._pass_on({"type": "http.response.body", "body": body})

    async def reply(self, status: int, message: str) -> None:
        """Answer ``{"error": message}`` and close the connection.

        The guard answers without reading the rest of the body; closing stops the server from
        reading (and discarding) it anyway to keep the connection alive.
        """
        shaped = self.scope.get("path", "").startswith(OPENAI_PREFIX)
        body = json.dumps(_openai_shape(status, message) if shaped else {"error": message}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(body)),
            (b"connection", b"close"),
        ]
        await self._pass_on({"type": "http.response.start", "status": status, "headers": headers})
        await self._pass_on({"type": "http.response.body", "body": body})


class GuardMiddleware:
    """Checks ``Authorization: Bearer $VIDEOLLM_API_TOKEN`` (when set) and the body size.

    A ``Content-Length`` over the limit is refused before anything is read; a chunked body is
    counted while it streams and refused (413) as soon as it passes the limit, so neither is
    ever spooled in full. Every response of status >= 400, the guard's own included, goes to
    ``on_reject`` (for the requests counter), exactly once.

    Args:
        app: The ASGI app to guard.
        max_upload_mb: ``VIDEOLLM_MAX_UPLOAD_MB``; the body may be this plus multipart framing.
        on_reject: Told ``(path, status)`` of each rejected request, if given.
    """

    def __init__(
        self,
        app: Any,
        max_upload_mb: int = 200,
        on_reject: RejectHook | None = None,
    ) -> None:
        self.app = app
        self.max_upload_mb = max_upload_mb
        self.max_bytes = max_upload_mb * 2**20 + FRAMING_BYTES
        self.max_json_bytes = max_upload_mb * 2**20 * 4 // 3 + FRAMING_BYTES  # base64 video
        self.token = os.environ.get("VIDEOLLM_API_TOKEN") or None
        self.on_reject = on_reject

    def _limit(self) -> str:
        return f"the upload limit of {self.max_upload_mb} MB (VIDEOLLM_MAX_UPLOAD_MB)"

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        open_path = scope["path"] in OPEN_PATHS
        # Probes and scrapes are not API requests: never counted as rejections.
        limit = self.max_json_bytes if scope["path"].startswith(OPENAI_PREFIX) else self.max_bytes
        exchange = _Exchange(scope, receive, send, limit, None if open_path else self.on_reject)
        headers = dict((k.lower(), v) for k, v in scope.get("headers", []))
        given = headers.get(b"authorization", b"")
        if self.token is not None and not open_path and not authorized(given, self.token):
            await exchange.reply(401, "missing or wrong bearer token (Authorization header)")
            return
        length = headers.get(b"content-length", b"")
        if length.isdigit() and int(length) > limit:
            await exchange.reply(
                413, f"request body of {int(length)} bytes exceeds {self._limit()}"
            )
            return
        try:
            await self.app(scope, exchange.receive, exchange.send)
        except _BodyTooLarge:
            path, received = scope["path"], exchange.received
            logger.info("refused %s after %d bytes: over %s", path, received, self._limit())
            if not exchange.started:  # else the client sees the connection close mid-response
                await exchange.reply(413, f"request body exceeds {self._limit()}")
