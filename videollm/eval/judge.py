"""Optional LLM judge over any OpenAI-compatible chat-completions endpoint.

Video-ChatGPT's quantitative evaluation hard-codes GPT-3.5 through the OpenAI SDK. Here the
judge is a URL (OpenAI, vLLM, llama.cpp, Ollama, ...) called with the standard library, so
evaluation works without an OpenAI key and without extra dependencies. With no URL it is off.

The API key is read from the environment variable named in :class:`JudgeConfig` and is never
logged or put in an exception message.
"""

from __future__ import annotations

import ast
import logging
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

from tqdm import tqdm

from videollm.eval.judge_prompts import CRITERIA, build_messages, needs_second_answer
from videollm.eval.openai_client import (
    ChatClient,
    EndpointAuthError,
    EndpointError,
    RequestFailedError,
)

logger = logging.getLogger(__name__)

__all__ = ["CRITERIA", "JudgeAuthError", "JudgeConfig", "JudgeError", "judge_predictions"]


@dataclass
class JudgeConfig:
    """Where and how to call the judge.

    Attributes:
        url: OpenAI-compatible base URL such as ``http://localhost:8000/v1``; ``None`` turns the
            judge off. Requests go to ``{url}/chat/completions``.
        model: Model name sent in the request body.
        api_key_env: Name of the environment variable holding the API key (sent as a Bearer
            token when set; local servers often need none).
        timeout_s: Per-request timeout in seconds.
        max_retries: Retries after the first attempt on 5xx, 429 and connection errors.
        backoff_s: First retry delay; it doubles on each further retry.
        workers: Concurrent requests.
        temperature: Sampling temperature; 0 makes scores as repeatable as the server allows.
    """

    url: str | None = None
    model: str = "gpt-3.5-turbo"
    api_key_env: str = "OPENAI_API_KEY"
    timeout_s: float = 60
    max_retries: int = 3
    backoff_s: float = 1.0
    workers: int = 4
    temperature: float = 0.0


# The judge's errors are the client's: a bad key or URL is the same failure for either caller.
JudgeError = EndpointError
JudgeAuthError = EndpointAuthError


def _client(cfg: JudgeConfig) -> ChatClient:
    return ChatClient(
        cfg.url or "",
        cfg.model,
        cfg.api_key_env,
        timeout_s=cfg.timeout_s,
        max_retries=cfg.max_retries,
        backoff_s=cfg.backoff_s,
        name="judge",
    )


_SCORE_RE = re.compile(r"""['"]?score['"]?\s*:\s*['"]?(\d+(?:\.\d+)?)""", re.IGNORECASE)
_PRED_RE = re.compile(r"""['"]?pred['"]?\s*:\s*['"]?(yes|no)\b""", re.IGNORECASE)


def parse_judge_reply(text: str, qa: bool) -> dict[str, Any] | None:
    """Read ``{'score': s}`` (or ``{'pred': 'yes'|'no', 'score': s}`` when ``qa``) from a reply.

    Tries ``ast.literal_eval`` on the first ``{...}`` in the text, then regular expressions, so
    code fences, JSON quoting and chatter around the dict are tolerated.

    Returns:
        ``{"score": float}`` plus ``"pred": bool`` for QA, or ``None`` when the reply is
        unusable (missing fields, score outside 0..5).
    """
    parsed: Any = None
    match = re.search(r"\{.*?\}", text, re.DOTALL)
    if match:
        try:
            parsed = ast.literal_eval(match.group(0))
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            parsed = None
    if not isinstance(parsed, dict):
        parsed = {}
        if m := _SCORE_RE.search(text):
            parsed["score"] = m.group(1)
        if m := _PRED_RE.search(text):
            parsed["pred"] = m.group(1)
    try:
        score = float(parsed["score"])
    except (KeyError, TypeError, ValueError):
        return None
    if not 0 <= score <= 5:
        return None
    if not qa:
        return {"score": score}
    pred = str(parsed.get("pred", "")).strip().lower()
    if pred not in ("yes", "no"):
        return None
    return {"score": score, "pred": pred == "yes"}


def _judge_one(
    client: ChatClient, cfg: JudgeConfig, criterion: str, row: dict[str, Any]
) -> dict[str, Any] | None:
    try:
        reply = client.complete(build_messages(criterion, row), temperature=cfg.temperature)
    except RequestFailedError as err:
        # One failed call is counted, not fatal; a bad key or URL (other EndpointErrors)
        # fails every call, so it propagates.
        logger.warning("judge %s failed for %s: %s", criterion, row.get("id"), err)
        return None
    result = parse_judge_reply(reply.content, qa=criterion == "qa")
    if result is None:
        logger.warning(
            "unparseable judge reply for %s (%s): %r",
            row.get("id"),
            criterion,
            client.redact(reply.content)[:200],
        )
    return result


def judge_predictions(
    preds: Sequence[dict[str, Any]],
    cfg: JudgeConfig,
    criteria: Sequence[str] = ("qa",),
) -> dict[str, float]:
    """Score predictions with the LLM judge and aggregate, as Video-ChatGPT's evaluation does.

    Args:
        preds: Rows with ``id``, ``question``, ``answer`` and ``pred``. ``consistency`` needs
            the same question asked a second way (``question2``) and the model's answer to it
            (``pred2``); rows without them are skipped for that criterion, not failed.
        cfg: The judge endpoint; with ``cfg.url`` unset nothing is called and ``{}`` returned.
        criteria: Any of ``qa``, ``correctness``, ``detail``, ``context``, ``temporal``,
            ``consistency``.

    Returns:
        ``judge_qa_accuracy`` (fraction judged "yes") and ``judge_qa_score`` for ``qa``,
        ``judge_<criterion>_score`` (mean 0..5) for the others, and ``judge_failures`` (calls
        whose reply could not be used; they are left out of the means). A metric with no usable
        reply is omitted.

    Raises:
        JudgeAuthError: The endpoint rejected the key (the message names ``cfg.api_key_env``).
        JudgeError: The URL is not a chat-completions endpoint.
        ValueError: For an unknown criterion.
    """
    if cfg.url is None:
        logger.info("LLM judge off (no judge url configured)")
        return {}
    unknown = [c for c in criteria if c not in CRITERIA]
    if unknown:
        raise ValueError(f"unknown judge criteria {unknown}; choose from {list(CRITERIA)}")
    client = _client(cfg)
    jobs = [
        (c, row)
        for c in criteria
        for row in preds
        if not needs_second_answer(c) or ("question2" in row and "pred2" in row)
    ]
    results: dict[str, list[dict[str, Any]]] = {c: [] for c in criteria}
    failures = 0
    pool = ThreadPoolExecutor(max_workers=max(1, cfg.workers))
    try:
        futures = {pool.submit(_judge_one, client, cfg, c, row): c for c, row in jobs}
        for fut in tqdm(as_completed(futures), total=len(futures), desc="judge"):
            result = fut.result()  # re-raises JudgeError: a bad key or URL
            if result is None:
                failures += 1
            else:
                results[futures[fut]].append(result)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    out: dict[str, float] = {}
    for c, rows in results.items():
        if not rows:
            continue
        out[f"judge_{c}_score"] = sum(r["score"] for r in rows) / len(rows)
        if c == "qa":
            out["judge_qa_accuracy"] = sum(r["pred"] for r in rows) / len(rows)
    out["judge_failures"] = float(failures)
    return out
