"""Turn a nested config into MLflow params: flat ``a.b.c`` keys, string values, no secrets."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

from mlflow.utils.validation import MAX_ENTITY_KEY_LENGTH, MAX_PARAM_VAL_LENGTH

REDACTED = "***"
# Matched against the last key segment only, so "max_tokens" or "tokenizer" stay visible.
_SECRET_KEY = re.compile(
    r"(secret|password|passwd|api_?key|access_?key|secret_?key|credentials?|auth_?token|"
    r"session_?token|private_?key)$",
    re.IGNORECASE,
)


def _is_secret(key: str) -> bool:
    return bool(_SECRET_KEY.search(key.rsplit(".", 1)[-1]))


def _as_mapping(value: Any) -> Mapping[str, Any] | None:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return value
    return None


def _to_text(value: Any) -> str:
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_to_text(v) for v in value) + "]"
    return str(value)


def flatten_params(params: Mapping[str, Any] | Any, prefix: str = "") -> dict[str, str]:
    """Flatten nested mappings/dataclasses to ``{"a.b.c": "value"}``.

    Values are stringified and cut to MLflow's ``MAX_PARAM_VAL_LENGTH``; keys longer than
    ``MAX_ENTITY_KEY_LENGTH`` are cut too. Values under secret-looking keys (``password``,
    ``secret_key``, ``api_key`` ...) are replaced by ``***``.

    Args:
        params: a mapping or dataclass instance, possibly nested.
        prefix: key prefix used in recursion.

    Returns:
        Flat string-to-string mapping ready for ``mlflow.log_params``.
    """
    mapping = _as_mapping(params)
    if mapping is None:
        return {prefix or "value": _to_text(params)[:MAX_PARAM_VAL_LENGTH]}
    flat: dict[str, str] = {}
    for key, value in mapping.items():
        full = f"{prefix}.{key}" if prefix else str(key)
        if _as_mapping(value) is not None:
            flat.update(flatten_params(value, full))
            continue
        text = REDACTED if _is_secret(full) and value else _to_text(value)
        flat[full[:MAX_ENTITY_KEY_LENGTH]] = text[:MAX_PARAM_VAL_LENGTH]
    return flat
