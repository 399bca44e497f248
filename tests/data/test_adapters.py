"""The Video-ChatGPT, VideoInstruct-100K and generic JSONL adapters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from videollm.cli.main import build_parser
from videollm.config_loader import load_config
from videollm.data.adapters import ADAPTERS, load_generic_jsonl, load_videochatgpt
from videollm.data.adapters.videoinstruct import load_videoinstruct
from videollm.data.convert import ConvertConfig, convert
from videollm.errors import ConfigError, RecordFormatError

CFG = ConvertConfig()


@pytest.fixture
def scratch_adapters(monkeypatch):
    """What the test registers is gone after it (the built-ins are found first, for real)."""
    ADAPTERS.names()
    monkeypatch.setattr(ADAPTERS, "_items", dict(ADAPTERS._items))
    monkeypatch.setattr(ADAPTERS, "_summaries", dict(ADAPTERS._summaries))


def test_registry_covers_every_format() -> None:
    assert ADAPTERS.names() == ["videochatgpt", "videoinstruct", "breakfast", "jsonl"]
    assert all(ADAPTERS.summaries().values())  # the default first, as in --help
    assert ADAPTERS.get("jsonl") is load_generic_jsonl


def test_an_unknown_format_is_refused_with_the_choices() -> None:
    with pytest.raises(ConfigError, match="format: unknown dataset format 'csv'; choose from vid"):
        ConvertConfig(format="csv")
    with pytest.raises(ConfigError, match="format: unknown dataset format 'csv'"):
        load_config(ConvertConfig, overrides=["format=csv"])


def test_a_registered_adapter_is_a_format_for_convert_and_the_cli(
    scratch_adapters, tmp_path
) -> None:
    @ADAPTERS.register("lines-by-test-adapters", summary="a question per line, for a test")
    def load_lines(input_path, cfg) -> list[dict]:
        lines = Path(input_path).read_text().splitlines()
        return [
            {"id": f"q{i}", "video": f"v{i}", "conversations": [
                {"from": "human", "value": f"<video>\n{q}"}, {"from": "gpt", "value": "A"}]}
            for i, q in enumerate(lines)
        ]  # fmt: skip

    src = tmp_path / "questions.txt"
    src.write_text("What happens?\nWho is there?\n")
    out = tmp_path / "out"
    done = convert(ConvertConfig(format="lines-by-test-adapters", input=str(src), out=str(out)))
    assert done.counts["train"] + done.counts["val"] == 2
    assert (
        "lines-by-test-adapters"
        in build_parser()
        .parse_args(["convert", "--format", "lines-by-test-adapters", "--input", "x", "--out", "y"])
        .format
    )


def test_a_file_format_refuses_a_folder(tmp_path) -> None:
    for name in ("videochatgpt", "videoinstruct", "jsonl"):
        with pytest.raises(ConfigError, match=f"is a folder; format '{name}' reads one"):
            ADAPTERS.get(name)(tmp_path, CFG)


def test_the_pipelines_document_every_format() -> None:
    from components import plan_shards
    from pipelines.finetune import finetune
    from videollm.kfp.train_params import section_docs

    for func in (finetune.pipeline_func, plan_shards.python_func):
        doc = section_docs(func.__doc__, "Args")["annotation_format"]
        assert all(f"``{name}``" in doc for name in ADAPTERS), (func.__name__, doc)


def test_videochatgpt_file_loads_as_is_and_strips_extensions(make_record, tmp_path) -> None:
    # Video-ChatGPT's own converter writes "video": "<id>.pkl" and the id without extension.
    recs = [make_record("v_k_ZXmr8pmrs.pkl", id="v_k_ZXmr8pmrs"), make_record("v_b.mp4")]
    recs.append(make_record("v_c", task="caption"))
    path = tmp_path / "video_chatgpt_training.json"
    path.write_text(json.dumps(recs))
    out = load_videochatgpt(path, CFG)
    assert [r["video"] for r in out] == ["v_k_ZXmr8pmrs", "v_b", "v_c"]
    assert out[2]["task"] == "caption"
    assert out[0]["conversations"] == recs[0]["conversations"]
    assert recs[0]["video"] == "v_k_ZXmr8pmrs.pkl"  # input not mutated


def test_videochatgpt_bad_record(make_record, write_jsonl, assert_located) -> None:
    bad = make_record("v_a")
    bad["conversations"][1]["from"] = "bot"
    path = write_jsonl([make_record("v_a"), bad])
    with pytest.raises(RecordFormatError) as info:
        load_videochatgpt(path, CFG)
    assert_located(info.value, path, 2, "conversations[1].from")


def _instruct(tmp_path: Path, items: list[dict]) -> Path:
    path = tmp_path / "VideoInstruct_Dataset.json"
    path.write_text(json.dumps(items, indent=1))
    return path


def test_videoinstruct_alternates_placeholder_like_video_chatgpt(tmp_path) -> None:
    items = [{"video_id": f"v_{i}", "q": f"Q{i}?", "a": f"A{i}."} for i in range(4)]
    out = load_videoinstruct(_instruct(tmp_path, items), CFG)
    # Even items: question then placeholder; odd items: placeholder first (as upstream).
    assert [r["conversations"][0]["value"] for r in out] == [
        "Q0?\n<video>",
        "<video>\nQ1?",
        "Q2?\n<video>",
        "<video>\nQ3?",
    ]
    assert out[1] == {
        "id": "v_1_1",
        "video": "v_1",
        "task": "qa",
        "conversations": [
            {"from": "human", "value": "<video>\nQ1?"},
            {"from": "gpt", "value": "A1."},
        ],
    }


def test_videoinstruct_missing_field_names_line_and_field(tmp_path, assert_located) -> None:
    items = [{"video_id": "v_0", "q": "Q?", "a": "A."}, {"video_id": "v_1", "q": "Q?"}]
    path = _instruct(tmp_path, items)
    # indent=1: "[" on line 1, item 0 spans lines 2-6, item 1 starts on line 7.
    with pytest.raises(RecordFormatError, match="record 1") as info:
        load_videoinstruct(path, CFG)
    assert_located(info.value, path, 7, "a")


def test_generic_jsonl(write_jsonl) -> None:
    path = write_jsonl(
        [
            {"video": "cam/clip1.mp4", "question": "What is poured?", "answer": "Milk."},
            {"video": "clip2", "question": "Is it <video> sunny?", "answer": "Yes", "task": "qa"},
            {"video": "clip2", "question": "Describe.", "answer": "A street.", "id": "d1"},
        ]
    )
    out = load_generic_jsonl(path, CFG)
    assert out[0] == {
        "id": "cam_clip1_0",
        "video": "cam_clip1",
        "conversations": [
            {"from": "human", "value": "<video>\nWhat is poured?"},
            {"from": "gpt", "value": "Milk."},
        ],
    }
    assert out[1]["conversations"][0]["value"] == "Is it <video> sunny?"
    assert out[1]["task"] == "qa" and "task" not in out[2]
    assert [r["id"] for r in out] == ["cam_clip1_0", "clip2_1", "d1"]


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"question": "Q?", "answer": "A"}, "video"),
        ({"video": "v", "answer": "A"}, "question"),
        ({"video": "v", "question": "Q?"}, "answer"),
        ({"video": "v", "question": "Q?", "answer": ""}, "answer"),
        ({"video": "v", "question": "Q?", "answer": "A", "task": 1}, "task"),
        ({"video": "v", "question": "<video><video>", "answer": "A"}, "conversations[0].value"),
    ],
)
def test_generic_jsonl_bad_field(item, field, write_jsonl, assert_located) -> None:
    good = {"video": "v", "question": "Q?", "answer": "A"}
    path = write_jsonl([good, good, item])
    with pytest.raises(RecordFormatError) as info:
        load_generic_jsonl(path, CFG)
    assert_located(info.value, path, 3, field)


def test_generic_jsonl_video_ids_match_feature_ids(tmp_path, write_jsonl) -> None:
    from videollm.video.paths import list_videos

    root = tmp_path / "videos"
    (root / "kitchen").mkdir(parents=True)
    (root / "kitchen" / "clip1.mp4").write_bytes(b"")
    (root / "clip2.avi").write_bytes(b"")
    path = write_jsonl(
        [
            {"video": "kitchen/clip1.mp4", "question": "Q?", "answer": "A"},
            {"video": "./clip2.avi", "question": "Q?", "answer": "A"},
            {"video": str(root / "clip2.avi"), "question": "Q?", "answer": "A"},
        ]
    )
    ids = {r["video"] for r in load_generic_jsonl(path, CFG)}
    assert ids == {vid for vid, _ in list_videos(root)}


def test_generic_jsonl_bad_json(write_jsonl, assert_located) -> None:
    path = write_jsonl(['{"video": "v", "question": "Q?", "answer": "A"}', "not json"])
    with pytest.raises(RecordFormatError, match="invalid JSON") as info:
        load_generic_jsonl(path, CFG)
    assert_located(info.value, path, 2, None)
