"""Ctrl-C during training stops between optimizer steps, never halfway through a checkpoint.

Python's default SIGINT raises ``KeyboardInterrupt`` wherever the main thread is, which can be
inside the Trainer's checkpoint save or rotation and leave a half-written ``checkpoint-N``.
Here the first Ctrl-C only asks to stop: the run ends at the end of the current step (before
that step's save starts), with ``KeyboardInterrupt`` as usual. A second Ctrl-C stops at once.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from transformers import TrainerCallback

logger = logging.getLogger(__name__)


class StopOnInterrupt(TrainerCallback):
    """A Trainer callback that turns the first SIGINT into a stop at the next step's end."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = signal.default_int_handler

    def _on_sigint(self, signum: int, frame: Any) -> None:
        self.requested = True
        signal.signal(signal.SIGINT, self._previous)  # a second Ctrl-C interrupts at once
        logger.warning("interrupted: stopping after this step (Ctrl-C again to stop at once)")

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Stop here, before this step's checkpoint save, if Ctrl-C was pressed."""
        if self.requested:
            raise KeyboardInterrupt

    @contextmanager
    def installed(self) -> Iterator[None]:
        """Handle SIGINT this way for the duration of the block (main thread only)."""
        if threading.current_thread() is not threading.main_thread():
            yield  # signal handlers can only be set from the main thread
            return
        self._previous = signal.signal(signal.SIGINT, self._on_sigint)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, self._previous)
