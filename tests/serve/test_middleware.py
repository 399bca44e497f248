"""GuardMiddleware as a plain ASGI app: auth, the size limit, the 4xx body shape, counting."""

from __future__ import annotations

import asyncio
import json

from videollm.serve.middleware import GuardMiddleware


def _app(status: int, chunks: list[bytes]):
    """An ASGI app that answers ``status`` with ``chunks`` as its body."""

    async def app(scope, receive, send):
        length = str(sum(map(len, chunks))).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", length)]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        for i, chunk in enumerate(chunks):
            more = i < len(chunks) - 1
            await send({"type": "http.response.body", "body": chunk, "more_body": more})

    return app


def _call(
    app, headers: dict[str, str] | None = None, path: str = "/chat"
) -> tuple[int, dict, bytes]:
    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    raw = [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    scope = {"type": "http", "method": "POST", "path": path, "headers": raw}
    asyncio.run(app(scope, receive, send))
    start = sent[0]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, body


def test_a_one_item_error_list_becomes_an_object_with_a_matching_length():
    listed = json.dumps([{"error": "question: missing"}]).encode()
    status, headers, body = _call(GuardMiddleware(_app(400, [listed[:7], listed[7:]])))
    assert status == 400
    assert json.loads(body) == {"error": "question: missing"}
    assert int(headers["content-length"]) == len(body)


def test_success_and_server_error_bodies_pass_through_unchanged():
    listed = json.dumps([{"answer": "red"}]).encode()
    for status in (200, 500):
        got_status, headers, body = _call(GuardMiddleware(_app(status, [listed])))
        assert (got_status, body) == (status, listed)
        assert int(headers["content-length"]) == len(listed)
    other = b'{"error": "1 validation error", "detail": []}'
    assert _call(GuardMiddleware(_app(400, [other])))[2] == other


def test_token_and_size_are_checked_before_the_app(monkeypatch):
    monkeypatch.setenv("VIDEOLLM_API_TOKEN", "s3cret")
    guard = GuardMiddleware(_app(200, [b"{}"]), max_upload_mb=1)
    status, _, body = _call(guard)
    assert status == 401 and "bearer token" in json.loads(body)["error"]
    ok = {"authorization": "Bearer s3cret"}
    assert _call(guard, ok)[0] == 200
    status, _, body = _call(guard, {**ok, "content-length": str(2 * 2**20)})
    assert status == 413 and "upload limit" in json.loads(body)["error"]


def _reading_app(seen: list[int]):
    """An ASGI app that reads its whole body (as a multipart parser would), then answers 200."""

    async def app(scope, receive, send):
        while True:
            message = await receive()
            seen.append(len(message.get("body", b"")))
            if not message.get("more_body", False):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    return app


def _stream(guard, chunks: int, size: int = 64 * 1024, headers=None):
    """Call ``guard`` with a chunked body (no Content-Length) of ``chunks`` pieces."""
    sent: list[dict] = []
    pieces = [{"type": "http.request", "body": b"\0" * size, "more_body": True}] * chunks
    pieces.append({"type": "http.request", "body": b"", "more_body": False})
    offered = iter(pieces)

    async def receive():
        return next(offered)

    async def send(message):
        sent.append(message)

    raw = [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    scope = {"type": "http", "method": "POST", "path": "/chat", "headers": raw}
    asyncio.run(guard(scope, receive, send))
    return sent, offered


def test_a_chunked_body_is_cut_off_at_the_limit():
    seen: list[int] = []
    rejected: list[tuple[str, int]] = []
    guard = GuardMiddleware(
        _reading_app(seen), max_upload_mb=1, on_reject=lambda *a: rejected.append(a)
    )
    sent, offered = _stream(guard, chunks=1000)  # 62.5 MB offered
    start, body = sent[0], sent[1]["body"]
    assert start["status"] == 413
    assert (b"connection", b"close") in start["headers"]  # the rest is never read
    assert json.loads(body) == {
        "error": "request body exceeds the upload limit of 1 MB (VIDEOLLM_MAX_UPLOAD_MB)"
    }
    assert sum(seen) <= 2**20 + 64 * 1024  # the app never got the chunk past the limit
    assert len(list(offered)) > 900  # and most of the body was never even asked for
    assert rejected == [("/chat", 413)]
    # Under the limit, the same stream goes through.
    seen.clear()
    sent, _ = _stream(GuardMiddleware(_reading_app(seen), max_upload_mb=1), chunks=10)
    assert sent[0]["status"] == 200 and sum(seen) == 10 * 64 * 1024


def test_the_bearer_scheme_is_case_insensitive_and_the_token_exact(monkeypatch):
    monkeypatch.setenv("VIDEOLLM_API_TOKEN", "s3cret")
    guard = GuardMiddleware(_app(200, [b"{}"]))
    for header in ("Bearer s3cret", "bearer s3cret", "BEARER s3cret", "Bearer   s3cret"):
        assert _call(guard, {"authorization": header})[0] == 200, header
    for header in ("Bearer s3cre", "Bearer s3cretx", "Basic s3cret", "s3cret", "Bearer", ""):
        assert _call(guard, {"authorization": header})[0] == 401, header


def test_router_text_and_validation_details_become_named_errors():
    status, headers, body = _call(GuardMiddleware(_app(404, [b"Not Found"])))
    assert status == 404 and headers["content-type"] == "application/json"
    assert json.loads(body) == {"error": "no such endpoint: POST /chat"}
    assert int(headers["content-length"]) == len(body)
    detail = [
        {"type": "missing", "loc": ["video"], "msg": "Field required"},
        {"type": "string_type", "loc": ["history", 0, "value"], "msg": "Input should be a string"},
    ]
    listed = json.dumps({"error": "2 validation errors for Input", "detail": detail}).encode()
    body = json.loads(_call(GuardMiddleware(_app(400, [listed])))[2])
    assert body["error"] == "video: Field required; history[0].value: Input should be a string"
    assert body["detail"] == detail  # still there for clients that read it


def test_every_rejection_is_reported_once_and_probes_never(monkeypatch):
    monkeypatch.setenv("VIDEOLLM_API_TOKEN", "s3cret")
    rejected: list[tuple[str, int]] = []

    def guard(status: int) -> GuardMiddleware:
        return GuardMiddleware(_app(status, [b"{}"]), on_reject=lambda *a: rejected.append(a))

    ok = {"authorization": "Bearer s3cret"}
    _call(guard(200), ok)
    _call(guard(400), ok)
    _call(guard(500), ok)
    _call(guard(200))  # no token: the guard's own 401
    assert _call(guard(405), path="/metrics")[0] == 405  # open, and not an API request
    assert rejected == [("/chat", 400), ("/chat", 500), ("/chat", 401)]
