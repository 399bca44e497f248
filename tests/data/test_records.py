"""Chat-record schema, reading (JSON list / JSONL) and atomic writing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from videollm.data.records import (
    VIDEO_TOKEN,
    read_records,
    strip_video_extension,
    validate_record,
    write_records,
)
from videollm.errors import RecordFormatError


def _turns(*pairs: tuple[str, str]) -> list[dict]:
    return [{"from": who, "value": value} for who, value in pairs]


def test_video_token() -> None:
    assert VIDEO_TOKEN == "<video>"


def test_valid_record_is_returned_unchanged(make_record) -> None:
    r = make_record("v_a", task="qa")
    assert validate_record(r, "x.jsonl", 1) is r


def test_multi_turn_record_is_valid(make_record) -> None:
    r = make_record("v_a")
    r["conversations"] += _turns(("human", "And then?"), ("gpt", "They eat."))
    validate_record(r, "x.jsonl", 1)


BAD_RECORDS = [
    ("missing id", lambda r: r.pop("id"), "id"),
    ("empty id", lambda r: r.update(id=""), "id"),
    ("missing video", lambda r: r.pop("video"), "video"),
    ("missing conversations", lambda r: r.pop("conversations"), "conversations"),
    ("one turn", lambda r: r["conversations"].pop(), "conversations"),
    (
        "bad from",
        lambda r: r["conversations"][1].update({"from": "assistant"}),
        "conversations[1].from",
    ),
    (
        "starts with gpt",
        lambda r: r["conversations"][0].update({"from": "gpt"}),
        "conversations[0].from",
    ),
    (
        "not alternating",
        lambda r: r["conversations"][1].update({"from": "human"}),
        "conversations[1].from",
    ),
    ("empty value", lambda r: r["conversations"][1].update(value="  "), "conversations[1].value"),
    (
        "no placeholder",
        lambda r: r["conversations"][0].update(value="Hi?"),
        "conversations[0].value",
    ),
    (
        "two placeholders",
        lambda r: r["conversations"][0].update(value="<video> <video> Hi?"),
        "conversations[0].value",
    ),
    (
        "placeholder in answer",
        lambda r: r["conversations"][1].update(value="<video>"),
        "conversations[1].value",
    ),
    ("bad task", lambda r: r.update(task=3), "task"),
]


@pytest.mark.parametrize(("case", "mutate", "field"), BAD_RECORDS, ids=[c[0] for c in BAD_RECORDS])
def test_malformed_jsonl_record_names_file_line_field(
    case, mutate, field, make_record, write_jsonl, assert_located
) -> None:
    bad = make_record("v_b")
    mutate(bad)
    path = write_jsonl([make_record("v_a"), "", bad])  # blank line 2: bad record is on line 3
    with pytest.raises(RecordFormatError) as info:
        read_records(path)
    assert_located(info.value, path, 3, field)
    assert info.value.line == 3 and info.value.field == field


def test_odd_number_of_turns_is_rejected(make_record, write_jsonl, assert_located) -> None:
    bad = make_record("v_a")
    bad["conversations"].append({"from": "human", "value": "More?"})
    path = write_jsonl([bad])
    with pytest.raises(RecordFormatError) as info:
        read_records(path)
    assert_located(info.value, path, 1, "conversations")


def test_non_object_record(write_jsonl, assert_located) -> None:
    path = write_jsonl(["[1, 2]"])
    with pytest.raises(RecordFormatError, match="JSON object") as info:
        read_records(path)
    assert_located(info.value, path, 1, None)


def test_bad_json_line_names_line(make_record, write_jsonl, assert_located) -> None:
    path = write_jsonl([make_record("v_a"), '{"id": "x", '])
    with pytest.raises(RecordFormatError, match="invalid JSON") as info:
        read_records(path)
    assert_located(info.value, path, 2, None)


def test_reads_jsonl_with_blank_lines_and_crlf(make_record, tmp_path: Path) -> None:
    recs = [make_record("v_a"), make_record("v_b", task="qa")]
    path = tmp_path / "r.jsonl"
    path.write_bytes(("\r\n".join(json.dumps(r) for r in recs) + "\r\n\r\n").encode())
    assert read_records(path) == recs


def test_reads_json_list_one_line_and_pretty(make_record, tmp_path: Path) -> None:
    recs = [make_record("v_a"), make_record("v_b")]
    for name, text in [
        ("flat.json", json.dumps(recs)),
        ("pretty.json", json.dumps(recs, indent=2)),
    ]:
        path = tmp_path / name
        path.write_text(text)
        assert read_records(path) == recs
    empty = tmp_path / "empty.json"
    empty.write_text(" [ ]\n")
    assert read_records(empty) == []


def test_json_list_error_names_real_line_and_index(make_record, tmp_path, assert_located) -> None:
    bad = make_record("v_b")
    del bad["video"]
    path = tmp_path / "list.json"
    path.write_text("[\n" + json.dumps(make_record("v_a")) + ",\n" + json.dumps(bad) + "\n]\n")
    with pytest.raises(RecordFormatError, match="record 1") as info:
        read_records(path)
    assert_located(info.value, path, 3, "video")


def test_json_list_syntax_error_names_line(make_record, tmp_path, assert_located) -> None:
    path = tmp_path / "list.json"
    path.write_text("[\n" + json.dumps(make_record("v_a")) + ",\n{oops}\n]\n")
    with pytest.raises(RecordFormatError, match="invalid JSON") as info:
        read_records(path)
    assert_located(info.value, path, 3, None)
    path.write_text("[" + json.dumps(make_record("v_a")) + "\n\n" + json.dumps(make_record("v_b")))
    with pytest.raises(RecordFormatError, match="expected ','") as info:
        read_records(path)
    assert_located(info.value, path, 3, None)


def test_write_then_read_round_trip_is_atomic(make_record, tmp_path: Path) -> None:
    path = tmp_path / "sub" / "train.jsonl"
    path.parent.mkdir()
    path.write_text("old\n")
    recs = [make_record("v_a", answer="café ☕"), make_record("v_b", task="qa")]
    assert write_records(path, recs) == 2
    assert read_records(path) == recs
    assert "café" in path.read_text(encoding="utf-8")
    assert [p.name for p in path.parent.iterdir()] == ["train.jsonl"]  # no temp file left


def test_failed_write_keeps_old_file(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    path.write_text("old\n")
    with pytest.raises(TypeError):
        write_records(path, [{"id": object()}])
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["train.jsonl"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("v_abc.mp4", "v_abc"),
        ("v_abc.pkl", "v_abc"),
        ("v_abc.AVI", "v_abc"),
        ("v_abc", "v_abc"),
        ("v_a.b", "v_a.b"),
        (".mp4", ".mp4"),
    ],
)
def test_strip_video_extension(name: str, expected: str) -> None:
    assert strip_video_extension(name) == expected
