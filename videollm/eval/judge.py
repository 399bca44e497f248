"""Optional LLM judge over any OpenAI-compatible chat-completions endpoint.

Video-ChatGPT's quantitative evaluation hard-codes GPT-3.5 through the OpenAI SDK. Here the
judge is a URL (OpenAI, vLLM, llama.cpp, Ollama, ...) called with the standard library, so
evaluation works without an OpenAI key and without extra dependencies. With no URL it is off.

The API key is read from the environment variable named in :class:`JudgeConfig` and is never
logged or put in an exception message.

With ``JudgeConfig.cache`` set, replies are kept in a :class:`~videollm.eval.judge_cache.JudgeCache`
so a re-run sends only the requests it has not sent before; :func:`run_judge` also reports who
judged (the model asked for and the model the server said answered) and how many calls it made.
"""

from __future__ import annotations

import ast
import logging
import re
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from tqdm import tqdm

from videollm.eval.judge_cache import CacheEntry, JudgeCache, cache_key
from videollm.eval.judge_prompts import CRITERIA, build_messages, needs_second_answer
from videollm.eval.openai_client import (
    ChatClient,
    EndpointAuthError,
    EndpointError,
    RequestFailedError,
)

logger = logging.getLogger(__name__)

__all__ = [
    "CRITERIA",
    "JudgeAuthError",
    "JudgeCache",
    "JudgeConfig",
    "JudgeError",
    "JudgeResult",
    "judge_predictions",
    "public_url",
    "run_judge",
]


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
        cache: Judge-reply cache, a ``.jsonl`` path or ``s3://`` URI (see
            :mod:`videollm.eval.judge_cache`); ``""`` turns caching off.
    """

    url: str | None = None
    model: str = "gpt-3.5-turbo"
    api_key_env: str = "OPENAI_API_KEY"
    timeout_s: float = 60
    max_retries: int = 3
    backoff_s: float = 1.0
    workers: int = 4
    temperature: float = 0.0
    cache: str = ""


@dataclass
class JudgeResult:
    """What a judge run measured and who judged.

    Attributes:
        metrics: As :func:`judge_predictions` returns them.
        judge: ``model`` (asked for), ``served_model`` (what the server said answered; several
            are joined with ``", "``; ``None`` if it never said), ``url`` (without credentials,
            query or fragment), ``calls`` (requests sent; retries of one request count once)
            and ``cached`` (verdicts read from the cache).
    """

    metrics: dict[str, float] = field(default_factory=dict)
    judge: dict[str, Any] = field(default_factory=dict)


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


def public_url(url: str) -> str:
    """``url`` without user, password, query or fragment: safe to log and to report."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{host}:{port}" if port is not None else host
    return f"{parts.scheme}://{netloc}{parts.path}" if parts.scheme else parts.path


# A reply, and the model name the server reported; None when the request failed for good.
_Reply = tuple[str, str | None]


def _ask(
    client: ChatClient,
    cfg: JudgeConfig,
    cache: JudgeCache | None,
    key: str,
    criterion: str,
    row: dict[str, Any],
    messages: list[dict[str, str]],
) -> _Reply | None:
    try:
        reply = client.complete(messages, temperature=cfg.temperature)
    except RequestFailedError as err:
        # One failed call is counted, not fatal, and not cached: the next run asks again. A bad
        # key or URL (other EndpointErrors) fails every call, so it propagates.
        logger.warning("judge %s failed for %s: %s", criterion, row.get("id"), err)
        return None
    # Some servers echo request headers; nothing the key could be in is kept unredacted.
    text = client.redact(reply.content)
    served = client.redact(reply.model) if reply.model else None
    if cache is not None:
        row_id = row.get("id")
        cache.put(
            CacheEntry(
                key=key,
                model=cfg.model,
                served_model=served,
                criterion=criterion,
                id=None if row_id is None else str(row_id),
                reply=text,
            )
        )
    return text, served


def run_judge(
    preds: Sequence[dict[str, Any]],
    cfg: JudgeConfig,
    criteria: Sequence[str] = ("qa",),
    cache: JudgeCache | None = None,
) -> JudgeResult:
    """Score predictions with the LLM judge; see :func:`judge_predictions` for the metrics.

    Requests whose key (:func:`~videollm.eval.judge_cache.cache_key`) is in the cache are not
    sent; their stored reply is parsed as a fresh one would be. Identical requests within one
    run are sent once.

    Args:
        preds: As for :func:`judge_predictions`.
        cfg: The judge endpoint; with ``cfg.url`` unset nothing is called and the result is
            empty.
        criteria: As for :func:`judge_predictions`.
        cache: An open cache to read and extend (left open, so one cache can serve several
            runs); ``None`` opens ``cfg.cache`` for this run when set.

    Returns:
        The metrics and the judge's identity and call counts.

    Raises:
        JudgeAuthError: The endpoint rejected the key (the message names ``cfg.api_key_env``).
        JudgeError: The URL is not a chat-completions endpoint.
        ValueError: For an unknown criterion.
        ConfigError: ``cfg.cache`` names a folder.
        StorageError: A remote cache could not be read or written.
    """
    if cfg.url is None:
        logger.info("LLM judge off (no judge url configured)")
        return JudgeResult()
    unknown = [c for c in criteria if c not in CRITERIA]
    if unknown:
        raise ValueError(f"unknown judge criteria {unknown}; choose from {list(CRITERIA)}")
    if cache is None and cfg.cache:
        with JudgeCache.open(cfg.cache) as own:
            return _run(preds, cfg, criteria, own)
    return _run(preds, cfg, criteria, cache)


def _run(
    preds: Sequence[dict[str, Any]],
    cfg: JudgeConfig,
    criteria: Sequence[str],
    cache: JudgeCache | None,
) -> JudgeResult:
    client = _client(cfg)
    jobs: list[tuple[str, dict[str, Any], str]] = []
    replies: dict[str, _Reply | None] = {}
    pending: dict[str, tuple[str, dict[str, Any], list[dict[str, str]]]] = {}
    hits = 0
    for c in criteria:
        for row in preds:
            if needs_second_answer(c) and not ("question2" in row and "pred2" in row):
                continue
            messages = build_messages(c, row)
            key = cache_key(cfg.model, messages, cfg.temperature)
            jobs.append((c, row, key))
            entry = cache.get(key) if cache is not None else None
            if entry is not None:
                replies[key] = (entry.reply, entry.served_model)
                hits += 1
            elif key not in replies and key not in pending:
                pending[key] = (c, row, messages)
    pool = ThreadPoolExecutor(max_workers=max(1, cfg.workers))
    try:
        futures = {
            pool.submit(_ask, client, cfg, cache, key, *job): key for key, job in pending.items()
        }
        for fut in tqdm(as_completed(futures), total=len(futures), desc="judge"):
            replies[futures[fut]] = fut.result()  # re-raises JudgeError: a bad key or URL
    finally:
        pool.shutdown(wait=True, cancel_futures=True)

    results: dict[str, list[dict[str, Any]]] = {c: [] for c in criteria}
    malformed = failed = 0
    served: Counter[str] = Counter()
    for c, row, key in jobs:
        reply = replies[key]
        if reply is None:
            failed += 1
            continue
        text, model = reply
        if model:
            served[model] += 1
        result = parse_judge_reply(text, qa=c == "qa")
        if result is None:
            malformed += 1
            logger.warning(
                "unparseable judge reply for %s (%s): %r",
                row.get("id"),
                c,
                client.redact(text)[:200],
            )
        else:
            results[c].append(result)

    out: dict[str, float] = {}
    for c, rows in results.items():
        if not rows:
            continue
        out[f"judge_{c}_score"] = sum(r["score"] for r in rows) / len(rows)
        if c == "qa":
            out["judge_qa_accuracy"] = sum(r["pred"] for r in rows) / len(rows)
    out["judge_malformed"] = float(malformed)
    out["judge_failed"] = float(failed)
    out["judge_failures"] = float(malformed + failed)
    if len(served) > 1:
        logger.warning(
            "judge replies came from several models %s; scores mix judges", sorted(served)
        )
    judge = {
        "model": cfg.model,
        "served_model": ", ".join(sorted(served)) or None,
        "url": public_url(cfg.url or ""),
        "calls": len(pending),
        "cached": hits,
    }
    logger.info(
        "judge %s (served as %s) at %s: %d requests, %d cache hits, %d malformed, %d failed",
        judge["model"],
        judge["served_model"] or "unknown",
        judge["url"],
        judge["calls"],
        judge["cached"],
        malformed,
        failed,
    )
    return JudgeResult(out, judge)


def judge_predictions(
    preds: Sequence[dict[str, Any]],
    cfg: JudgeConfig,
    criteria: Sequence[str] = ("qa",),
    *,
    cache: JudgeCache | None = None,
) -> dict[str, float]:
    """Score predictions with the LLM judge and aggregate, as Video-ChatGPT's evaluation does.

    Args:
        preds: Rows with ``id``, ``question``, ``answer`` and ``pred``. ``consistency`` needs
            the same question asked a second way (``question2``) and the model's answer to it
            (``pred2``); rows without them are skipped for that criterion, not failed.
        cfg: The judge endpoint; with ``cfg.url`` unset nothing is called and ``{}`` returned.
        criteria: Any of ``qa``, ``correctness``, ``detail``, ``context``, ``temporal``,
            ``consistency``.
        cache: An open reply cache to use instead of ``cfg.cache`` (see :func:`run_judge`).

    Returns:
        ``judge_qa_accuracy`` (fraction judged "yes") and ``judge_qa_score`` for ``qa``,
        ``judge_<criterion>_score`` (mean 0..5) for the others, ``judge_malformed`` (replies
        that could not be parsed), ``judge_failed`` (requests that failed after retries) and
        ``judge_failures`` (their sum); both kinds are left out of the means. A metric with no
        usable reply is omitted. :func:`run_judge` also says who judged.

    Raises:
        JudgeAuthError: The endpoint rejected the key (the message names ``cfg.api_key_env``).
        JudgeError: The URL is not a chat-completions endpoint.
        ValueError: For an unknown criterion.
    """
    return run_judge(preds, cfg, criteria, cache=cache).metrics
