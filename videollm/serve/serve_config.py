"""Serving settings, read from the environment so a container or Helm chart can set them."""

from __future__ import annotations

import os
from dataclasses import dataclass


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw else default


@dataclass(frozen=True)
class ServeConfig:
    """Limits and model location of the inference service.

    Attributes:
        checkpoint: Checkpoint folder or ``s3://`` URI (``VIDEOLLM_CHECKPOINT``).
        model_uri: Or an MLflow registry URI such as ``models:/videollm@champion``
            (``VIDEOLLM_MODEL_URI``). With neither, the BentoML model ``videollm`` is served
            (what a Bento built by ``videollm package`` holds).
        device: ``auto``, ``cpu`` or ``cuda`` (``VIDEOLLM_DEVICE``).
        max_upload_mb: Largest accepted upload (``VIDEOLLM_MAX_UPLOAD_MB``).
        max_duration_s: Longest accepted video (``VIDEOLLM_MAX_DURATION_S``).
        max_question_chars: Longest accepted question (``VIDEOLLM_MAX_QUESTION_CHARS``).
        max_history_chars: Most characters over all ``history`` turns together
            (``VIDEOLLM_MAX_HISTORY_CHARS``).
        max_history_turns: Most ``history`` turns (``VIDEOLLM_MAX_HISTORY_TURNS``); with the
            character cap it bounds the prompt, since every turn adds template tokens.
        max_new_tokens: Cap on ``max_new_tokens`` per request (``VIDEOLLM_MAX_NEW_TOKENS``);
            a request that leaves the field out gets ``min(128, max_new_tokens)``.
        max_concurrent_generations: Generations running at once; bounds memory
            (``VIDEOLLM_MAX_CONCURRENT_GENERATIONS``).
        max_concurrent_decodes: Uploads decoded and encoded at once; their frames are held in
            memory until encoded, so this bounds that memory
            (``VIDEOLLM_MAX_CONCURRENT_DECODES``).
        batch_max_frames: Most frames per batched encoder pass across concurrent requests
            (``VIDEOLLM_BATCH_MAX_FRAMES``).
        batch_latency_ms: How long a request waits for others to batch its encoder pass with
            (``VIDEOLLM_BATCH_LATENCY_MS``).
        load_retry_s: Seconds between tries when the model cannot be loaded yet (e.g. no
            champion registered); 0 tries once (``VIDEOLLM_LOAD_RETRY_S``).
    """

    checkpoint: str = ""
    model_uri: str = ""
    device: str = "auto"
    max_upload_mb: int = 200
    max_duration_s: int = 600
    max_question_chars: int = 2000
    max_history_chars: int = 8000
    max_history_turns: int = 32
    max_new_tokens: int = 512
    max_concurrent_generations: int = 2
    max_concurrent_decodes: int = 4
    batch_max_frames: int = 400
    batch_latency_ms: int = 10
    load_retry_s: int = 30

    @classmethod
    def from_env(cls) -> ServeConfig:
        """Build from ``VIDEOLLM_*`` environment variables."""
        return cls(
            checkpoint=os.environ.get("VIDEOLLM_CHECKPOINT", ""),
            model_uri=os.environ.get("VIDEOLLM_MODEL_URI", ""),
            device=os.environ.get("VIDEOLLM_DEVICE", "auto"),
            max_upload_mb=_int("VIDEOLLM_MAX_UPLOAD_MB", 200),
            max_duration_s=_int("VIDEOLLM_MAX_DURATION_S", 600),
            max_question_chars=_int("VIDEOLLM_MAX_QUESTION_CHARS", 2000),
            max_history_chars=_int("VIDEOLLM_MAX_HISTORY_CHARS", 8000),
            max_history_turns=_int("VIDEOLLM_MAX_HISTORY_TURNS", 32),
            max_new_tokens=_int("VIDEOLLM_MAX_NEW_TOKENS", 512),
            max_concurrent_generations=_int("VIDEOLLM_MAX_CONCURRENT_GENERATIONS", 2),
            max_concurrent_decodes=_int("VIDEOLLM_MAX_CONCURRENT_DECODES", 4),
            batch_max_frames=_int("VIDEOLLM_BATCH_MAX_FRAMES", 400),
            batch_latency_ms=_int("VIDEOLLM_BATCH_LATENCY_MS", 10),
            load_retry_s=_int("VIDEOLLM_LOAD_RETRY_S", 30),
        )
