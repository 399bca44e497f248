"""The Breakfast adapter: label files → sampled-index segmentation, activity, order, when."""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

import pytest

from videollm.data.adapters.breakfast import (
    activity_of,
    label_video_id,
    load_breakfast,
    parse_labels,
    to_sampled,
)
from videollm.data.convert import ConvertConfig
from videollm.errors import RecordFormatError
from videollm.video.paths import list_videos

# 300 frames and num_frames=100: each sample covers 3 source frames, so a segment starting at
# source frame f (1-based) starts at sample (f - 1) // 3.
CEREALS = ["1-30 SIL", "31-150 take_bowl", "151-270 pour_cereals", "271-300 SIL"]
CFG = ConvertConfig(format="breakfast")


def _human(question: str) -> dict:
    return {"from": "human", "value": f"<video>\n{question}"}


def test_exact_records_for_one_video(breakfast_root) -> None:
    root = breakfast_root({"P03/cam01/P03_cereals.avi": CEREALS})
    vid = "P03_cam01_P03_cereals"
    out = load_breakfast(root, CFG)
    expected = [
        (
            f"{vid}_segmentation",
            "segmentation",
            "List the segments of this video as start-end action.",
            "0-9 SIL, 10-49 take_bowl, 50-89 pour_cereals, 90-99 SIL",
        ),
        (f"{vid}_activity", "activity", "Which breakfast activity is shown?", "cereals"),
        (
            f"{vid}_ordering",
            "ordering",
            "In which order do the actions happen?",
            "take_bowl, pour_cereals",
        ),
        (f"{vid}_when_0", "when", "When does take_bowl happen?", "10-49"),
        (f"{vid}_when_1", "when", "When does pour_cereals happen?", "50-89"),
    ]
    assert out == [
        {
            "id": rid,
            "video": vid,
            "task": task,
            "conversations": [_human(q), {"from": "gpt", "value": a}],
        }
        for rid, task, q, a in expected
    ]


def test_video_ids_match_feature_ids(breakfast_root) -> None:
    root = breakfast_root(
        {
            "P03/cam01/P03_cereals.avi": CEREALS,
            "P03/stereo/P03_tea_ch0.avi": ["1-10 SIL", "11-40 take_cup"],
            "P12/webcam02/P12_friedegg.avi": ["1-50 crack_egg"],
        }
    )
    (root / "README.txt").write_text("not a label file")  # .labels take precedence over .txt
    ids = {r["video"] for r in load_breakfast(root, CFG)}
    assert ids == {vid for vid, _ in list_videos(root)}
    assert "P03_stereo_P03_tea_ch0" in ids


def test_segmentation_coarse_tree_nested_and_flat(tmp_path: Path) -> None:
    coarse = tmp_path / "segmentation_coarse"
    (coarse / "cereals").mkdir(parents=True)
    # CRLF endings, blank lines, trailing spaces and a tab separator are all tolerated.
    text = "\r\n1-30 SIL  \r\n\r\n31-150\ttake_bowl\r\n151-270 pour_cereals\r\n271-300 SIL\r\n"
    (coarse / "cereals" / "P03_cam01_P03_cereals.txt").write_bytes(text.encode())
    (coarse / "P04_webcam01_P04_milk.txt").write_text("1-9 SIL\n10-20 pour_milk\n")
    out = load_breakfast(coarse, CFG)
    by_id = {r["id"]: r["conversations"][1]["value"] for r in out}
    assert by_id["P03_cam01_P03_cereals_segmentation"] == (
        "0-9 SIL, 10-49 take_bowl, 50-89 pour_cereals, 90-99 SIL"
    )
    # 20 frames < num_frames: one sample per frame.
    assert by_id["P04_webcam01_P04_milk_segmentation"] == "0-8 SIL, 9-19 pour_milk"
    assert by_id["P04_webcam01_P04_milk_activity"] == "milk"
    # A single label file works too.
    single = load_breakfast(coarse / "P04_webcam01_P04_milk.txt", CFG)
    assert {r["video"] for r in single} == {"P04_webcam01_P04_milk"}


@pytest.mark.parametrize(
    ("labels", "num_frames", "expected"),
    [
        # Segments that collapse into their successor's first sample vanish; equal neighbours
        # merge (100 frames, 10 samples of 10 frames each).
        (
            [(1, 10, "SIL"), (11, 14, "take_cup"), (15, 18, "SIL"), (19, 100, "pour")],
            10,
            [(0, 0, "SIL"), (1, 9, "pour")],
        ),
        # A gap is absorbed by the preceding segment.
        ([(1, 30, "SIL"), (41, 300, "x")], 100, [(0, 12, "SIL"), (13, 99, "x")]),
        # Labels starting after frame 1 still cover sample 0.
        ([(5, 300, "x")], 100, [(0, 99, "x")]),
        # Equal adjacent labels merge.
        ([(1, 30, "a"), (31, 60, "a"), (61, 90, "b")], 30, [(0, 19, "a"), (20, 29, "b")]),
    ],
)
def test_to_sampled_tiles_all_samples(labels, num_frames, expected) -> None:
    out = to_sampled(labels, num_frames)
    assert out == expected
    assert out[0][0] == 0
    assert all(a[1] + 1 == b[0] for a, b in itertools.pairwise(out))


def test_ordering_and_when_use_first_occurrence(breakfast_root) -> None:
    labels = ["1-30 SIL", "31-60 pour_milk", "61-90 SIL", "91-120 pour_milk", "121-300 stir"]
    root = breakfast_root({"P05/cam02/P05_tea.avi": labels})
    out = {r["id"]: r["conversations"] for r in load_breakfast(root, CFG)}
    assert out["P05_cam02_P05_tea_ordering"][1]["value"] == "pour_milk, stir"
    assert out["P05_cam02_P05_tea_when_0"][0]["value"] == "<video>\nWhen does pour_milk happen?"
    assert out["P05_cam02_P05_tea_when_0"][1]["value"] == "10-19"
    assert out["P05_cam02_P05_tea_when_1"][1]["value"] == "40-99"


def test_only_background_has_no_ordering_or_when(breakfast_root) -> None:
    root = breakfast_root({"P05/cam02/P05_juice.avi": ["1-40 SIL"]})
    tasks = [r["task"] for r in load_breakfast(root, CFG)]
    assert tasks == ["segmentation", "activity"]


def test_num_frames_from_config(breakfast_root) -> None:
    root = breakfast_root({"P03/cam01/P03_cereals.avi": CEREALS})
    out = load_breakfast(root, ConvertConfig(format="breakfast", num_frames=10))
    assert (
        out[0]["conversations"][1]["value"] == "0-0 SIL, 1-4 take_bowl, 5-8 pour_cereals, 9-9 SIL"
    )


@pytest.mark.parametrize(
    ("name", "vid", "activity"),
    [
        ("P03/cam01/P03_cereals.avi.labels", "P03_cam01_P03_cereals", "cereals"),
        (
            "P03/stereo/P03_scrambledegg_ch1.avi.labels",
            "P03_stereo_P03_scrambledegg_ch1",
            "scrambledegg",
        ),
        ("salat/P54_webcam02_P54_salat.txt", "P54_webcam02_P54_salat", "salat"),
    ],
)
def test_ids_and_activities(name: str, vid: str, activity: str) -> None:
    assert label_video_id(Path("/data") / name) == vid
    assert activity_of(vid) == activity


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ("1_30 SIL", "range"),
        ("a-30 SIL", "start"),
        ("1-x SIL", "end"),
        ("1-30", "action"),
        ("0-30 SIL", "start"),
        ("90-80 SIL", "end"),
        ("20-40 SIL", "start"),  # starts before the previous segment
    ],
)
def test_malformed_label_line(line, field, breakfast_root, assert_located) -> None:
    root = breakfast_root({"P03/cam01/P03_cereals.avi": ["", "1-30 SIL", "31-60 take_bowl", line]})
    path = root / "P03/cam01/P03_cereals.avi.labels"
    with pytest.raises(RecordFormatError) as info:
        load_breakfast(root, CFG)
    assert_located(info.value, path, 4, field)


def test_empty_label_file_and_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    with pytest.raises(RecordFormatError, match=r"no \*\.labels"):
        load_breakfast(tmp_path / "a", CFG)
    (tmp_path / "a" / "P01_cam01_P01_tea.txt").write_text("\n\n")
    with pytest.raises(RecordFormatError, match=r"P01_cam01_P01_tea\.txt: field 'segments'"):
        load_breakfast(tmp_path / "a", CFG)


def test_parse_labels_keeps_source_frames(tmp_path: Path) -> None:
    path = tmp_path / "x.txt"
    path.write_text("1-30 SIL\n31-45 take_bowl\n")
    assert parse_labels(path) == [(1, 30, "SIL"), (31, 45, "take_bowl")]


def test_videos_without_labels_are_named_in_a_warning(breakfast_root, caplog) -> None:
    root = breakfast_root({"P03/cam01/P03_cereals.avi": CEREALS})
    for name in ("P03_tea.avi", "P03_milk.avi"):
        (root / "P03" / "cam01" / name).write_bytes(b"")
    with caplog.at_level(logging.WARNING, logger="videollm.data.adapters.breakfast"):
        records = load_breakfast(root, CFG)
    assert {r["video"] for r in records} == {"P03_cam01_P03_cereals"}
    warning = caplog.text
    assert "2 video(s)" in warning
    assert "P03_cam01_P03_milk" in warning and "P03_cam01_P03_tea" in warning
    assert "P03_cam01_P03_cereals" not in warning
