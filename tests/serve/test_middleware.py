"""GuardMiddleware as a plain ASGI app: auth, the early size check and the 4xx body shape."""

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


def _call(app, headers: dict[str, str] | None = None) -> tuple[int, dict, bytes]:
    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    raw = [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    scope = {"type": "http", "path": "/chat", "headers": raw}
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
