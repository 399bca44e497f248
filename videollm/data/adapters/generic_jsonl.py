"""Adapter for the simplest user format: one ``{"video", "question", "answer"}`` per line.

Optional keys: ``task`` (which metrics apply at evaluation) and ``id`` (default
``f"{video}_{i}"`` with ``i`` the item's position). The recipe for "my own dataset" is to write
this file. ``video`` is an id or a path relative to the videos root given to feature extraction
(``kitchen/clip1.mp4`` → id ``kitchen_clip1``, the id its features are stored under).
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
    validate_record,
    video_ref_to_id,
)

if TYPE_CHECKING:
    from videollm.data.convert import ConvertConfig


def _with_placeholder(question: str) -> str:
    # A question that already places the placeholder is kept, so users can choose its position.
    return question if VIDEO_TOKEN in question else f"{VIDEO_TOKEN}\n{question}"


@ADAPTERS.register(
    "jsonl", summary="one {video, question, answer} object per line (for your own data)"
)
def load_generic_jsonl(input_path: str | Path, cfg: ConvertConfig) -> list[dict[str, Any]]:
    """Convert ``{"video", "question", "answer"[, "task"][, "id"]}`` items to chat records.

    Args:
        input_path: JSONL file (a JSON list of the same objects is accepted too).
        cfg: Conversion settings (unused; every adapter takes them).

    Returns:
        One validated record per item, question prefixed with ``"<video>\\n"`` unless it
        already holds the placeholder.

    Raises:
        RecordFormatError: On invalid JSON or a missing / empty field (file, line, field).
    """
    del cfg  # No settings apply; the argument keeps one adapter signature.
    records = []
    for i, item in enumerate(read_json_items(require_file(input_path, "jsonl"))):
        obj = item.value
        if not isinstance(obj, dict):
            raise item_error(input_path, item, "an item must be a JSON object")
        vid = video_ref_to_id(require_str(obj, "video", input_path, item))
        question = require_str(obj, "question", input_path, item).strip()
        answer = require_str(obj, "answer", input_path, item).strip()
        rec: dict[str, Any] = {
            "id": require_str(obj, "id", input_path, item) if "id" in obj else f"{vid}_{i}",
            "video": vid,
            "conversations": [
                {"from": "human", "value": _with_placeholder(question)},
                {"from": "gpt", "value": answer},
            ],
        }
        if "task" in obj:
            rec["task"] = require_str(obj, "task", input_path, item)
        records.append(validate_record(rec, input_path, item.line, item.index))
    return records
