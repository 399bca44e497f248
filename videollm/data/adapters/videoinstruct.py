"""Adapter for the raw VideoInstruct-100K file: a list of ``{"video_id", "q", "a"}``.

Mirrors Video-ChatGPT's ``scripts/convert_instruction_json_to_training_format.py``, which puts
the placeholder *after* the question for even-indexed items (``q + "\\n<video>"``) and *before*
it for odd ones (``"<video>\\n" + q``) so the model does not learn to expect one position. Unlike
that script (which reuses ``video_id`` as the id), ids here are ``f"{video_id}_{i}"`` so every
record is addressable.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from videollm.data.adapters._registry import ADAPTERS, require_file
from videollm.data.records import (
    VIDEO_TOKEN,
    item_error,
    read_json_items,
    require_str,
    strip_video_extension,
    validate_record,
)

if TYPE_CHECKING:
    from videollm.data.convert import ConvertConfig


def placeholder_question(question: str, i: int) -> str:
    """Question text with the ``<video>`` placeholder after (even ``i``) or before (odd ``i``)."""
    return f"{question}\n{VIDEO_TOKEN}" if i % 2 == 0 else f"{VIDEO_TOKEN}\n{question}"


@ADAPTERS.register("videoinstruct", summary="raw VideoInstruct-100K JSON ({video_id, q, a} items)")
def load_videoinstruct(input_path: str | Path, cfg: ConvertConfig) -> list[dict[str, Any]]:
    """Convert VideoInstruct-100K items to chat records with task ``"qa"``.

    Args:
        input_path: ``VideoInstruct_Dataset.json`` (JSON list) or the same items as JSONL.
        cfg: Conversion settings (unused; every adapter takes them).

    Returns:
        One validated record per item, in file order.

    Raises:
        RecordFormatError: On invalid JSON or a missing / empty ``video_id``, ``q`` or ``a``.
    """
    del cfg  # No settings apply; the argument keeps one adapter signature.
    records = []
    for i, item in enumerate(read_json_items(require_file(input_path, "videoinstruct"))):
        obj = item.value
        if not isinstance(obj, dict):
            raise item_error(input_path, item, "an item must be a JSON object")
        vid = strip_video_extension(require_str(obj, "video_id", input_path, item))
        question = require_str(obj, "q", input_path, item).strip()
        answer = require_str(obj, "a", input_path, item).strip()
        rec = {
            "id": f"{vid}_{i}",
            "video": vid,
            "task": "qa",
            "conversations": [
                {"from": "human", "value": placeholder_question(question, i)},
                {"from": "gpt", "value": answer},
            ],
        }
        records.append(validate_record(rec, input_path, item.line, item.index))
    return records
