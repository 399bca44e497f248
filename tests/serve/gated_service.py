"""The real service, with every generation held until a test opens a gate (a file).

``bentoml serve gated_service:VideoLLMService``, with this folder on ``PYTHONPATH`` and
``VIDEOLLM_TEST_GATE`` naming a folder, serves :mod:`videollm.serve.service` unchanged except
that a generation, once it holds its slot, touches ``$VIDEOLLM_TEST_GATE/generating`` and waits
for ``$VIDEOLLM_TEST_GATE/open``. A test can so keep a generation in flight for as long as it
needs, without guessing how long a real one takes.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import videollm.serve.engine as engine
from videollm.serve.service import VideoLLMService

__all__ = ["VideoLLMService"]

GATE = Path(os.environ["VIDEOLLM_TEST_GATE"])
_generate_answers = engine.generate_answers


def _held_generate_answers(*args: Any, **kwargs: Any) -> list[str]:
    (GATE / "generating").touch()
    while not (GATE / "open").exists():
        time.sleep(0.05)
    return _generate_answers(*args, **kwargs)


engine.generate_answers = _held_generate_answers
