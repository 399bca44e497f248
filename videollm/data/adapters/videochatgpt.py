"""Adapter for Video-ChatGPT's training file (``video_chatgpt_training.json``), taken as is.

Its records already follow our schema; the only difference is that ``video`` names the feature
file (``v_k_ZXmr8pmrs.pkl``) or a video file, so a known extension is stripped to get the id.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from videollm.data.adapters._registry import ADAPTERS, require_file
from videollm.data.records import read_records, strip_video_extension

if TYPE_CHECKING:
    from videollm.data.convert import ConvertConfig


@ADAPTERS.register("videochatgpt", summary="Video-ChatGPT's training JSON or JSONL, taken as is")
def load_videochatgpt(input_path: str | Path, cfg: ConvertConfig) -> list[dict[str, Any]]:
    """Load and validate a Video-ChatGPT training file (JSON list or JSONL).

    Args:
        input_path: The training JSON / JSONL file.
        cfg: Conversion settings (unused; every adapter takes them).

    Returns:
        Validated records, with extensions stripped from ``video``.

    Raises:
        RecordFormatError: On invalid JSON or an invalid record (file, line, field).
    """
    del cfg  # The file needs no settings; the argument keeps one adapter signature.
    return [
        {**rec, "video": strip_video_extension(rec["video"])}
        for rec in read_records(require_file(input_path, "videochatgpt"))
    ]
