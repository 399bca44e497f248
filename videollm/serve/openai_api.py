"""The OpenAI-compatible API, mounted at ``/v1`` beside the service's own endpoints.

``POST /v1/chat/completions`` takes ``messages`` with ``text`` and ``video_url`` content parts
(the way vLLM takes video) or the video's frames as ``image_url`` parts (as GPT-4o takes it),
``stream``, ``max_tokens``, ``temperature`` and ``n=1``, and answers in OpenAI's shapes, errors
included (``{"error": {"message", "type", "param", "code"}}``), so the ``openai`` client,
lmms-eval's OpenAI model and chat UIs talk to it unchanged. ``GET /v1/models`` lists the one
served model.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
import uuid
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from videollm.errors import VideoLLMError
from videollm.serve.engine import BadRequest, Engine, Started
from videollm.serve.generation import GenerationFailed
from videollm.serve.media import fetch_video
from videollm.serve.openai_messages import ChatCompletionRequest, parse_chat_completion
from videollm.serve.sse import GenerationStream, event, relay

#: OpenAI's error ``type`` by HTTP status.
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    503: "service_unavailable",
}


class ModelUnavailable(VideoLLMError):
    """The model has not loaded (yet); the message says why (HTTP 503)."""


def openai_error(status: int, message: str) -> dict[str, Any]:
    """OpenAI's error body; ``param`` is the field our messages start with (``name: ...``)."""
    field, sep, _ = message.partition(": ")
    param = field if sep and " " not in field else None
    kind = ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": None}}


def served_name(engine: Engine) -> str:
    """The model name clients send: the setting, else the registered name, else ``videollm``."""
    return engine.cfg.served_model_name or engine.labels.get("mlflow_model") or "videollm"


def _start(engine: Engine, req: ChatCompletionRequest) -> Started:
    args = engine.generation_args(req.max_tokens, req.temperature)
    engine.check_question(req.question, args.max_new_tokens)
    engine.check_history(req.history)  # cheap checks before any video is fetched
    with tempfile.TemporaryDirectory(prefix="videollm-v1-") as folder:
        video: Path | list[Path] = (
            [
                fetch_video(url, Path(folder), engine.cfg, f"frame-{i:04d}")
                for i, url in enumerate(req.frame_urls)
            ]
            if req.frame_urls
            else fetch_video(req.video_url, Path(folder), engine.cfg)
        )
        return engine.start_video(video, req.question, req.history, args)


def _usage(started: Started) -> dict[str, int]:
    gen = started.generation
    return {
        "prompt_tokens": gen.prompt_tokens,
        "completion_tokens": gen.completion_tokens,
        "total_tokens": gen.prompt_tokens + gen.completion_tokens,
    }


def _finish_reason(started: Started) -> str:
    return "length" if started.generation.finish_reason == "length" else "stop"


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        raise BadRequest("body: must be JSON (Content-Type: application/json)") from None


def build_app(
    current_engine: Callable[[], Engine], on_ok: Callable[[str], None], max_uploads: int = 4
) -> FastAPI:
    """The ``/v1`` app.

    Args:
        current_engine: The loaded engine; raises :class:`ModelUnavailable` while there is none.
        on_ok: Called with the API name after each successful request (for the counter).
        max_uploads: Requests whose body (a base64 video of up to 4/3 of the upload limit) is
            read, parsed and decoded at once; the others wait, so memory stays bounded.
    """
    app = FastAPI(title="videollm OpenAI-compatible API", openapi_url=None)
    uploads = asyncio.Semaphore(max_uploads)

    @app.exception_handler(BadRequest)
    async def bad_request(_: Request, err: BadRequest) -> JSONResponse:
        return JSONResponse(openai_error(err.status, str(err)), status_code=err.status)

    @app.exception_handler(ModelUnavailable)
    async def unavailable(_: Request, err: ModelUnavailable) -> JSONResponse:
        return JSONResponse(openai_error(503, str(err)), status_code=503)

    @app.exception_handler(GenerationFailed)
    async def failed(_: Request, err: GenerationFailed) -> JSONResponse:
        return JSONResponse(openai_error(500, str(err)), status_code=500)

    @app.get("/models")
    async def models() -> dict[str, Any]:
        engine = current_engine()
        on_ok("models")
        card = {
            "id": served_name(engine),
            "object": "model",
            "created": engine.loaded_at,
            "owned_by": "videollm",
            "version": engine.version,  # the registry version, e.g. videollm/3
        }
        return {"object": "list", "data": [card]}

    @app.post("/chat/completions")
    async def chat_completions(request: Request) -> Any:
        engine = current_engine()
        name = served_name(engine)
        async with uploads:
            # Parsed off the event loop: a body of hundreds of MB would stall every stream.
            body = await run_in_threadpool(_json, await request.body())
            req = parse_chat_completion(body, engine.cfg.max_new_tokens)
            del body
            if req.model and req.model != name:
                raise BadRequest(
                    f"model: {req.model!r} is not served here; GET /v1/models lists {name!r}",
                    status=HTTPStatus.NOT_FOUND,
                )
            started = await run_in_threadpool(_start, engine, req)
            # The (base64) video is not needed while the answer streams.
            req.video_url, req.frame_urls = "", []
        reply_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        head = {"id": reply_id, "created": created, "model": name}
        if req.stream:
            chunk = {**head, "object": "chat.completion.chunk"}

            def delta(text: str) -> str:
                choice = {"index": 0, "delta": {"content": text}, "finish_reason": None}
                return event({**chunk, "choices": [choice]})

            def done() -> list[str]:
                on_ok("chat_completions")
                last = {"index": 0, "delta": {}, "finish_reason": _finish_reason(started)}
                events = [event({**chunk, "choices": [last]})]
                if req.include_usage:
                    events.append(event({**chunk, "choices": [], "usage": _usage(started)}))
                return [*events, event("[DONE]")]

            def failed(message: str) -> str:
                return event(openai_error(500, message))

            first = {"index": 0, "delta": {"role": "assistant", "content": ""}}
            opening = event({**chunk, "choices": [{**first, "finish_reason": None}]})
            events = relay(started.generation, delta, done, failed, (opening,))
            return GenerationStream(events, started.generation)
        try:
            await started.generation.finish()
        finally:
            if started.generation.finish_reason is None:  # cancelled while awaiting
                started.generation.cancel()
        on_ok("chat_completions")
        message = {"role": "assistant", "content": started.answer}
        choice = {"index": 0, "message": message, "finish_reason": _finish_reason(started)}
        return {
            **head,
            "object": "chat.completion",
            "choices": [choice],
            "usage": _usage(started),
        }

    return app
