"""The real service, with every generation held until a test opens a gate (a file).

``bentoml serve gated_service:VideoLLMService``, with this folder on ``PYTHONPATH`` and
``VIDEOLLM_TEST_GATE`` naming a folder, serves :mod:`videollm.serve.service` unchanged except
that the scheduler, before it prefills newly admitted requests, touches
``$VIDEOLLM_TEST_GATE/generating`` and waits for ``$VIDEOLLM_TEST_GATE/open``. A test can so
keep a generation in flight for as long as it needs, without guessing how long a real one takes.
A request that is cancelled (its client went away) touches ``$VIDEOLLM_TEST_GATE/cancelled``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from videollm.serve.scheduler import GenerationRequest, Scheduler
from videollm.serve.service import VideoLLMService

__all__ = ["VideoLLMService"]

GATE = Path(os.environ["VIDEOLLM_TEST_GATE"])
_prefill = Scheduler._prefill
_cancel = GenerationRequest.cancel


def _held_prefill(self: Scheduler, *args: Any, **kwargs: Any) -> None:
    (GATE / "generating").touch()
    while not (GATE / "open").exists():
        time.sleep(0.05)
    return _prefill(self, *args, **kwargs)


Scheduler._prefill = _held_prefill


def _noted_cancel(self: GenerationRequest) -> None:
    (GATE / "cancelled").touch()
    _cancel(self)


GenerationRequest.cancel = _noted_cancel
