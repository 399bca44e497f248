"""A small client for OpenAI-compatible ``/chat/completions`` endpoints, on the standard library.

The LLM judge and endpoint evaluation (``videollm evaluate --endpoint``) both talk to servers
such as OpenAI, vLLM, llama.cpp, Ollama or ``videollm serve``. This module is their one HTTP
call: a bearer key read from a named environment variable, a timeout, retries with exponential
backoff on 5xx, 429 and connection errors, and errors that say what to fix.

The key is never logged and never put in an exception message: server text that reaches a
message is redacted first, because some servers echo request headers in their error bodies.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from videollm.errors import VideoLLMError

logger = logging.getLogger(__name__)

# A server's error text goes into messages; more than this is a stack trace, not a reason.
_DETAIL_CHARS = 300
# Honour a server's Retry-After, but never sleep longer than this on one retry.
_MAX_RETRY_AFTER_S = 60.0


class EndpointError(VideoLLMError):
    """A chat-completions endpoint is unusable or a request to it failed."""


class EndpointAuthError(EndpointError):
    """The endpoint rejected the request's API key, or wanted one and got none (401/403)."""


class EndpointNotFoundError(EndpointError):
    """Nothing answers chat completions at the URL (404): wrong host, port or path."""


class RequestFailedError(EndpointError):
    """One request failed for good: a 4xx reply, an unusable reply, or retries exhausted."""


class _Transient(Exception):
    """A failure worth retrying (5xx, 429, connection error, timeout)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


@dataclass
class ChatReply:
    """The parts of a ``chat.completion`` response that callers use.

    Attributes:
        content: ``choices[0].message.content``.
        model: The model name the server says answered (``model``), if it says.
        usage: ``usage`` (``prompt_tokens``, ``completion_tokens`` ...), empty if absent.
    """

    content: str
    model: str | None = None
    usage: dict[str, int] = field(default_factory=dict)


def redact(text: str, secret: str | None) -> str:
    """``text`` with every occurrence of ``secret`` replaced by ``***``."""
    return text.replace(secret, "***") if secret else text


def _error_detail(body: bytes) -> str:
    """The server's reason from an error body: OpenAI's ``{"error": {"message": ...}}``, the
    older vLLM ``{"message": ...}``, FastAPI's ``{"detail": ...}``, or the raw text."""
    text = body.decode("utf-8", "replace")
    try:
        payload = json.loads(text)
    except ValueError:
        return text.strip()[:_DETAIL_CHARS]
    if isinstance(payload, dict):
        err = payload.get("error")
        for candidate in (
            err.get("message") if isinstance(err, dict) else err,
            payload.get("message"),
            payload.get("detail"),
        ):
            if isinstance(candidate, str) and candidate.strip():
                return candidate.strip()[:_DETAIL_CHARS]
    return text.strip()[:_DETAIL_CHARS]


def _retry_after(err: urllib.error.HTTPError) -> float | None:
    value = err.headers.get("Retry-After") if err.headers else None
    try:
        return min(float(value), _MAX_RETRY_AFTER_S) if value else None
    except ValueError:
        return None  # an HTTP date: rare from these servers; the backoff is good enough


class ChatClient:
    """Posts chat completions to ``{base_url}/chat/completions``.

    Thread-safe: one client may serve many worker threads.

    Args:
        base_url: OpenAI-compatible base URL, e.g. ``http://localhost:8000/v1``.
        model: Model name sent as ``model`` in every request.
        api_key_env: Environment variable holding the API key, read once here and sent as
            ``Authorization: Bearer ...`` when set (local servers often need none).
        timeout_s: Per-attempt timeout in seconds.
        max_retries: Retries after the first attempt on 5xx, 429, connection errors and
            timeouts.
        backoff_s: First retry delay; it doubles on each further retry (a 429's
            ``Retry-After`` is honoured when longer).
        name: What the endpoint is to the user (``judge``, ``endpoint``), for messages.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str,
        timeout_s: float = 60,
        max_retries: int = 3,
        backoff_s: float = 1.0,
        name: str = "endpoint",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.url = f"{self.base_url}/chat/completions"
        self.model = model
        self.api_key_env = api_key_env
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.name = name
        self._key = os.environ.get(api_key_env) or None

    def __repr__(self) -> str:  # the default would be harmless, but say it: no key in here
        return f"ChatClient({self.url!r}, model={self.model!r}, api_key_env={self.api_key_env!r})"

    def redact(self, text: str) -> str:
        """``text`` with this client's API key replaced by ``***``."""
        return redact(text, self._key)

    def complete(self, messages: list[dict[str, Any]], **params: Any) -> ChatReply:
        """One chat completion, retried on transient failures.

        Args:
            messages: OpenAI ``messages`` (``content`` a string or a list of parts).
            **params: Further body fields: ``temperature``, ``max_tokens`` ...

        Returns:
            The reply's text, model and usage.

        Raises:
            EndpointAuthError: 401/403; the message names ``api_key_env``, never the key.
            EndpointNotFoundError: 404: no chat-completions endpoint at the URL.
            RequestFailedError: Another 4xx (with the server's reason), a reply that is not a
                chat completion, or every attempt failed transiently.
        """
        body = json.dumps({"model": self.model, "messages": messages, **params}).encode()
        for attempt in range(self.max_retries + 1):
            try:
                return self._post(body)
            except _Transient as err:
                if attempt == self.max_retries:
                    raise RequestFailedError(
                        f"{self.name} at {self.url}: gave up after {attempt + 1} attempts; "
                        f"last error: {err}"
                    ) from None
                delay = max(self.backoff_s * 2**attempt, err.retry_after or 0.0)
                logger.info(
                    "%s request failed (%s); retry %d/%d in %.2fs",
                    self.name,
                    err,
                    attempt + 1,
                    self.max_retries,
                    delay,
                )
                time.sleep(delay)
        raise AssertionError("unreachable")

    def _post(self, body: bytes) -> ChatReply:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        req = urllib.request.Request(self.url, body, headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as err:
            raise self._http_error(err) from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
            reason = getattr(err, "reason", None) or err
            raise _Transient(self.redact(f"{type(err).__name__}: {reason}")) from None
        return self._parse(raw)

    def _http_error(self, err: urllib.error.HTTPError) -> Exception:
        code = err.code
        if code >= 500 or code == 429:
            return _Transient(f"HTTP {code}", _retry_after(err))
        if code in (401, 403):
            why = (
                f"the key in {self.api_key_env} was refused"
                if self._key
                else f"no key was sent: {self.api_key_env} is not set"
            )
            return EndpointAuthError(
                f"{self.name} at {self.base_url} rejected the request (HTTP {code}): {why}; "
                f"check the environment variable {self.api_key_env} (setting api_key_env)"
            )
        if code == 404:
            return EndpointNotFoundError(
                f"no chat-completions endpoint at {self.url} (HTTP 404); the URL should be "
                "the API base, usually ending in /v1"
            )
        try:
            detail = self.redact(_error_detail(err.read()))
        except (OSError, http.client.HTTPException):
            detail = ""
        return RequestFailedError(
            f"{self.name} at {self.url} refused the request (HTTP {code}): {detail or err.reason}"
        )

    def _parse(self, raw: bytes) -> ChatReply:
        try:
            payload = json.loads(raw.decode("utf-8"))
            content = payload["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            shown = self.redact(raw.decode("utf-8", "replace"))[:_DETAIL_CHARS]
            raise RequestFailedError(
                f"{self.name} at {self.url} did not reply with a chat completion "
                f"(choices[0].message.content): {shown!r}"
            ) from None
        if not isinstance(content, str):
            raise RequestFailedError(f"{self.name} at {self.url}: reply has no text content")
        usage = payload.get("usage")
        counts = (
            {k: v for k, v in usage.items() if isinstance(v, int)}
            if isinstance(usage, dict)
            else {}
        )
        model = payload.get("model")
        return ChatReply(content, model if isinstance(model, str) else None, counts)
