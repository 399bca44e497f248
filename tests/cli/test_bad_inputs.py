"""Bad input to every command, one table row each: a one-line error, no traceback, nothing lost.

Each row runs ``videollm`` as a user would (``main(argv)``) and asserts the exit code, that the
message names the culprit, that no traceback is printed, and that every output written before
(features, records, a checkpoint) is byte-identical afterwards.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import huggingface_hub
import pytest
import torch
from bad_input_builders import (
    Args,
    World,
    a_file,
    annotations,
    binary_file,
    chat,
    ckpt_copy,
    clashing_ids,
    colliding_videos,
    convert,
    empty_dir,
    empty_weights,
    evaluate,
    extract,
    garbage_weights,
    missing_llm,
    mixed_features,
    narrow_encoder,
    resume_copy,
    tampered_features,
    text_video,
    train,
    truncated_weights,
)

from videollm.cli.main import EXIT_CONFIG, main
from videollm.features.store import load_features, save_features
from videollm.lineage import build_meta, write_meta


@pytest.fixture(scope="module")
def world(colour_data, tiny_clip_dir, tiny_llm_dir, tmp_path_factory) -> World:
    """Outputs a user already has: videos, features, records, a trained checkpoint."""
    root = tmp_path_factory.mktemp("world")
    videos = root / "videos"
    videos.mkdir()
    for src in sorted(colour_data["videos"].glob("*.mp4"))[:3]:
        shutil.copy(src, videos / src.name)
    shutil.copytree(colour_data["features"], root / "features")
    write_meta(root / "features", build_meta("extract", {}, {}))  # as `videollm extract` does
    shutil.copytree(colour_data["records"], root / "records")
    ckpt = root / "ckpt"
    code = main([
        "train", "--config", "demo", "--records", str(root / "records"),
        "--features", str(root / "features"), "--llm", str(tiny_llm_dir), "--out", str(ckpt),
        "train.max_steps=2", "train.save_steps=1", "model.train_mode=projector",
    ])  # fmt: skip
    assert code == 0
    # Features one encoder width narrower than the checkpoint's projector takes.
    narrow = root / "features16"
    narrow.mkdir()
    for path in sorted((root / "features").glob("*.safetensors")):
        tensor, meta = load_features(path)
        save_features(narrow / path.name, torch.randn(tensor.shape[0], 16), meta)
    (root / "empty.jsonl").write_text("")
    return {
        "root": root,
        "videos": videos,
        "features": root / "features",
        "records": root / "records",
        "ckpt": ckpt,
        "narrow": narrow,
        "clip": tiny_clip_dir,
        "llm": tiny_llm_dir,
    }


def _snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@dataclass(frozen=True)
class Case:
    """One bad input: the command line, the exit code, words the message must hold."""

    name: str
    args: Args
    needles: tuple[str, ...]
    code: int = EXIT_CONFIG
    prepare: Callable[[World, Path], None] | None = None


CASES = [
    # convert
    Case("convert-input-is-folder", convert(empty_dir), ("input", "is a folder")),
    Case("convert-out-is-file", convert(annotations, out=a_file), ("a_file", "existing file")),
    Case("convert-input-missing", convert(lambda w, t: t / "nope.jsonl"), ("nope.jsonl",)),
    Case("convert-id-on-two-videos", convert(clashing_ids), ("'same'", "several videos")),
    Case("convert-bad-repeat", convert(annotations, "--repeat", "qa=x"), ("qa=x", "TASK=N")),
    Case("convert-val-fraction", convert(annotations, "--val-fraction", "1.5"), ("val_fraction",)),
    Case(
        "convert-unknown-format",
        lambda w, t: ["convert", "--format", "csv", "--input", "x", "--out", "y"],
        ("csv",),
        code=2,
    ),
    # extract
    Case("extract-ids-collide", extract(colliding_videos), ("b.mp4", "a_b.mp4", "'a_b'")),
    Case("extract-zero-frames", extract(None, "--num-frames", "0"), ("num_frames", ">= 1")),
    Case("extract-negative-frames", extract(None, "--num-frames", "-3"), ("num_frames", "-3")),
    Case("extract-too-many-frames", extract(None, "--num-frames", "100000"), ("max_num_frames",)),
    Case("extract-zero-batch", extract(None, "--batch-size", "0"), ("batch_size", ">= 1")),
    Case("extract-negative-workers", extract(None, "--num-workers", "-1"), ("num_workers",)),
    Case(
        "extract-encoder-missing",
        extract(None, "--encoder", "./no/such/encoder"),
        ("encoder", "./no/such/encoder", "does not exist"),
    ),
    Case(
        "extract-encoder-not-vision",
        lambda w, t: [*extract()(w, t), "--encoder", str(w["llm"])],
        ("encoder", "not a vision encoder"),
    ),
    Case(
        "extract-out-is-file",
        lambda w, t: [*extract()(w, t), "--out", str(a_file(w, t))],
        ("a_file", "existing file"),
    ),
    Case("extract-empty-folder", extract(empty_dir), ("no videos found", "empty")),
    Case("extract-videos-missing", extract(lambda w, t: t / "nope"), ("nope", "does not exist")),
    Case("extract-videos-binary", extract(binary_file), ("list.bin", "neither a folder")),
    # train
    Case(
        "train-batch-not-multiple",
        train("train.global_batch_size=3", "train.micro_batch_size=2"),
        ("global_batch_size=3", "micro_batch_size × processes = 2 × 1"),
    ),
    Case("train-negative-lr", train("optim.lr=-1"), ("optim.lr", "-1")),
    Case("train-nan-lr", train("optim.lr=.nan"), ("optim.lr", "finite")),
    Case(
        "train-llm-missing",
        lambda w, t: [*train()(w, t), "--llm", "./no/such/llm"],
        ("model.llm", "./no/such/llm", "does not exist"),
    ),
    Case(
        "train-llm-not-on-hub",
        lambda w, t: [*train()(w, t), "--llm", "nobody/no-such-llm"],
        ("model.llm", "nobody/no-such-llm"),
    ),
    Case("train-out-is-file", train(out=a_file), ("a_file", "existing file")),
    Case(
        "train-out-is-features",
        train(out=lambda w, t: w["features"]),
        ("not a videollm checkpoint", "extract"),
    ),
    Case(
        "train-resume-other-feature-width",
        train("model.train_mode=projector", features="narrow", out=resume_copy),
        ("model.safetensors", "another width"),
    ),
    Case(
        "train-mixed-feature-widths",
        lambda w, t: train(features="mixed")(w, t),
        ("(24, 16)", "(24, 32)", "other settings"),
        prepare=mixed_features,
    ),
    Case(
        "train-features-tampered",
        lambda w, t: train(features="tampered")(w, t),
        ("does not match its manifest",),
        prepare=tampered_features,
    ),
    Case("train-max-length-too-small", train("model.max_length=16"), ("model.max_length=16",)),
    Case(
        "train-records-missing",
        lambda w, t: [*train()(w, t), "--records", str(t / "r.jsonl")],
        ("r.jsonl",),
    ),
    # evaluate
    Case(
        "evaluate-garbage-weights",
        evaluate(ckpt_copy(garbage_weights)),
        ("model.safetensors", "not a readable safetensors"),
    ),
    Case(
        "evaluate-truncated-weights",
        evaluate(ckpt_copy(truncated_weights)),
        ("model.safetensors", "not a readable safetensors"),
    ),
    Case(
        "evaluate-empty-weights",
        evaluate(ckpt_copy(empty_weights)),
        ("model.safetensors", "not a readable safetensors"),
    ),
    Case("evaluate-llm-gone", evaluate(ckpt_copy(missing_llm)), ("model.llm", "no longer exists")),
    Case(
        "evaluate-feature-width",
        evaluate(None, "records/val.jsonl", "narrow"),
        ("width 16", "takes 32"),
    ),
    Case(
        "evaluate-empty-records", evaluate(None, "empty.jsonl"), ("no questions", "--allow-empty")
    ),
    Case(
        "evaluate-zero-batch",
        evaluate(None, "records/val.jsonl", "features", "--batch-size", "0"),
        ("batch_size",),
    ),
    # chat
    Case("chat-empty-question", chat(question="   "), ("question", "empty")),
    Case("chat-negative-temperature", chat("--temperature", "-1"), ("temperature", ">= 0")),
    Case("chat-nan-temperature", chat("--temperature", "nan"), ("temperature", "finite")),
    Case("chat-inf-temperature", chat("--temperature", "inf"), ("temperature", "finite")),
    Case("chat-huge-temperature", chat("--temperature", "1e30"), ("temperature", "<= 100")),
    Case("chat-zero-new-tokens", chat("--max-new-tokens", "0"), ("max_new_tokens", ">= 1")),
    Case("chat-video-missing", chat(video=lambda w, t: t / "gone.mp4"), ("gone.mp4",)),
    Case("chat-video-is-text", chat(video=text_video), ("notes.mp4",)),
    Case("chat-garbage-weights", chat(ckpt=ckpt_copy(garbage_weights)), ("not a readable",)),
    Case("chat-empty-weights", chat(ckpt=ckpt_copy(empty_weights)), ("not a readable",)),
    Case("chat-llm-gone", chat(ckpt=ckpt_copy(missing_llm)), ("model.llm", "no longer exists")),
    Case(
        "chat-feature-width",
        chat(ckpt=ckpt_copy(narrow_encoder)),
        ("width 16", "projector takes 32", "another encoder"),
    ),
    # the config system
    Case(
        "config-file-missing",
        lambda w, t: [*train()(w, t), "--config", str(t / "r.yaml")],
        ("r.yaml",),
    ),
    Case("config-unknown-key", train("optim.lrr=1"), ("optim.lrr",)),
    Case("config-not-key-value", train("optim.lr"), ("optim.lr", "key=value")),
    Case("config-wrong-type", train("train.epochs=many"), ("train.epochs", "many")),
]


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    # A Hub id must fail fast here (no network), as it would on an air-gapped cluster.
    # huggingface_hub reads HF_HUB_OFFLINE once, at import: set its constant too.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_one_clear_error_and_loses_nothing(
    case: Case, world, tmp_path, capsys, caplog
):
    if case.prepare is not None:
        case.prepare(world, tmp_path)
    argv = case.args(world, tmp_path)
    before = _snapshot(world["root"])
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own usage errors
        code = exc.code
    err = capsys.readouterr().err
    logged = caplog.text
    assert code == case.code, err
    assert "Traceback" not in err and "Traceback" not in logged
    for needle in case.needles:
        assert needle.lower() in err.lower(), f"{needle!r} not in: {err}"
    if case.code == EXIT_CONFIG:
        assert len([ln for ln in err.splitlines() if ": error: " in ln]) == 1, err
    if (tmp_path / "a_file").exists():  # the rows that name a file as --out
        assert (tmp_path / "a_file").read_text() == "not a folder\n"
    after = _snapshot(world["root"])
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"earlier outputs changed: {changed}"


def test_debug_shows_the_traceback(world, tmp_path):
    argv = ["--debug", *extract(None, "--num-frames", "0")(world, tmp_path)]
    with pytest.raises(ValueError, match="num_frames"):
        main(argv)
