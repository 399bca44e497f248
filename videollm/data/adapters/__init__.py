"""Dataset adapters: each turns one annotation format into validated chat records.

Every adapter is ``load_<name>(input_path, cfg) -> list[dict]`` with ``cfg`` a
``videollm.data.convert.ConvertConfig``; ``ADAPTERS`` maps ``ConvertConfig.format`` to it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from videollm.data.adapters.breakfast import load_breakfast
from videollm.data.adapters.generic_jsonl import load_generic_jsonl
from videollm.data.adapters.videochatgpt import load_videochatgpt
from videollm.data.adapters.videoinstruct import load_videoinstruct

Adapter = Callable[[str | Path, Any], list[dict[str, Any]]]

ADAPTERS: dict[str, Adapter] = {
    "videochatgpt": load_videochatgpt,
    "videoinstruct": load_videoinstruct,
    "breakfast": load_breakfast,
    "jsonl": load_generic_jsonl,
}

__all__ = [
    "ADAPTERS",
    "Adapter",
    "load_breakfast",
    "load_generic_jsonl",
    "load_videochatgpt",
    "load_videoinstruct",
]
