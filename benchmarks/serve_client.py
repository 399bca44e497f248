"""The client side of ``benchmarks/serve.py``: timed ``POST /chat`` calls (streamed or not),
load at a fixed concurrency, the server tree's RSS, and the numbers a level reports."""

from __future__ import annotations

import contextlib
import json
import math
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import psutil


@dataclass(frozen=True)
class Reply:
    """One request as the client saw it.

    Attributes:
        latency_ms: From sending the request to the whole answer.
        ttft_ms: To the first ``token`` event; the latency for a server that does not stream.
        answer: The answer text ('' when the request failed).
        tokens: Tokens generated, when the server reports them (``usage.completion_tokens``).
        error: Why the request failed, else None.
    """

    latency_ms: float
    ttft_ms: float
    answer: str = ""
    tokens: int | None = None
    error: str | None = None


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile (0 < q <= 100): a value that was measured."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def sse_events(lines: Iterable[str]) -> Iterator[tuple[str, str]]:
    """``(event, data)`` of a server-sent event stream's lines (``message`` when unnamed)."""
    name, data = "message", []
    for line in lines:
        if not line:
            if data:
                yield name, "\n".join(data)
            name, data = "message", []
        elif line.startswith(":"):
            continue  # a comment (keep-alive)
        else:
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
    if data:
        yield name, "\n".join(data)


@dataclass(frozen=True)
class Ask:
    """One request's inputs: the same list for every server."""

    video: bytes
    question: str
    max_new_tokens: int


def ask(client: httpx.Client, url: str, item: Ask, stream: bool) -> Reply:
    """``POST /chat``; with ``stream``, as server-sent events, timing the first ``token``."""
    form = {"question": item.question, "max_new_tokens": str(item.max_new_tokens)}
    files = {"video": ("clip.mp4", item.video, "video/mp4")}
    start = time.perf_counter()
    ttft = None
    try:
        if not stream:
            response = client.post(url + "/chat", data=form, files=files)
            response.raise_for_status()
            body = response.json()
        else:
            form["stream"] = "true"
            with client.stream("POST", url + "/chat", data=form, files=files) as response:
                response.raise_for_status()
                body = {}
                for event, data in sse_events(response.iter_lines()):
                    if event == "token" and ttft is None and json.loads(data)["text"]:
                        ttft = (time.perf_counter() - start) * 1e3
                    elif event == "done":
                        body = json.loads(data)
                    elif event == "error":
                        raise RuntimeError(data)
                if not body:
                    raise RuntimeError("the stream ended without a done event")
    except (httpx.HTTPError, RuntimeError, ValueError) as err:
        elapsed = (time.perf_counter() - start) * 1e3
        return Reply(elapsed, elapsed, error=f"{type(err).__name__}: {err}"[:300])
    latency = (time.perf_counter() - start) * 1e3
    tokens = (body.get("usage") or {}).get("completion_tokens")
    return Reply(latency, latency if ttft is None else ttft, body.get("answer", ""), tokens)


class RssSampler:
    """Samples the summed RSS of a process and all its descendants in a background thread.

    Shared pages count once per process that maps them, as ``ps`` would add them up.
    """

    def __init__(self, pid: int, every_s: float = 0.2) -> None:
        self.root = psutil.Process(pid)
        self.every_s = every_s
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> int:
        """The tree's RSS now, in bytes (a process that exits meanwhile counts 0)."""
        total = 0
        try:
            tree = [self.root, *self.root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return 0
        for proc in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                total += proc.memory_info().rss
        return total

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.peak = max(self.peak, self.sample())

    def __enter__(self) -> RssSampler:
        self.peak = self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.sample())


def summarise(replies: list[Reply], wall_s: float) -> dict[str, float | int | None]:
    """Requests/s (answered ones), latency and TTFT percentiles, mean answer size, errors."""
    ok = [r for r in replies if r.error is None]
    latencies = [r.latency_ms for r in ok]
    ttfts = [r.ttft_ms for r in ok]
    counted = [r.tokens for r in ok if r.tokens is not None]
    return {
        "requests": len(replies),
        "errors": len(replies) - len(ok),
        "req_per_s": len(ok) / wall_s if wall_s > 0 else math.nan,
        "p50_ms": percentile(latencies, 50),
        "p95_ms": percentile(latencies, 95),
        "ttft_p50_ms": percentile(ttfts, 50),
        "ttft_p95_ms": percentile(ttfts, 95),
        "tokens_per_req": sum(counted) / len(counted) if counted else None,
        "chars_per_req": sum(len(r.answer) for r in ok) / len(ok) if ok else math.nan,
    }


def load(url: str, asks: list[Ask], concurrency: int, stream: bool, pid: int) -> dict:
    """Send ``asks`` at ``concurrency`` at once; the summary plus the tree's peak RSS (MB)."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    with httpx.Client(timeout=1800, limits=limits) as client, RssSampler(pid) as rss:
        start = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            replies = list(pool.map(lambda item: ask(client, url, item, stream), asks))
        wall = time.perf_counter() - start
    failed = [r.error for r in replies if r.error]
    return {
        "concurrency": concurrency,
        **summarise(replies, wall),
        "peak_rss_mb": rss.peak / 2**20,
        "first_error": failed[0] if failed else None,
    }
