"""Shared reading and checking of benchmark annotation files, with the line of every item.

Published benchmark files are JSON lists (often one list on one line, often pretty-printed);
a few forks ship JSONL. Both are read by :func:`videollm.data.records.read_json_items`, which
decodes a list element by element and so knows the 1-based line on which each item starts.
Errors are :class:`~videollm.errors.RecordFormatError` (an ``InputError``) naming the file, that
line, the item's position and the field.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from videollm.data.records import JsonItem, item_error, read_json_items
from videollm.errors import ConfigError, RecordFormatError


def require_file(path: str | Path, what: str) -> Path:
    """``path`` as an existing file, or a ``ConfigError`` saying what it should have been."""
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"{what}: {p} is a folder; expected one JSON file")
    if not p.is_file():
        raise ConfigError(f"{what}: {p} does not exist")
    return p


def read_items(path: str | Path) -> list[JsonItem]:
    """The items of a JSON-list or JSONL file, each with its line and position.

    Raises:
        RecordFormatError: Invalid JSON (with the line), an empty file, or a top level that is
            not a list (a pretty-printed object, a number, ...).
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise RecordFormatError(str(p), f"not UTF-8 text: {err}") from err
    stripped = text.strip()
    if not stripped:
        raise RecordFormatError(str(p), "the file is empty; expected a JSON list of items")
    if not stripped.startswith("["):
        _refuse_non_list(p, stripped)
    items = read_json_items(p)
    if not items:
        raise RecordFormatError(str(p), "the file holds no items")
    return items


def _refuse_non_list(path: Path, stripped: str) -> None:
    """Raise unless ``stripped`` is JSONL: one object per line.

    A JSON object spread over several lines is a whole-file object (for instance the dict
    keyed by video that Video-ChatGPT's generation script writes), not JSONL.
    """
    try:
        whole = json.loads(stripped)
    except json.JSONDecodeError:
        return  # several lines of JSON: JSONL, checked line by line by the reader
    if isinstance(whole, dict) and "\n" not in stripped:
        return  # a one-line JSONL file
    kind = type(whole).__name__ if not isinstance(whole, dict) else "JSON object"
    raise RecordFormatError(str(path), f"the top level is a {kind}; expected a list of items")


def fail(path: str | Path, item: JsonItem, reason: str, field: str | None = None) -> Exception:
    """The error for ``item`` of ``path`` (line, position, field)."""
    return item_error(path, item, reason, field)


def require_object(path: str | Path, item: JsonItem) -> dict[str, Any]:
    """``item.value`` as a dict, or an error saying what it is instead."""
    if not isinstance(item.value, dict):
        raise fail(path, item, f"an item must be a JSON object, got {type(item.value).__name__}")
    return item.value


def text_field(
    obj: dict[str, Any],
    key: str,
    path: str | Path,
    item: JsonItem,
    *,
    numbers: bool = False,
) -> str:
    """``obj[key]`` as non-blank text, stripped.

    Args:
        numbers: Also accept an integer or a float (written as text): ids, answers such as
            ``3`` and MSRVTT's numeric video ids are numbers in some files.
    """
    if key not in obj:
        raise fail(path, item, "is missing", key)
    value = obj[key]
    if numbers and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        kind = "text or a number" if numbers else "text"
        raise fail(path, item, f"must be {kind}, got {type(value).__name__} {value!r}", key)
    if not value.strip():
        raise fail(path, item, "is empty", key)
    return value.strip()


def first_key(obj: dict[str, Any], keys: Sequence[str]) -> str | None:
    """The first of ``keys`` present in ``obj``, or ``None``."""
    return next((k for k in keys if k in obj), None)


def optional_number(obj: dict[str, Any], key: str, path: str | Path, item: JsonItem) -> float:
    """``obj[key]`` as a float (the caller checked the key is there)."""
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise fail(path, item, f"must be a number, got {type(value).__name__} {value!r}", key)
    return float(value)


def check_unique_ids(items: Iterable[tuple[str, str | Path, JsonItem]], field: str) -> None:
    """Refuse two items with the same id; each entry is ``(id, path, item)``."""
    seen: dict[str, tuple[str | Path, JsonItem]] = {}
    for key, path, item in items:
        if key in seen:
            first_path, first = seen[key]
            where = f"{first_path} line {first.line}"
            raise fail(path, item, f"duplicate id {key!r} (first seen at {where})", field)
        seen[key] = (path, item)
