"""Adaptive batching of one model step across concurrent requests, inside one process.

Requests announce themselves with :meth:`Batcher.coming` while they prepare their input (decode
a video), then hand it to :meth:`Batcher.submit` and block. A single worker thread takes what is
queued, and waits for more (up to ``max_batch`` rows, at most ``max_latency_ms``) only while
other announced requests are still on their way; then it runs the step once on the
concatenation and hands each request its rows. A lone request never waits; under load, the
encoder runs fewer, larger passes. It is in-process rather than a separate BentoML batchable
service because the encoder's input is a whole clip of pixels (tens of MB) that would otherwise
cross a socket.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager

import torch

logger = logging.getLogger(__name__)


class Batcher:
    """Run ``fn`` on row-concatenated inputs from many threads.

    Args:
        fn: Maps an ``N×…`` tensor to an ``N×…`` tensor, row for row.
        max_batch: Most rows per call (a single larger input still runs, alone).
        max_latency_ms: How long the first queued input waits for company.
    """

    def __init__(
        self,
        fn: Callable[[torch.Tensor], torch.Tensor],
        max_batch: int = 256,
        max_latency_ms: float = 10.0,
    ) -> None:
        self.fn = fn
        self.max_batch = max_batch
        self.max_latency_s = max_latency_ms / 1e3
        self.calls = 0  # how many times ``fn`` ran: batching made this < submissions
        self._queue: queue.Queue[tuple[torch.Tensor, Future]] = queue.Queue()
        self._held: tuple[torch.Tensor, Future] | None = None  # did not fit; goes first next
        self._coming = 0  # requests announced and not yet answered
        self._lock = threading.Lock()
        threading.Thread(target=self._work, name="videollm-batcher", daemon=True).start()

    @contextmanager
    def coming(self) -> Iterator[None]:
        """Announce a request that will :meth:`submit` soon, so a batch waits for it."""
        with self._lock:
            self._coming += 1
        try:
            yield
        finally:
            with self._lock:
                self._coming -= 1

    def submit(self, rows: torch.Tensor) -> torch.Tensor:
        """Queue ``rows``, wait for the batched call, return this input's share of the output."""
        future: Future = Future()
        self._queue.put((rows, future))
        return future.result()

    def _take(self) -> list[tuple[torch.Tensor, Future]]:
        first, self._held = self._held or self._queue.get(), None
        batch = [first]
        size = len(first[0])
        deadline = time.monotonic() + self.max_latency_s
        while size < self.max_batch:
            # Take what is already queued; wait only while announced requests outnumber
            # those in this batch (they are still decoding), and not past the deadline.
            waiting = self._coming > len(batch)
            remaining = deadline - time.monotonic() if waiting else 0.0
            try:
                item = (
                    self._queue.get(timeout=remaining)
                    if remaining > 0
                    else self._queue.get_nowait()
                )
            except queue.Empty:
                if waiting and time.monotonic() < deadline:
                    continue
                break
            if size + len(item[0]) > self.max_batch:
                self._held = item
                break
            batch.append(item)
            size += len(item[0])
        return batch

    def _work(self) -> None:
        while True:
            batch = self._take()
            try:
                out = self.fn(torch.cat([rows for rows, _ in batch]))
            except Exception as err:  # every waiting request gets the error, the worker lives on
                for _, future in batch:
                    future.set_exception(err)
                continue
            self.calls += 1
            logger.debug("batched %d requests into one call", len(batch))
            for (_, future), part in zip(batch, out.split([len(r) for r, _ in batch]), strict=True):
                future.set_result(part)
