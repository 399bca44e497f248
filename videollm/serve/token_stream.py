"""A one-writer, one-reader queue of generation events that both threads and asyncio can read.

The scheduler's thread writes token ids into it; a request reads them either blocking (a sync
API on BentoML's thread pool) or awaiting (a streaming response on the event loop). An
``asyncio.Queue`` cannot be fed from another thread and a ``queue.Queue`` blocks the event loop,
hence this small class.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Finished:
    """The last event of a generation.

    Attributes:
        reason: ``stop`` (an end-of-sequence token), ``length`` (``max_new_tokens`` reached) or
            ``cancelled`` (the client went away).
        error: What went wrong, when the generation failed instead.
    """

    reason: str
    error: BaseException | None = None


Event = int | Finished


class TokenStream:
    """Events of one generation: token ids, then one :class:`Finished`."""

    def __init__(self) -> None:
        self._items: deque[Event] = deque()
        self._cond = threading.Condition()
        self._wake: Callable[[], None] | None = None

    def put(self, event: Event) -> None:
        """Add an event (the scheduler's thread)."""
        with self._cond:
            self._items.append(event)
            self._cond.notify_all()
            wake = self._wake
        if wake is not None:
            # RuntimeError: the reader's event loop has closed, so nobody is waiting.
            with contextlib.suppress(RuntimeError):
                wake()

    def get(self) -> Event:
        """The next event, blocking until there is one."""
        with self._cond:
            while not self._items:
                self._cond.wait()
            return self._items.popleft()

    async def aget(self) -> Event:
        """The next event, awaiting it without blocking the event loop."""
        loop = asyncio.get_running_loop()
        ready = asyncio.Event()
        while True:
            with self._cond:
                if self._items:
                    self._wake = None
                    return self._items.popleft()
                ready.clear()
                self._wake = lambda: loop.call_soon_threadsafe(ready.set)
            await ready.wait()
