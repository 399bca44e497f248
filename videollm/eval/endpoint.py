"""Answer evaluation questions with a served model: any OpenAI-compatible video endpoint.

``videollm evaluate --endpoint URL/v1 --model NAME`` sends each question with its video to
``POST {URL}/chat/completions`` — ours (``videollm serve``) or another model served by vLLM —
and scores the replies exactly as checkpoint evaluation scores generated answers.

A request carries the video file itself as a base64 ``data:`` URL in a ``video_url`` part, the
way vLLM takes video: the first user message is ``[video_url, text]``, earlier turns of a
multi-turn record go before the question as plain user/assistant messages.

A request that still fails after the client's retries fails the whole run, naming the record
and the endpoint: metrics over fewer questions than the champion answered would not be
comparable with its metrics, and counting failures as wrong answers would mix the server's
reliability into the model's score.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from tqdm.auto import tqdm

from videollm.config_loader import check_int, check_number
from videollm.data.tokenize import VIDEO_PLACEHOLDER
from videollm.errors import ConfigError, InputError
from videollm.eval.openai_client import ChatClient, ChatReply, EndpointError
from videollm.video.paths import list_videos

if TYPE_CHECKING:
    from videollm.eval.generate import GenerationArgs

logger = logging.getLogger(__name__)

_ROLE = {"human": "user", "gpt": "assistant"}
# Spelled out, not `mimetypes`: that reads /etc/mime.types, which slim images lack (no mkv).
_MIME = {
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".mov": "video/quicktime",
    ".webm": "video/webm",
    ".avi": "video/x-msvideo",
    ".mkv": "video/x-matroska",
    ".mpg": "video/mpeg",
    ".mpeg": "video/mpeg",
    ".flv": "video/x-flv",
    ".wmv": "video/x-ms-wmv",
    ".3gp": "video/3gpp",
}


@dataclass
class EndpointConfig:
    """An OpenAI-compatible chat-completions endpoint to score instead of a checkpoint.

    Attributes:
        url: API base URL, e.g. ``http://localhost:8000/v1``; empty = evaluate a checkpoint.
        model: Model name the server serves (vLLM: the name given to ``vllm serve``).
        api_key_env: Environment variable holding the key, sent as a Bearer token when set.
        workers: Requests in flight at once; bounded so a run does not flood the server.
        timeout_s: Per-request timeout in seconds (upload, video decode and generation).
        max_retries: Retries after the first attempt on 5xx, 429 and connection errors.
        backoff_s: First retry delay; it doubles on each further retry.
    """

    url: str = ""
    model: str = ""
    # OPENAI_API_KEY: the variable the OpenAI SDK reads, so the one users of OpenAI and of
    # `vllm serve --api-key` already export, and the judge's default. Scoring `videollm serve`
    # takes api_key_env=VIDEOLLM_API_TOKEN when the server has a token.
    api_key_env: str = "OPENAI_API_KEY"
    workers: int = 4
    # Generous: the server decodes the uploaded video and generates while other requests wait.
    timeout_s: float = 300.0
    max_retries: int = 3
    backoff_s: float = 1.0

    def __post_init__(self) -> None:
        if self.url:
            parts = urlsplit(self.url)
            if parts.username is not None or parts.password is not None:
                # The URL is logged and recorded in MLflow; the key belongs in the environment.
                raise ConfigError(
                    "url: must not hold credentials (user:password@); put the key in the "
                    "environment variable named by api_key_env"
                )
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConfigError(
                    f"url: {self.url!r} is not an http(s) URL such as http://localhost:8000/v1"
                )
            if not self.model.strip():
                raise ConfigError(
                    "model: required with an endpoint URL (--model NAME): the name the server "
                    "serves, e.g. the one given to `vllm serve`"
                )
        check_int(self.workers, 1, "workers")
        check_int(self.max_retries, 0, "max_retries")
        check_number(self.timeout_s, "timeout_s", above=0)
        check_number(self.backoff_s, "backoff_s", low=0)

    def display(self) -> str:
        """``MODEL @ URL``, as runs and logs show it."""
        return f"{self.model} @ {self.url}"

    def client(self) -> ChatClient:
        """A client for this endpoint."""
        return ChatClient(
            self.url,
            self.model,
            self.api_key_env,
            timeout_s=self.timeout_s,
            max_retries=self.max_retries,
            backoff_s=self.backoff_s,
        )


@dataclass
class EndpointAnswers:
    """What an endpoint answered, in question order, and what it cost."""

    preds: list[str]
    served_model: str | None = None
    seconds: float = 0.0
    usage: dict[str, int] = field(default_factory=dict)

    def summary(self, cfg: EndpointConfig) -> dict[str, Any]:
        """Which endpoint and model were scored and the totals, for ``metrics.json``."""
        return {
            "url": cfg.url,
            "model": cfg.model,
            "served_model": self.served_model,
            "requests": len(self.preds),
            "seconds": round(self.seconds, 3),
            **{f"total_{k}": v for k, v in sorted(self.usage.items())},
        }


def video_files(videos: str | Path, needed: Iterable[str]) -> dict[str, Path]:
    """The file of each needed video id under ``videos``, named as ``videollm extract`` names
    them (:func:`videollm.video.paths.list_videos`), so records match either way.

    Raises:
        FileNotFoundError: ``videos`` does not exist.
        InputError: Some needed videos are not there (the message names them).
    """
    found = dict(list_videos(videos))
    missing = sorted(set(needed) - set(found))
    if missing:
        shown = ", ".join(missing[:10]) + (" …" if len(missing) > 10 else "")
        raise InputError(
            f"videos: {len(missing)} video(s) referenced by the records are not in {videos}: "
            f"{shown} (ids are paths under the folder without extension, '/' → '_')"
        )
    return {vid: found[vid] for vid in set(needed)}


def video_data_url(path: Path) -> str:
    """The video file as a ``data:<mime>;base64,...`` URL, the MIME type from its extension."""
    mime = _MIME.get(path.suffix.lower(), "application/octet-stream")
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def chat_messages(prompt: Sequence[dict[str, str]], video_url: str) -> list[dict[str, Any]]:
    """OpenAI ``messages`` for a record's turns up to the question: the video leads the first
    user message (``video_url`` part, then the text); later turns are plain text."""
    messages: list[dict[str, Any]] = []
    for turn in prompt:
        role = _ROLE[turn["from"]]
        text = turn["value"].replace(VIDEO_PLACEHOLDER, "").strip()
        if not messages:
            content: Any = [
                {"type": "video_url", "video_url": {"url": video_url}},
                {"type": "text", "text": text},
            ]
        else:
            content = text
        messages.append({"role": role, "content": content})
    return messages


def answer_with_endpoint(
    items: Sequence[dict[str, Any]],
    videos: dict[str, Path],
    cfg: EndpointConfig,
    generation: GenerationArgs,
) -> EndpointAnswers:
    """Ask the endpoint every question, ``cfg.workers`` requests at a time.

    Args:
        items: Evaluation items (:func:`videollm.eval.evaluate.questions_of`).
        videos: Video id → file (:func:`video_files`).
        cfg: The endpoint.
        generation: ``max_new_tokens`` is sent as ``max_tokens``, ``temperature`` as is.

    Returns:
        The answers in ``items`` order, the model the server reported and token totals.

    Raises:
        EndpointError: A request failed after retries (the message names the question's id
            and the endpoint), or the endpoint is unusable (bad key, wrong URL).
    """
    client = cfg.client()
    params = {"max_tokens": generation.max_new_tokens, "temperature": generation.temperature}
    logger.info("asking %s %d questions, %d at a time", cfg.display(), len(items), cfg.workers)

    def ask(item: dict[str, Any]) -> ChatReply:
        # Each worker reads its own video: memory stays at `workers` videos, not all of them.
        messages = chat_messages(item["prompt"], video_data_url(videos[item["video"]]))
        return client.complete(messages, **params)

    result = EndpointAnswers(preds=[""] * len(items))
    started = time.perf_counter()
    pool = ThreadPoolExecutor(max_workers=cfg.workers)
    try:
        futures = {pool.submit(ask, item): i for i, item in enumerate(items)}
        bar = tqdm(as_completed(futures), total=len(futures), desc="evaluate", unit="question")
        for fut in bar:
            i = futures[fut]
            try:
                reply = fut.result()
            except EndpointError as err:
                raise type(err)(
                    f"question {items[i]['id']!r} (video {items[i]['video']!r}): {err}"
                ) from None
            result.preds[i] = reply.content
            result.served_model = result.served_model or reply.model
            for key, value in reply.usage.items():
                result.usage[key] = result.usage.get(key, 0) + value
    finally:
        # On a failure, drop the queued questions instead of sending them all first.
        pool.shutdown(wait=True, cancel_futures=True)
    result.seconds = time.perf_counter() - started
    return result
