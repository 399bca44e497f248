"""Server-sent events out of a :class:`~videollm.serve.generation.Generation`.

Both streaming APIs (``/chat`` with ``stream=true`` and ``/v1/chat/completions`` with
``"stream": true``) answer with a :class:`GenerationStream` of :func:`relay`'s events, so both
free their batch row the same way when the client goes: the response ends (Starlette cancels it
on the disconnect, even before its first event) and cancels an unfinished generation, which the
scheduler drops at its next step.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from videollm.serve.generation import Generation, GenerationFailed

logger = logging.getLogger(__name__)

#: Headers of an event stream: no caching, and no buffering by an nginx ingress in between.
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def event(data: Any, name: str | None = None) -> str:
    """One SSE event: an optional ``event:`` line and a JSON (or literal string) ``data:``."""
    payload = data if isinstance(data, str) else json.dumps(data)
    return (f"event: {name}\n" if name else "") + f"data: {payload}\n\n"


async def relay(
    generation: Generation,
    delta: Callable[[str], str],
    done: Callable[[], list[str]],
    failed: Callable[[str], str],
    opening: tuple[str, ...] = (),
) -> AsyncIterator[str]:
    """``opening``, an event per text delta, then the closing events; or ``failed`` at a failure.

    Args:
        generation: The generation to stream.
        delta: The event of one text delta.
        done: The events after the last delta.
        failed: The event that reports a failure mid-stream (the status is already 200).
        opening: Events sent before the first delta.
    """
    try:
        for item in opening:
            yield item
        async for text in generation:
            yield delta(text)
        for item in done():
            yield item
    except GenerationFailed as err:
        logger.error("%s", err)
        yield failed(str(err))


class GenerationStream(StreamingResponse):
    """An event stream that cancels its generation however it ends (client gone included)."""

    def __init__(self, events: AsyncIterator[str], generation: Generation) -> None:
        super().__init__(events, media_type="text/event-stream", headers=HEADERS)
        self.generation = generation

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            if self.generation.finish_reason is None:
                logger.info("client went away; freeing its batch row")
                self.generation.cancel()
