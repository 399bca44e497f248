"""Serving settings, read from the environment so a container or Helm chart can set them."""

from __future__ import annotations

import dataclasses
import os
import typing
from dataclasses import dataclass
from typing import Any

from videollm.errors import ConfigError

#: Field metadata key that names a setting's environment variable.
ENV = "env"


def _env(name: str, default: Any) -> Any:
    """A field read from the environment variable ``name``, ``default`` when unset or empty."""
    return dataclasses.field(default=default, metadata={ENV: name})


@dataclass(frozen=True)
class ServeConfig:
    """Limits and model location of the inference service.

    Each setting is read from ``VIDEOLLM_<NAME>`` (``max_upload_mb``: ``VIDEOLLM_MAX_UPLOAD_MB``);
    an unset or empty variable keeps the default.

    Attributes:
        checkpoint: Checkpoint folder or ``s3://`` URI.
        model_uri: Or an MLflow registry URI such as ``models:/videollm@champion``. With
            neither, the BentoML model ``videollm`` is served (what a Bento built by
            ``videollm package`` holds).
        device: ``auto``, ``cpu`` or ``cuda``.
        max_upload_mb: Largest accepted upload.
        max_duration_s: Longest accepted video.
        max_question_chars: Longest accepted question.
        max_history_chars: Most characters over all ``history`` turns together.
        max_history_turns: Most ``history`` turns; with the character cap it bounds the prompt,
            since every turn adds template tokens.
        max_new_tokens: Cap on ``max_new_tokens`` per request; a request that leaves the field
            out gets ``min(128, max_new_tokens)``.
        max_batch_size: Most requests generating together: each decode step of the LLM runs
            all of them at once (continuous batching); more wait for a free row.
        max_batch_tokens: Most KV-cache positions of the generating batch, padded (rows × the
            longest row's prompt plus ``max_new_tokens``); bounds generation memory. A single
            request over it is refused.
        max_concurrent_decodes: Uploads decoded and encoded at once; their frames are held in
            memory until encoded, so this bounds that memory.
        batch_max_frames: Most frames per batched encoder pass across concurrent requests.
        batch_latency_ms: How long a request waits for others to batch its encoder pass with.
        served_model_name: The name ``/v1/models`` lists and ``/v1/chat/completions`` takes as
            ``model``; empty means the registered model's name, else ``videollm``.
        allowed_media_hosts: Comma-separated hosts whose ``http(s)`` video URLs the server may
            fetch; empty (the default) refuses every such URL.
        bucket: The platform bucket; ``s3://`` video URLs must lie in it (empty: refused).
        load_retry_s: Seconds between tries when the model cannot be loaded yet (e.g. no
            champion registered); 0 tries once.
    """

    # The variable names are spelled out, not derived, so that a search for one (the Helm
    # chart's test does) finds where it is read.
    checkpoint: str = _env("VIDEOLLM_CHECKPOINT", "")
    model_uri: str = _env("VIDEOLLM_MODEL_URI", "")
    device: str = _env("VIDEOLLM_DEVICE", "auto")
    max_upload_mb: int = _env("VIDEOLLM_MAX_UPLOAD_MB", 200)
    max_duration_s: int = _env("VIDEOLLM_MAX_DURATION_S", 600)
    max_question_chars: int = _env("VIDEOLLM_MAX_QUESTION_CHARS", 2000)
    max_history_chars: int = _env("VIDEOLLM_MAX_HISTORY_CHARS", 8000)
    max_history_turns: int = _env("VIDEOLLM_MAX_HISTORY_TURNS", 32)
    max_new_tokens: int = _env("VIDEOLLM_MAX_NEW_TOKENS", 512)
    max_batch_size: int = _env("VIDEOLLM_MAX_BATCH_SIZE", 16)
    max_batch_tokens: int = _env("VIDEOLLM_MAX_BATCH_TOKENS", 32768)
    max_concurrent_decodes: int = _env("VIDEOLLM_MAX_CONCURRENT_DECODES", 4)
    batch_max_frames: int = _env("VIDEOLLM_BATCH_MAX_FRAMES", 400)
    batch_latency_ms: int = _env("VIDEOLLM_BATCH_LATENCY_MS", 10)
    served_model_name: str = _env("VIDEOLLM_SERVED_MODEL_NAME", "")
    allowed_media_hosts: str = _env("VIDEOLLM_ALLOWED_MEDIA_HOSTS", "")
    bucket: str = _env("VIDEOLLM_BUCKET", "")
    load_retry_s: int = _env("VIDEOLLM_LOAD_RETRY_S", 30)

    @classmethod
    def from_env(cls) -> ServeConfig:
        """Build from the ``VIDEOLLM_*`` environment variables of the fields.

        Raises:
            ConfigError: A number setting's variable does not hold one.
        """
        hints = typing.get_type_hints(cls)
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = os.environ.get(f.metadata[ENV])
            if raw:
                values[f.name] = _parse(f.metadata[ENV], raw, hints[f.name])
        return cls(**values)


def _parse(name: str, raw: str, hint: type) -> Any:
    if hint is str:
        return raw
    try:
        return hint(raw)
    except ValueError:
        raise ConfigError(f"{name}: expected {hint.__name__}, got {raw!r}") from None
