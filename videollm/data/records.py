"""Chat records: the schema, its validation, and reading and writing record files.

A record is the Video-ChatGPT training format::

    {"id": "v_abc_0", "video": "v_abc", "task": "qa",
     "conversations": [{"from": "human", "value": "<video>\\nWhat happens?"},
                       {"from": "gpt", "value": "A man cooks."}]}

``video`` is a video id (the feature file stem), turns alternate human/gpt starting with human,
and exactly one ``<video>`` placeholder sits in the first human turn. ``task`` is optional and
tells evaluation which metrics apply.

Files are read as a JSON list (Video-ChatGPT's own file) or as JSONL, detected from the first
non-blank character. Errors carry the real 1-based line number in both cases; for a JSON list
the reason also names the record's 0-based index, because Video-ChatGPT writes the whole list on
one line and the line number alone would not find the record.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Any, NamedTuple

from videollm.atomic import atomic_write_text
from videollm.errors import RecordFormatError
from videollm.video.paths import VIDEO_EXTENSIONS

VIDEO_TOKEN = "<video>"
ROLES = ("human", "gpt")
# Suffixes a ``video`` reference may carry in other tools' files: the video itself or the
# feature file Video-ChatGPT names (``v_abc.pkl``). Stripped so the id matches our feature stems.
_STRIPPABLE = VIDEO_EXTENSIONS | {".pkl", ".safetensors", ".npy", ".pt"}


class JsonItem(NamedTuple):
    """One top-level value of a JSON list or JSONL file, with where it was found."""

    line: int | None
    """1-based line on which the value starts (``None`` when unknown)."""
    index: int | None
    """0-based position in a JSON list; ``None`` for JSONL."""
    value: Any


def item_error(
    path: str | Path, item: JsonItem, reason: str, field: str | None = None
) -> RecordFormatError:
    """A ``RecordFormatError`` located at ``item`` (line, and list index when there is one)."""
    if item.index is not None:
        reason = f"record {item.index}: {reason}"
    return RecordFormatError(str(path), reason, line=item.line, field=field)


def require_str(obj: dict[str, Any], key: str, path: str | Path, item: JsonItem) -> str:
    """``obj[key]`` as a non-blank string, or a ``RecordFormatError`` naming ``key``."""
    if key not in obj:
        raise item_error(path, item, "missing", key)
    value = obj[key]
    if not isinstance(value, str) or not value.strip():
        raise item_error(path, item, f"must be a non-empty string, got {value!r}", key)
    return value


def strip_video_extension(name: str) -> str:
    """Drop a known video or feature-file extension (``v_abc.mp4`` → ``v_abc``), else keep."""
    stem, dot, ext = name.rpartition(".")
    if dot and stem and f".{ext.lower()}" in _STRIPPABLE:
        return stem
    return name


def video_ref_to_id(ref: str) -> str:
    """Video id of a reference in a user file, matching ``videollm.video.paths.video_id``.

    A relative path is taken as relative to the videos root (``cam1/clip.mp4`` → ``cam1_clip``);
    an absolute one keeps only its stem, as ``video_id`` does without a root.
    """
    p = PurePosixPath(strip_video_extension(ref.strip()))
    return p.name if p.is_absolute() else "_".join(part for part in p.parts if part != ".")


def validate_record(
    rec: Any, path: str | Path, line: int | None = None, index: int | None = None
) -> dict[str, Any]:
    """Check that ``rec`` is a well-formed chat record and return it unchanged.

    Args:
        rec: The decoded JSON value.
        path: File it came from (for the error message).
        line: 1-based line it starts on, when known.
        index: 0-based position in a JSON list, when it came from one.

    Returns:
        ``rec`` itself.

    Raises:
        RecordFormatError: Naming the file, line and offending field
            (e.g. ``conversations[1].from``).
    """
    item = JsonItem(line, index, rec)

    def fail(reason: str, field: str | None) -> RecordFormatError:
        return item_error(path, item, reason, field)

    if not isinstance(rec, dict):
        raise fail(f"a record must be a JSON object, got {type(rec).__name__}", None)
    for key in ("id", "video"):
        if key not in rec:
            raise fail("missing", key)
        if not isinstance(rec[key], str) or not rec[key].strip():
            raise fail(f"must be a non-empty string, got {rec[key]!r}", key)
    if "task" in rec and (not isinstance(rec["task"], str) or not rec["task"].strip()):
        raise fail(f"must be a non-empty string when present, got {rec['task']!r}", "task")
    if "conversations" not in rec:
        raise fail("missing", "conversations")
    turns = rec["conversations"]
    if not isinstance(turns, list) or len(turns) < 2:
        raise fail("must be a list of at least one human and one gpt turn", "conversations")
    if len(turns) % 2:
        raise fail("must end with a gpt turn (odd number of turns)", "conversations")
    placeholders = 0
    for i, turn in enumerate(turns):
        where = f"conversations[{i}]"
        if not isinstance(turn, dict):
            raise fail("a turn must be an object with 'from' and 'value'", where)
        role = turn.get("from")
        if role not in ROLES:
            raise fail(f"must be one of {list(ROLES)}, got {role!r}", f"{where}.from")
        expected = ROLES[i % 2]
        if role != expected:
            raise fail(f"turns must alternate human/gpt; expected {expected!r}", f"{where}.from")
        value = turn.get("value")
        if not isinstance(value, str) or not value.strip():
            raise fail(f"must be a non-empty string, got {value!r}", f"{where}.value")
        count = value.count(VIDEO_TOKEN)
        if count and i != 0:
            raise fail(f"{VIDEO_TOKEN} must only appear in the first human turn", f"{where}.value")
        placeholders += count
    if placeholders != 1:
        raise fail(
            f"needs exactly one {VIDEO_TOKEN} placeholder, found {placeholders}",
            "conversations[0].value",
        )
    return rec


def _read_text(path: Path) -> str:
    try:
        # utf-8-sig: files saved by Windows editors start with a BOM that json rejects.
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise RecordFormatError(str(path), f"not UTF-8 text: {err}") from err


def _json_list_items(path: Path, text: str) -> list[JsonItem]:
    """Decode a top-level JSON list element by element, keeping each element's line."""
    decoder = json.JSONDecoder()
    items: list[JsonItem] = []
    pos = text.index("[") + 1
    line, counted = 1, 0

    def skip_ws(p: int) -> int:
        while p < len(text) and text[p] in " \t\r\n":
            p += 1
        return p

    def line_at(p: int) -> int:
        nonlocal line, counted
        line += text.count("\n", counted, p)  # incremental: the file may be 100 MB on one line
        counted = p
        return line

    pos = skip_ws(pos)
    if pos < len(text) and text[pos] == "]":
        return items
    while True:
        pos = skip_ws(pos)
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as err:
            reason = f"invalid JSON (record {len(items)}): {err.msg} at column {err.colno}"
            raise RecordFormatError(str(path), reason, line=err.lineno) from err
        items.append(JsonItem(line_at(pos), len(items), value))
        pos = skip_ws(end)
        if pos < len(text) and text[pos] == ",":
            pos += 1
            continue
        if pos < len(text) and text[pos] == "]":
            if skip_ws(pos + 1) != len(text):
                raise RecordFormatError(
                    str(path), "unexpected data after the JSON list", line=line_at(pos)
                )
            return items
        raise RecordFormatError(
            str(path), "invalid JSON: expected ',' or ']' after a list element", line=line_at(pos)
        )


def read_json_items(path: str | Path) -> list[JsonItem]:
    """Read the top-level values of a JSON list file or a JSONL file (blank lines skipped).

    Raises:
        RecordFormatError: If the file is not valid JSON / JSONL (with the line).
        FileNotFoundError: If ``path`` does not exist.
    """
    p = Path(path)
    text = _read_text(p)
    stripped = text.lstrip()
    if stripped.startswith("["):
        return _json_list_items(p, text)
    items: list[JsonItem] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as err:
            reason = f"invalid JSON: {err.msg} at column {err.colno}"
            raise RecordFormatError(str(p), reason, line=lineno) from err
        items.append(JsonItem(lineno, None, value))
    return items


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """Read and validate chat records from a JSON list or JSONL file.

    Args:
        path: The file. A JSON list is detected by its first non-blank character ``[``.

    Returns:
        The records, in file order.

    Raises:
        RecordFormatError: On invalid JSON or an invalid record, naming file, line and field
            (and, for a JSON list, the record's index).
    """
    return [validate_record(it.value, path, it.line, it.index) for it in read_json_items(path)]


def write_records(path: str | Path, records: Iterable[dict[str, Any]]) -> int:
    """Write records as JSONL (one object per line, UTF-8), atomically.

    Returns:
        The number of records written.
    """
    lines = [json.dumps(rec, ensure_ascii=False) + "\n" for rec in records]
    atomic_write_text(path, "".join(lines))
    return len(lines)
