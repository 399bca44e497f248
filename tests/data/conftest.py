"""Fixtures for the data tests: small annotation files and fake Breakfast trees in tmp_path."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from videollm.data.convert import ConvertConfig


def _rec(vid: str, question: str = "What happens?", answer: str = "Cooking.", **extra: Any) -> dict:
    """A valid chat record about ``vid``."""
    return {
        "id": extra.pop("id", f"{vid}_0"),
        "video": vid,
        "conversations": [
            {"from": "human", "value": f"<video>\n{question}"},
            {"from": "gpt", "value": answer},
        ],
        **extra,
    }


def _assert_located(err: Exception, path: Path, line: int | None, field: str | None) -> None:
    """The error message names the file, the line and the field."""
    msg = str(err)
    assert path.name in msg, msg
    if line is not None:
        assert re.search(rf":{line}:", msg), msg
    if field is not None:
        assert f"field {field!r}" in msg, msg


@pytest.fixture
def make_record() -> Callable[..., dict]:
    """Factory of valid chat records: ``make_record(vid, question=..., answer=..., **extra)``."""
    return _rec


@pytest.fixture
def assert_located() -> Callable[[Exception, Path, int | None, str | None], None]:
    """Check that an error message names the file, ``:line:`` and ``field 'name'``."""
    return _assert_located


@pytest.fixture
def write_jsonl(tmp_path: Path) -> Callable[..., Path]:
    """Write objects (or raw strings) one per line to a file in tmp_path."""

    def write(items: list[Any], name: str = "data.jsonl") -> Path:
        path = tmp_path / name
        lines = [it if isinstance(it, str) else json.dumps(it) for it in items]
        path.write_text("\n".join(lines) + "\n")
        return path

    return write


@pytest.fixture
def breakfast_root(tmp_path: Path) -> Callable[[dict[str, list[str]]], Path]:
    """Build ``BreakfastII_15fps_qvga_sync`` with empty ``.avi`` files and ``.labels`` beside them.

    Keys are video paths relative to the root (``P03/cam01/P03_cereals.avi``).
    """

    def build(videos: dict[str, list[str]]) -> Path:
        root = tmp_path / "BreakfastII_15fps_qvga_sync"
        for rel, lines in videos.items():
            video = root / rel
            video.parent.mkdir(parents=True, exist_ok=True)
            video.write_bytes(b"")
            Path(f"{video}.labels").write_text("\n".join(lines) + "\n")
        return root

    return build


@pytest.fixture
def make_cfg(tmp_path: Path) -> Callable[..., ConvertConfig]:
    """A ConvertConfig writing to tmp_path/out, with keyword overrides."""

    def make(**kwargs: Any) -> ConvertConfig:
        kwargs.setdefault("out", str(tmp_path / "out"))
        return ConvertConfig(**kwargs)

    return make
