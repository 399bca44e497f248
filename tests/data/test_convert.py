"""The convert step: split by video, repeat train records by task, write atomically."""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path

import pytest

from videollm.config_loader import load_config, to_dict
from videollm.data.convert import DEFAULT_REPEAT, ConvertConfig, convert, repeat_by_task
from videollm.data.records import read_records
from videollm.errors import ConfigError, RecordFormatError

LABELS = ["1-30 SIL", "31-150 take_bowl", "151-270 pour_cereals", "271-300 SIL"]
ACTIVITIES = ["cereals", "coffee", "friedegg", "juice", "milk", "pancake", "salat", "tea"]


@pytest.fixture
def breakfast(breakfast_root) -> Path:
    return breakfast_root(
        {f"P{p:02d}/cam01/P{p:02d}_{a}.avi": LABELS for p in (3, 4) for a in ACTIVITIES}
    )


def test_breakfast_repeats_only_train(breakfast, make_cfg, caplog) -> None:
    cfg = make_cfg(format="breakfast", input=str(breakfast), val_fraction=0.25, seed=1)
    with caplog.at_level(logging.INFO, logger="videollm.data.convert"):
        result = convert(cfg)
    train, val = read_records(result.train_path), read_records(result.val_path)
    assert not {r["video"] for r in train} & {r["video"] for r in val}
    assert result.videos == {"train": 12, "val": 4}
    # Per video: 1 segmentation, 1 activity, 1 ordering, 2 when.
    per_video = {"segmentation": 1, "activity": 1, "ordering": 1, "when": 2}
    assert result.by_task["val"] == {t: 4 * n for t, n in sorted(per_video.items())}
    assert result.by_task["train"] == {
        t: 12 * n * DEFAULT_REPEAT[t] for t, n in sorted(per_video.items())
    }
    assert result.counts == {"train": len(train), "val": len(val)}
    assert len({r["id"] for r in train}) == len(train)  # repeated copies get distinct ids
    seg_ids = sorted(
        r["id"] for r in train if r["video"] == train[0]["video"] and r["task"] == "segmentation"
    )
    base = f"{train[0]['video']}_segmentation"
    assert seg_ids == sorted([base] + [f"{base}_r{k}" for k in range(1, 12)])
    assert not any("_r" in r["id"][-4:] for r in val)
    summary = json.loads(Path(result.summary_path).read_text())
    assert summary["counts"] == result.counts and summary["by_task"] == result.by_task
    assert summary["config"] == to_dict(cfg)
    assert "train" in caplog.text and str(result.counts["train"]) in caplog.text


def test_jsonl_format_and_outputs(write_jsonl, make_cfg, tmp_path: Path) -> None:
    items = [{"video": f"v{i}", "question": "Q?", "answer": "A", "task": "qa"} for i in range(10)]
    cfg = make_cfg(format="jsonl", input=str(write_jsonl(items)), val_fraction=0.2)
    result = convert(cfg)
    assert result.counts == {"train": 8, "val": 2}  # qa is not repeated by default
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "convert_summary.json",
        "train.jsonl",
        "val.jsonl",
    ]
    # Same config, same split.
    first = Path(result.val_path).read_text()
    assert Path(convert(cfg).val_path).read_text() == first


def test_repeat_by_task() -> None:
    recs = [{"id": "a", "task": "x"}, {"id": "b"}, {"id": "c", "task": "y"}]
    out = repeat_by_task(recs, {"x": 3})
    assert [r["id"] for r in out] == ["a", "a_r1", "a_r2", "b", "c"]


@pytest.mark.parametrize("fmt", ["jsonl", "breakfast", "videochatgpt", "videoinstruct"])
def test_bad_input_keeps_existing_outputs(fmt, tmp_path, make_cfg, breakfast_root) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "train.jsonl").write_text("previous run\n")
    if fmt == "breakfast":
        src = breakfast_root({"P03/cam01/P03_cereals.avi": LABELS, "P04/cam01/P04_tea.avi": ["x"]})
    else:
        src = tmp_path / "in.jsonl"
        src.write_text('{"video": "v", "question": "Q?", "answer": "A"}\n{"broken\n')
    with pytest.raises(RecordFormatError):
        convert(make_cfg(format=fmt, input=str(src)))
    assert (out / "train.jsonl").read_text() == "previous run\n"
    assert sorted(p.name for p in out.iterdir()) == ["train.jsonl"]


def test_empty_input_is_an_error(tmp_path, make_cfg) -> None:
    src = tmp_path / "empty.jsonl"
    src.write_text("\n")
    with pytest.raises(RecordFormatError, match="no records"):
        convert(make_cfg(format="jsonl", input=str(src)))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"input": ""}, "input"),
        ({"input": "/nonexistent/file.jsonl"}, "does not exist"),
        ({"out": ""}, "out"),
        ({"repeat": {"segmentation": 0}}, "repeat.segmentation"),
        ({"num_frames": 0}, "num_frames"),
        ({"val_fraction": 1.0}, "val_fraction"),
        ({"format": "csv"}, "format"),
    ],
)
def test_bad_config(changes, match, write_jsonl, make_cfg) -> None:
    path = write_jsonl([{"video": "v", "question": "Q?", "answer": "A"}])
    cfg = make_cfg(format="jsonl", input=str(path))
    for key, value in changes.items():
        setattr(cfg, key, value)
    with pytest.raises(ConfigError, match=match):
        convert(cfg)


def test_config_loads_from_overrides() -> None:
    cfg = load_config(
        ConvertConfig,
        overrides=["format=breakfast", "input=/x", "out=/y", "repeat={segmentation: 3}"],
    )
    assert cfg.repeat == {"segmentation": 3}
    assert ConvertConfig().repeat == DEFAULT_REPEAT
    assert ConvertConfig().repeat is not DEFAULT_REPEAT
    with pytest.raises(ConfigError):
        load_config(ConvertConfig, overrides=["format=csv"])


def test_counts_by_task_cover_untyped(make_record, tmp_path, make_cfg) -> None:
    src = tmp_path / "train.json"
    src.write_text(json.dumps([make_record(f"v{i}") for i in range(3)]))
    result = convert(make_cfg(format="videochatgpt", input=str(src), val_fraction=0.0))
    assert result.by_task == {"train": {"untyped": 3}, "val": {}}
    assert Counter(r["video"] for r in read_records(result.train_path)) == {
        "v0": 1,
        "v1": 1,
        "v2": 1,
    }


def test_an_id_on_two_videos_is_refused_and_nothing_is_written(write_jsonl, make_cfg) -> None:
    path = write_jsonl(
        [{"id": "q1", "video": v, "question": "What?", "answer": "A."} for v in ("a", "b")]
    )
    cfg = make_cfg(format="jsonl", input=str(path))
    with pytest.raises(RecordFormatError, match=r"'q1' \(a, b\)"):
        convert(cfg)
    assert not Path(cfg.out).exists()


def test_ids_shared_within_one_video_get_suffixes(write_jsonl, make_cfg, make_record) -> None:
    # Video-ChatGPT's training JSON uses the video name as the id of every record of a video.
    recs = [make_record(v, id=v, question=f"Q{i}?") for v in ("a", "b") for i in range(3)]
    recs.append(make_record("c", id="a_1"))  # an id a suffix must not take
    path = write_jsonl(recs)
    result = convert(make_cfg(format="videochatgpt", input=str(path), val_fraction=0.0))
    ids = [r["id"] for r in read_records(result.train_path)]
    assert len(ids) == len(set(ids)) == 7
    assert {"a", "a_2", "a_3", "b", "b_1", "b_2", "a_1"} == set(ids)


def test_an_empty_validation_split_is_warned_about(write_jsonl, make_cfg, caplog) -> None:
    path = write_jsonl([{"video": "only", "question": "What?", "answer": "A."}])
    with caplog.at_level(logging.WARNING, logger="videollm.data.convert"):
        result = convert(make_cfg(format="jsonl", input=str(path), val_fraction=0.5))
    assert result.counts["val"] == 0
    assert "validation split is empty" in caplog.text
