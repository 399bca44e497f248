"""Benchmark file readers, on small files written in each benchmark's published layout."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from videollm.bench.formats import BENCH_FORMATS, MVBENCH_VIDEO_FOLDERS, load_benchmark
from videollm.errors import ConfigError, InputError, RecordFormatError
from videollm.eval.judge_prompts import CRITERIA


def write(path: Path, value: Any, *, indent: int | None = 1) -> Path:
    """``value`` as JSON; ``indent=1`` puts each list item on its own lines, as published."""
    path.write_text(json.dumps(value, indent=indent), encoding="utf-8")
    return path


def item_lines(path: Path) -> list[int]:
    """1-based line of each top-level list item of a file written by :func:`write`."""
    lines = path.read_text().splitlines()
    # An item starts at indent 1; deeper lines and closing brackets are inside one.
    return [n for n, line in enumerate(lines, 1) if line[:1] == " " and line[1:2] not in " }]"]


# ActivityNet-QA layout per MILVLG/activitynet-qa dataset/README.md (test_q.json, test_a.json).
ANET_Q = [
    {"video_name": "JDg--pjY5gg", "question_id": "v_JDg--pjY5gg_0", "question": "what is he doing"},
    {"video_name": "JDg--pjY5gg", "question_id": "v_JDg--pjY5gg_1", "question": "is it indoors"},
    {"video_name": "v_Fvm9BuMz0yE", "question_id": "v_Fvm9BuMz0yE_0", "question": "who sings"},
]
ANET_A = [
    {"answer": "dancing", "type": 0, "question_id": "v_JDg--pjY5gg_0"},
    {"answer": "no", "type": 3, "question_id": "v_JDg--pjY5gg_1"},
    {"answer": "woman", "type": 5, "question_id": "v_Fvm9BuMz0yE_0"},
]


@pytest.fixture
def anet(tmp_path: Path) -> tuple[Path, Path]:
    return write(tmp_path / "test_q.json", ANET_Q), write(tmp_path / "test_a.json", ANET_A)


def test_formats_table() -> None:
    assert set(BENCH_FORMATS) == {
        "msvd_qa", "msrvtt_qa", "tgif_qa", "activitynet_qa", "vcgbench_generic",
        "vcgbench_temporal", "vcgbench_consistency", "mvbench",
    }  # fmt: skip
    for name, fmt in BENCH_FORMATS.items():
        assert fmt.name == name and fmt.summary
        assert fmt.kind == ("choice" if name == "mvbench" else "judge")
        assert set(fmt.criteria) <= set(CRITERIA)
        assert bool(fmt.criteria) == (fmt.kind == "judge")
    assert BENCH_FORMATS["msvd_qa"].criteria == ("qa",)
    assert BENCH_FORMATS["vcgbench_generic"].criteria == ("correctness", "detail", "context")


def test_activitynet_questions_and_answers(anet: tuple[Path, Path]) -> None:
    q, a = anet
    items = load_benchmark("activitynet_qa", q, "anet", answers=a)
    assert items[0] == {
        "id": "v_JDg--pjY5gg_0",
        "benchmark": "anet",
        "task": "activitynet_qa",
        "video": "v_JDg--pjY5gg",
        "question": "what is he doing",
        "answer": "dancing",
    }
    # A name already in the file's form (v_ + an 11-character id) is not prefixed twice.
    assert [it["video"] for it in items] == ["v_JDg--pjY5gg", "v_JDg--pjY5gg", "v_Fvm9BuMz0yE"]
    assert [it["answer"] for it in items] == ["dancing", "no", "woman"]


def test_msrvtt_video_names_and_numeric_ids(tmp_path: Path) -> None:
    # Layout as Video-ChatGPT/Video-LLaVA ship MSRVTT_Zero_Shot_QA/test_q.json + test_a.json.
    q = write(tmp_path / "q.json", [
        {"video_name": "video7010", "question_id": 0, "question": "what is a cartoon doing"},
        {"video_name": 7011, "question_id": 1, "question": "who is talking"},
    ])  # fmt: skip
    a = write(tmp_path / "a.json", [
        {"answer": "flying", "type": 0, "question_id": 0},
        {"answer": 2, "type": 7, "question_id": 1},
    ])  # fmt: skip
    items = load_benchmark("msrvtt_qa", q, "msrvtt", a)
    assert [it["video"] for it in items] == ["video7010", "video7011"]
    assert [it["id"] for it in items] == ["0", "1"]
    assert items[1]["answer"] == "2"


def test_merged_files(tmp_path: Path) -> None:
    # The original MSRVTT-QA test_qa.json: video_id a number, id, question and answer together.
    msrvtt = write(tmp_path / "test_qa.json", [
        {"answer": "cartoon", "category_id": 17, "id": 158581, "question": "what is shown",
         "video_id": 7010},
    ])  # fmt: skip
    [item] = load_benchmark("msrvtt_qa", msrvtt, "m")
    assert (item["id"], item["video"], item["answer"]) == ("158581", "video7010", "cartoon")
    # BT-Adapter's merged MSVD file: video_name (or video, a file name) + question_id / id.
    msvd = write(tmp_path / "msvd.json", [
        {"video_name": "-4wsuPCjDBc_5_15", "question_id": "q0", "question": "what", "answer": "a"},
        {"video": "-4wsuPCjDBc_5_15.avi", "id": "q1", "question": "who", "answer": "man"},
    ])  # fmt: skip
    items = load_benchmark("msvd_qa", msvd, "msvd")
    assert [(it["id"], it["video"]) for it in items] == [
        ("q0", "-4wsuPCjDBc_5_15"),
        ("q1", "-4wsuPCjDBc_5_15"),
    ]
    # JSONL, and TGIF GIF names with or without .gif; no id → the position.
    tgif = tmp_path / "tgif.jsonl"
    rows = [{"video_name": "tumblr_abc_250.gif", "question": "what", "answer": "cat"},
            {"video_name": "tumblr_def_250", "question": "how many", "answer": "two"}]  # fmt: skip
    tgif.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    items = load_benchmark("tgif_qa", tgif, "tgif")
    assert [(it["id"], it["video"]) for it in items] == [("0", "tumblr_abc_250"),
                                                         ("1", "tumblr_def_250")]  # fmt: skip


def test_questions_without_answers_need_the_answers_file(anet: tuple[Path, Path]) -> None:
    with pytest.raises(ConfigError, match=r"test_q\.json.*answers file"):
        load_benchmark("activitynet_qa", anet[0], "anet")


def test_vcgbench(tmp_path: Path) -> None:
    # Layout per Video-ChatGPT video_chatgpt/eval/run_inference_benchmark_{general,consistency}.py.
    generic = write(tmp_path / "generic_qa.json", [
        {"Q": "What is the man doing?", "A": "He is surfing.", "video_name": "v_1QIUV7WYKXg"},
        {"Q": "Where is it?", "A": "At a beach.", "video_name": "v_1QIUV7WYKXg"},
    ])  # fmt: skip
    items = load_benchmark("vcgbench_generic", generic, "vcg")
    assert [it["id"] for it in items] == ["v_1QIUV7WYKXg_0", "v_1QIUV7WYKXg_1"]
    assert items[0] == {
        "id": "v_1QIUV7WYKXg_0",
        "benchmark": "vcg",
        "task": "vcgbench_generic",
        "video": "v_1QIUV7WYKXg",
        "question": "What is the man doing?",
        "answer": "He is surfing.",
    }
    temporal = write(tmp_path / "temporal_qa.json", [{"Q": "Q?", "A": "A.", "video_name": "v_x"}])
    assert load_benchmark("vcgbench_temporal", temporal, "t")[0]["task"] == "vcgbench_temporal"
    consistency = write(tmp_path / "consistency_qa.json", [
        {"Q1": "What colour is the car?", "Q2": "Describe the car.", "A": "A red car.",
         "video_name": "v_abc"},
    ])  # fmt: skip
    [item] = load_benchmark("vcgbench_consistency", consistency, "c")
    assert item["question"] == "What colour is the car?"
    assert item["question2"] == "Describe the car."
    assert "question2" not in items[0]


def _mvbench(folder: Path) -> Path:
    # Layout per Ask-Anything video_chat2/mvbench.ipynb: json/<task>.json, candidates + answer.
    folder.mkdir()
    write(folder / "action_antonym.json", [
        {"video": "166583.webm", "question": "What is the action performed by the person?",
         "candidates": ["Not sure", "Scattering something down", "Piling something up"],
         "answer": "Piling something up"},
    ])  # fmt: skip
    write(folder / "action_sequence.json", [
        {"video": "ZS9XR.mp4", "question": "What happened after the person took the food?",
         "candidates": ["Ate the medicine.", "Tidied up the blanket.",
                        "Put down the cup/glass/bottle.", "Took the box."],
         "answer": "Put down the cup/glass/bottle.", "start": 11.1, "end": 19.6},
        {"video": "8P1NH.mp4", "question": "What did the person do first?",
         "candidates": ["Sat on the sofa.", "Took the box."], "answer": "Took the box.",
         "start": 0, "end": 8},
    ])  # fmt: skip
    write(folder / "action_count.json", [
        {"video": "sub/dir/x.mp4", "question": "How many times?", "candidates": [3, 4, 5],
         "answer": 4},
    ])  # fmt: skip
    (folder / "README.txt").write_text("not a task")
    return folder


def test_mvbench_folder(tmp_path: Path) -> None:
    items = load_benchmark("mvbench", _mvbench(tmp_path / "json"), "mvb")
    assert [it["id"] for it in items] == [
        "action_antonym/0", "action_count/0", "action_sequence/0", "action_sequence/1",
    ]  # fmt: skip
    assert [it["task"] for it in items] == [i.split("/")[0] for i in (it["id"] for it in items)]
    antonym, count, seq, seq1 = items
    assert antonym["video"] == "ssv2_video_166583"
    assert antonym["options"] == ["Not sure", "Scattering something down", "Piling something up"]
    assert (antonym["answer_index"], antonym["answer"]) == (2, "Piling something up")
    assert "start" not in antonym
    assert count["video"] == "perception_videos_sub_dir_x"
    assert (count["options"], count["answer_index"], count["answer"]) == (["3", "4", "5"], 1, "4")
    assert seq["video"] == "star_Charades_v1_480_ZS9XR"
    assert (seq["answer_index"], seq["start"], seq["end"]) == (2, 11.1, 19.6)
    assert seq1["answer_index"] == 1 and seq1["start"] == 0.0
    assert {it["benchmark"] for it in items} == {"mvb"}
    assert MVBENCH_VIDEO_FOLDERS["action_sequence"] == "star/Charades_v1_480"


def test_mvbench_bounds_only_where_the_evaluator_uses_them(tmp_path: Path) -> None:
    item = {"video": "a.mp4", "question": "Q?", "candidates": ["x", "y"], "answer": "y",
            "start": 1.5, "end": 4}  # fmt: skip
    for task in ("fine_grained_action", "action_localization", "my_own_task"):
        (tmp_path / f"{task}.json").write_text(json.dumps([item]))
    by_task = {it["task"]: it for it in load_benchmark("mvbench", tmp_path, "mvb")}
    # The published evaluator samples a segment only for its bounded tasks.
    assert "start" not in by_task["fine_grained_action"]
    assert (by_task["action_localization"]["start"], by_task["action_localization"]["end"]) == (
        1.5, 4.0,
    )  # fmt: skip
    assert by_task["my_own_task"]["start"] == 1.5  # a task it does not list keeps its bounds
    for bad in (
        {"start": 4, "end": 1.5},
        {"start": -1, "end": 2},
        {"start": 0, "end": float("nan")},
    ):
        (tmp_path / "action_localization.json").write_text(json.dumps([item | bad]))
        with pytest.raises(RecordFormatError, match=r"field 'end'.* is not a span of seconds"):
            load_benchmark("mvbench", tmp_path / "action_localization.json", "mvb")


def test_mvbench_one_file_and_video_folders(tmp_path: Path) -> None:
    folder = _mvbench(tmp_path / "json")
    items = load_benchmark("mvbench", folder / "action_count.json", "m", video_folders={})
    assert [(it["task"], it["video"]) for it in items] == [("action_count", "sub_dir_x")]
    items = load_benchmark("mvbench", folder, "m", video_folders={"action_antonym": "ssv2/"})
    assert [it["video"] for it in items] == ["ssv2_166583", "sub_dir_x", "ZS9XR", "8P1NH"]


def test_config_errors(tmp_path: Path, anet: tuple[Path, Path]) -> None:
    with pytest.raises(ConfigError, match=r"unknown benchmark format 'nope'.*activitynet_qa.*"):
        load_benchmark("nope", anet[0], "x")
    with pytest.raises(ConfigError, match="does not exist"):
        load_benchmark("msvd_qa", tmp_path / "missing.json", "x")
    with pytest.raises(ConfigError, match="does not exist"):
        load_benchmark("mvbench", tmp_path / "missing", "x")
    with pytest.raises(ConfigError, match="is a folder"):
        load_benchmark("vcgbench_generic", tmp_path, "x")
    with pytest.raises(ConfigError, match="reads one file"):
        load_benchmark("vcgbench_generic", anet[0], "x", answers=anet[1])
    with pytest.raises(ConfigError, match="only format 'mvbench'"):
        load_benchmark("msvd_qa", anet[0], "x", video_folders={})
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match=r"empty.*no \.json task file"):
        load_benchmark("mvbench", empty, "x")


def _q(**change: Any) -> list[dict[str, Any]]:
    rows = [dict(r) for r in ANET_Q]
    rows[1].update(change)
    return [{k: v for k, v in r.items() if v is not None} for r in rows]


def _mv(**change: Any) -> list[dict[str, Any]]:
    base = {"video": "a.mp4", "question": "Q?", "candidates": ["x", "y"], "answer": "y"}
    return [dict(base), {k: v for k, v in {**base, **change}.items() if v is not None}]


# (format, questions-or-file content, answers content or None, field the message names)
MALFORMED = [
    ("missing question", "activitynet_qa", _q(question=None), ANET_A, "question"),
    ("empty question", "activitynet_qa", _q(question="  "), ANET_A, "question"),
    ("question a list", "activitynet_qa", _q(question=["what"]), ANET_A, "question"),
    ("video a dict", "activitynet_qa", _q(video_name={"a": 1}), ANET_A, "video_name"),
    ("missing video", "activitynet_qa", _q(video_name=None), ANET_A, "video_name"),
    ("missing id", "activitynet_qa", _q(question_id=None), ANET_A, "question_id"),
    ("duplicate id", "activitynet_qa", _q(question_id="v_JDg--pjY5gg_0"),
     [dict(ANET_A[0]), dict(ANET_A[1], question_id="v_JDg--pjY5gg_0"), ANET_A[2]],
     "question_id"),
    ("numeric msvd video", "msvd_qa", _q(video_name=12), ANET_A, "video_name"),
    ("item not an object", "activitynet_qa", [ANET_Q[0], "oops", ANET_Q[2]], ANET_A, None),
    ("vcg missing Q", "vcgbench_generic", [{"Q": "q", "A": "a", "video_name": "v"},
                                           {"A": "a", "video_name": "v"}], None, "Q"),
    ("vcg Q2 empty", "vcgbench_consistency",
     [{"Q1": "a", "Q2": "b", "A": "c", "video_name": "v"},
      {"Q1": "a", "Q2": "", "A": "c", "video_name": "v"}], None, "Q2"),
    ("answer not a candidate", "mvbench", _mv(answer="z"), None, "answer"),
    ("candidates not a list", "mvbench", _mv(candidates="x, y"), None, "candidates"),
    ("one candidate", "mvbench", _mv(candidates=["y"]), None, "candidates"),
    ("candidate null", "mvbench", _mv(candidates=["x", None]), None, "candidates[1]"),
    ("start not a number", "mvbench", _mv(start="1.5"), None, "start"),
    ("missing video", "mvbench", _mv(video=None), None, "video"),
]  # fmt: skip


@pytest.mark.parametrize(("fmt", "first", "second", "field"),
                         [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])  # fmt: skip
def test_malformed_item_names_file_line_field(
    tmp_path: Path, fmt: str, first: Any, second: Any, field: str | None
) -> None:
    path = write(tmp_path / "bench.json", first)
    answers = write(tmp_path / "answers.json", second) if second is not None else None
    with pytest.raises(RecordFormatError) as info:
        load_benchmark(fmt, path, "b", answers)
    err, line = info.value, item_lines(path)[1]
    assert (err.path, err.line, err.field) == (str(path), line, field)
    message = str(err)
    assert message.startswith(f"{path}:{line}:") and "record 1" in message
    if field:
        assert repr(field) in message


def test_duplicate_id_names_the_first_place(tmp_path: Path) -> None:
    q = write(tmp_path / "q.json", _q(question_id="v_JDg--pjY5gg_0"))
    a = [dict(ANET_A[0]), dict(ANET_A[1], question_id="v_JDg--pjY5gg_0"), ANET_A[2]]
    with pytest.raises(RecordFormatError, match=rf"duplicate id .*first seen at {q} line 2"):
        load_benchmark("activitynet_qa", q, "b", write(tmp_path / "a.json", a))


def test_answers_out_of_step(tmp_path: Path, anet: tuple[Path, Path]) -> None:
    q, _ = anet
    short = write(tmp_path / "short.json", ANET_A[:2])
    with pytest.raises(RecordFormatError, match=r"holds 2 answers but .* holds 3 questions"):
        load_benchmark("activitynet_qa", q, "b", short)
    swapped = write(tmp_path / "swapped.json", [ANET_A[1], ANET_A[0], ANET_A[2]])
    with pytest.raises(RecordFormatError) as info:
        load_benchmark("activitynet_qa", q, "b", swapped)
    assert (info.value.path, info.value.line, info.value.field) == (str(swapped), 2, "question_id")
    assert "v_JDg--pjY5gg_0" in str(info.value) and f"{q} line 2" in str(info.value)


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        ('[\n {"a": 1},\n {"b": 2,\n}\n]', 4, "invalid JSON"),  # the broken item's line
        ('{\n "v_abc": {"Q1": "a", "Q2": "b", "A": "c"}\n}', None, "top level is a JSON object"),
        ("42", None, "top level is a int"),
        ("   \n", None, "empty"),
        ("[]", None, "no items"),
    ],
)
def test_malformed_file(tmp_path: Path, text: str, line: int | None, needle: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(RecordFormatError, match=needle) as info:
        load_benchmark("vcgbench_consistency", path, "b")
    assert info.value.path == str(path) and info.value.line == line


def test_one_line_list_still_gives_item_positions(tmp_path: Path) -> None:
    # Video-ChatGPT writes a whole list on one line: the message names the item's position.
    path = write(tmp_path / "one_line.json", _q(question=None), indent=None)
    with pytest.raises(RecordFormatError, match=r"one_line\.json:1: field 'question': record 1"):
        load_benchmark("activitynet_qa", path, "b", write(tmp_path / "a.json", ANET_A))
