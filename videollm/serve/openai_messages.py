"""Reading an OpenAI ``/v1/chat/completions`` body into what the engine takes.

Pure functions, no HTTP: each rule names the field it checks the way OpenAI's errors do
(``messages[1].content[0].video_url.url``), and raises :class:`~videollm.serve.engine.BadRequest`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from videollm.serve.engine import BadRequest

#: Roles of the model's chat template, by OpenAI role.
TURN_ROLE = {"user": "human", "assistant": "gpt"}


@dataclass
class ChatCompletionRequest:
    """A validated chat-completions request.

    Attributes:
        video_url: The one ``video_url`` part's URL; empty when the video came as frames.
        frame_urls: Or the video's frames, ``image_url`` parts in order (how GPT-4o takes
            video, and how lmms-eval's OpenAI-compatible model sends it).
        question: The text of the last user message.
        history: Earlier user/assistant turns as ``{"from", "value"}`` dicts.
        max_tokens: ``max_completion_tokens`` or ``max_tokens``, lowered to the server's
            ``VIDEOLLM_MAX_NEW_TOKENS``; None when neither is given.
        temperature: OpenAI's default is 1; omitted here means greedy (0), as ``/chat``.
        stream: Send server-sent events.
        include_usage: ``stream_options.include_usage``: a last chunk with token counts.
        model: The ``model`` asked for.
    """

    video_url: str
    question: str
    frame_urls: list[str] = field(default_factory=list)
    history: list[dict[str, str]] = field(default_factory=list)
    max_tokens: int | None = None
    temperature: float = 0.0
    stream: bool = False
    include_usage: bool = False
    model: str = ""


#: Most image_url parts (frames) one conversation may carry.
MAX_FRAMES = 512


def _text_of(content: Any, where: str) -> tuple[str, list[str], list[str]]:
    """A message's text, and the video URLs and image (frame) URLs among its parts."""
    if isinstance(content, str):
        return content, [], []
    if not isinstance(content, list) or not content:
        raise BadRequest(f"{where}: must be a string or a non-empty list of content parts")
    texts, videos, images = [], [], []
    for j, part in enumerate(content):
        at = f"{where}[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            if not isinstance(part.get("text"), str):
                raise BadRequest(f"{at}.text: must be a string")
            texts.append(part["text"])
        elif kind == "video_url":
            ref = part.get("video_url")
            url = ref.get("url") if isinstance(ref, dict) else None
            if not isinstance(url, str) or not url:
                raise BadRequest(f'{at}.video_url: must be an object {{"url": "..."}}')
            videos.append(url)
        elif kind == "image_url":
            ref = part.get("image_url")
            url = ref.get("url") if isinstance(ref, dict) else None
            if not isinstance(url, str) or not url:
                raise BadRequest(f'{at}.image_url: must be an object {{"url": "..."}}')
            images.append(url)
        elif kind in ("input_audio", "file"):
            raise BadRequest(f"{at}.type: {kind!r} is not supported; send the video as video_url")
        else:
            raise BadRequest(f"{at}.type: must be 'text', 'video_url' or 'image_url', got {kind!r}")
    return "\n".join(texts), videos, images


def _number(body: dict, name: str, low: float, high: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadRequest(f"{name}: must be a number")
    if value < low and high == math.inf:
        raise BadRequest(f"{name}: must be at least {low:g}, got {value}")
    if not low <= value <= high:
        raise BadRequest(f"{name}: must be between {low:g} and {high:g}, got {value}")
    return value


def parse_chat_completion(body: Any, max_new_tokens_cap: int) -> ChatCompletionRequest:
    """Check a chat-completions body and take out the video, question and history.

    The conversation is Video-ChatGPT's: one video (a ``video_url`` part in any user message,
    or its frames as ``image_url`` parts; the model sees it before the first turn), user and
    assistant turns alternating, ending with the user's question. ``system`` and ``developer``
    messages are accepted and not used: the checkpoint's chat template brings the system prompt
    the model was trained with.

    Raises:
        BadRequest: Naming the first field that is wrong.
    """
    if not isinstance(body, dict):
        raise BadRequest("body: must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages: required, a non-empty list")
    turns: list[dict[str, str]] = []
    videos: list[str] = []
    images: list[str] = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise BadRequest(f'{where}: must be an object with "role" and "content"')
        role = message.get("role")
        if role in ("system", "developer"):
            continue
        if role not in TURN_ROLE:
            raise BadRequest(f"{where}.role: must be one of system, user, assistant, got {role!r}")
        text, found, frames = _text_of(message.get("content"), f"{where}.content")
        if (found or frames) and role != "user":
            raise BadRequest(f"{where}.content: only a user message may carry the video")
        expected = "user" if len(turns) % 2 == 0 else "assistant"
        if role != expected:
            raise BadRequest(f"{where}.role: expected {expected!r}; user and assistant alternate")
        videos += found
        images += frames
        turns.append({"from": TURN_ROLE[role], "value": text})
    if videos and images:
        raise BadRequest(
            "messages: send the video as one video_url or as image_url frames, not both"
        )
    if len(images) > MAX_FRAMES:
        raise BadRequest(f"messages: {len(images)} image_url frames, the limit is {MAX_FRAMES}")
    if len(videos) != 1 and not images:
        raise BadRequest(
            "messages: exactly one video_url content part (or the video's frames as image_url "
            f"parts) is needed, got {len(videos)}"
        )
    if not turns or turns[-1]["from"] != "human":
        raise BadRequest("messages: must end with the user's question")
    if not turns[-1]["value"].strip():
        raise BadRequest("messages: the last user message has no text; it holds the question")
    n = body.get("n", 1)
    if n != 1:
        raise BadRequest(f"n: only 1 is supported, got {n!r}")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise BadRequest("stream: must be true or false")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise BadRequest("stream_options: must be an object")
    given = body.get("max_completion_tokens") is not None
    name = "max_completion_tokens" if given else "max_tokens"
    max_tokens = _number(body, name, 1, math.inf)
    if max_tokens is not None and max_tokens != int(max_tokens):
        raise BadRequest(f"{name}: must be a whole number, got {max_tokens}")
    if max_tokens is not None:
        # As a context limit would: the answer stops at the cap (finish_reason "length").
        # Clients such as lmms-eval ask for more than a server's cap by default.
        max_tokens = min(max_tokens, max_new_tokens_cap)
    temperature = _number(body, "temperature", 0, 2)
    model = body.get("model", "")
    if not isinstance(model, str):
        raise BadRequest("model: must be a string")
    return ChatCompletionRequest(
        video_url=videos[0] if videos else "",
        frame_urls=images,
        question=turns[-1]["value"],
        history=turns[:-1],
        max_tokens=None if max_tokens is None else int(max_tokens),
        temperature=float(temperature or 0.0),
        stream=stream,
        include_usage=bool(options.get("include_usage", False)),
        model=model,
    )
