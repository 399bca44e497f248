"""The ``videollm`` command as a user runs it: help, exit codes, clear errors, the full flow."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from broken_videos import write_text_as_video

from videollm.cli.main import EXIT_CONFIG, EXIT_PARTIAL, main
from videollm.features.store import load_features
from videollm.video import decode

COMMANDS = {
    "extract": ["--videos", "--num-frames", "--pooling", "--dtype", "--decoder", "--allow-pickle"],
    "convert": ["--format", "--repeat", "--val-fraction", "--seed"],
    "train": ["--records", "--features", "--llm", "--config"],
    "evaluate": ["--checkpoint", "--records", "--features", "--out"],
    "chat": ["--checkpoint", "--video", "--question"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_documents_the_public_flags(command):
    proc = subprocess.run(
        [sys.executable, "-m", "videollm.cli.main", command, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0
    for flag in COMMANDS[command]:
        assert flag in proc.stdout


def test_extract_exit_codes(colour_data, tiny_clip_dir, tmp_path, capsys):
    videos = tmp_path / "videos"
    shutil.copytree(colour_data["videos"], videos)
    args = ["extract", "--videos", str(videos), "--out", str(tmp_path / "f"), "--num-frames", "8"]
    assert main([*args, "--encoder", str(tiny_clip_dir)]) == 0

    write_text_as_video(videos / "notes.mp4")
    assert main([*args, "--encoder", str(tiny_clip_dir)]) == EXIT_PARTIAL
    failures = (tmp_path / "f" / "failures.jsonl").read_text()
    assert "notes" in failures
    assert len(list((tmp_path / "f").glob("*.safetensors"))) == 24  # nothing lost
    assert "1 video(s) failed" in capsys.readouterr().err


def test_extract_takes_the_decoder_and_refuses_one_that_does_not_load(
    colour_data, tiny_clip_dir, tmp_path, capsys, monkeypatch
):
    one = tmp_path / "videos"
    one.mkdir()
    shutil.copy(next(Path(colour_data["videos"]).glob("*.mp4")), one)
    args = ["extract", "--videos", str(one), "--encoder", str(tiny_clip_dir), "--num-frames", "4"]
    assert main([*args, "--out", str(tmp_path / "f"), "--decoder", "pyav"]) == 0
    (written,) = (tmp_path / "f").glob("*.safetensors")
    assert load_features(written)[1]["decoder"] == "pyav"
    capsys.readouterr()

    monkeypatch.setattr(decode, "torchcodec_problem", lambda: "libavutil.so.58: not found")
    code = main([*args, "--out", str(tmp_path / "g"), "--decoder", "torchcodec"])
    assert code == EXIT_CONFIG
    err = capsys.readouterr().err
    assert "decoder: torchcodec cannot decode on this machine (libavutil.so.58: not found)" in err
    assert not list((tmp_path / "g").glob("*.safetensors"))


def test_missing_videos_folder_is_an_error(tmp_path, capsys):
    code = main(["extract", "--videos", str(tmp_path / "nope"), "--out", str(tmp_path / "f")])
    assert code == EXIT_CONFIG
    assert "nope" in capsys.readouterr().err


def test_unknown_override_is_named(colour_data, tmp_path, capsys):
    code = main(
        [
            "train",
            "--records",
            str(colour_data["records"]),
            "--features",
            str(colour_data["features"]),
            "--llm",
            "x",
            "--out",
            str(tmp_path),
            "optim.lrr=1",
        ]
    )
    assert code == EXIT_CONFIG
    assert "optim.lrr" in capsys.readouterr().err


def test_convert_bad_input_names_file_line_field_and_keeps_output(tmp_path, capsys):
    out = tmp_path / "records"
    out.mkdir()
    (out / "train.jsonl").write_text("keep me\n")
    bad = tmp_path / "ann.jsonl"
    bad.write_text(
        '{"video": "a", "question": "q", "answer": "x"}\n{"video": "b", "question": "q"}\n'
    )
    assert (
        main(["convert", "--format", "jsonl", "--input", str(bad), "--out", str(out)])
        == EXIT_CONFIG
    )
    err = capsys.readouterr().err
    assert "ann.jsonl:2" in err and "answer" in err
    assert (out / "train.jsonl").read_text() == "keep me\n"


def test_train_without_features_names_the_videos(colour_data, tiny_llm_dir, tmp_path, capsys):
    records = tmp_path / "r.jsonl"
    rec = {"id": "x", "video": "missing_video", "conversations": [
        {"from": "human", "value": "<video>\nq"}, {"from": "gpt", "value": "a"}]}  # fmt: skip
    records.write_text(json.dumps(rec) + "\n")
    code = main(
        [
            "train",
            "--records",
            str(records),
            "--features",
            str(colour_data["features"]),
            "--llm",
            str(tiny_llm_dir),
            "--out",
            str(tmp_path / "ckpt"),
        ]
    )
    assert code == EXIT_CONFIG
    assert "missing_video" in capsys.readouterr().err


@pytest.mark.slow
def test_train_evaluate_chat_through_the_cli(colour_data, tiny_llm_dir, tmp_path, capsys):
    ckpt, ev = tmp_path / "ckpt", tmp_path / "eval"
    assert (
        main(
            [
                "train",
                "--config",
                "demo",
                "--records",
                str(colour_data["records"]),
                "--features",
                str(colour_data["features"]),
                "--llm",
                str(tiny_llm_dir),
                "--out",
                str(ckpt),
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert (
        main(
            [
                "evaluate",
                "--checkpoint",
                str(ckpt),
                "--records",
                str(colour_data["records"] / "val.jsonl"),
                "--features",
                str(colour_data["features"]),
                "--out",
                str(ev),
                "generation.max_new_tokens=8",
            ]
        )
        == 0
    )
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["exact_match"] >= 0.8
    assert json.loads((ev / "metrics.json").read_text())["metrics"] == metrics

    video = next(p for p in sorted(colour_data["videos"].iterdir()) if p.name.startswith("green"))
    assert main(["chat", "--checkpoint", str(ckpt), "--video", str(video), "--question",
                 "What colour is the video?", "--max-new-tokens", "8"]) == 0  # fmt: skip
    assert capsys.readouterr().out.strip() == "green"
