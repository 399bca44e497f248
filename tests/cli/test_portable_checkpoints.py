"""A checkpoint trained with relative base-model paths works from any directory."""

from __future__ import annotations

import json
import shutil

import huggingface_hub

from videollm.cli.main import EXIT_CONFIG, main
from videollm.model.model_config import CONFIG_FILE


def test_relative_llm_and_encoder_are_stored_absolute(
    colour_data, tiny_clip_dir, tiny_llm_dir, tmp_path, monkeypatch, capsys
):
    work = tmp_path / "work"
    (work / "m").mkdir(parents=True)
    shutil.copytree(tiny_llm_dir, work / "m" / "llm")
    shutil.copytree(tiny_clip_dir, work / "m" / "clip")
    videos = work / "videos"
    shutil.copytree(colour_data["videos"], videos)
    monkeypatch.chdir(work)
    args = ["extract", "--videos", "videos", "--out", "features", "--encoder", "m/clip",
            "--num-frames", "8"]  # fmt: skip
    assert main(args) == 0
    args = ["train", "--config", "demo", "--records", str(colour_data["records"]),
            "--features", "features", "--llm", "m/llm", "--out", "ckpt", "train.max_steps=2",
            "model.train_mode=projector"]  # fmt: skip
    assert main(args) == 0
    saved = json.loads((work / "ckpt" / CONFIG_FILE).read_text())
    assert saved["model"]["llm"] == str(work / "m" / "llm")
    assert saved["extract"]["encoder"] == str(work / "m" / "clip")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    # A Hub lookup would be the old bug: fail at once instead of waiting for the network.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    capsys.readouterr()
    video = str(sorted(videos.glob("*.mp4"))[0])
    chat = ["chat", "--checkpoint", str(work / "ckpt"), "--video", video, "--question",
            "What colour?", "--max-new-tokens", "2"]  # fmt: skip
    assert main(chat) == 0, capsys.readouterr().err
    assert main(["evaluate", "--checkpoint", str(work / "ckpt"),
                 "--records", str(colour_data["records"] / "val.jsonl"),
                 "--features", str(work / "features"), "--out", "eval",
                 "generation.max_new_tokens=2"]) == 0  # fmt: skip

    # The base model moved away: a clear error that names it, not a hub lookup.
    shutil.move(work / "m" / "llm", tmp_path / "moved")
    capsys.readouterr()
    assert main(chat) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert "model.llm" in err and str(work / "m" / "llm") in err and "no longer exists" in err
    assert "Traceback" not in err
