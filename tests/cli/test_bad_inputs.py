"""Bad input to every command, one table row each: a one-line error, no traceback, nothing lost.

Each row runs ``videollm`` as a user would (``main(argv)``) and asserts the exit code, that the
message names the culprit, that no traceback is printed, and that every output written before
(features, records, a checkpoint) is byte-identical afterwards.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import huggingface_hub
import pytest
import torch

from videollm.cli.main import EXIT_ERROR, main
from videollm.demo.videos import write_text_as_video
from videollm.features.store import MANIFEST_NAME, load_features, save_features
from videollm.lineage import build_meta, write_meta
from videollm.model.config import CONFIG_FILE, WEIGHTS_FILE

World = dict[str, Path]


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


# ---- argument builders: (world, scratch dir) -> argv ------------------------------------------
Args = Callable[[World, Path], list[str]]


def _extract(videos: Callable[[World, Path], Path] | None = None, *extra: str) -> Args:
    def build(w: World, tmp: Path) -> list[str]:
        src = videos(w, tmp) if videos else w["videos"]
        return ["extract", "--videos", str(src), "--out", str(tmp / "f"),
                "--encoder", str(w["clip"]), "--num-frames", "8", *extra]  # fmt: skip

    return build


def _train(*extra: str, features: str = "features", out: Callable | None = None) -> Args:
    def build(w: World, tmp: Path) -> list[str]:
        dest = out(w, tmp) if out else tmp / "ckpt"
        return ["train", "--config", "demo", "--records", str(w["records"]),
                "--features", str(w[features]), "--llm", str(w["llm"]), "--out", str(dest),
                "train.max_steps=1", *extra]  # fmt: skip

    return build


def _evaluate(
    ckpt: Callable[[World, Path], Path] | None = None,
    records: str = "records/val.jsonl",
    features: str = "features",
    *extra: str,
) -> Args:
    def build(w: World, tmp: Path) -> list[str]:
        path = ckpt(w, tmp) if ckpt else w["ckpt"]
        return ["evaluate", "--checkpoint", str(path), "--records", str(w["root"] / records),
                "--features", str(w[features]), "--out", str(tmp / "eval"),
                "generation.max_new_tokens=2", *extra]  # fmt: skip

    return build


def _chat(*extra: str, question: str = "What colour?", video: Callable | None = None) -> Args:
    def build(w: World, tmp: Path) -> list[str]:
        clip = video(w, tmp) if video else sorted(w["videos"].glob("*.mp4"))[0]
        return ["chat", "--checkpoint", str(w["ckpt"]), "--video", str(clip),
                "--question", question, "--max-new-tokens", "2", *extra]  # fmt: skip

    return build


def _convert(input_path: Callable[[World, Path], Path], *extra: str, out: Callable | None = None):
    def build(w: World, tmp: Path) -> list[str]:
        dest = out(w, tmp) if out else tmp / "records"
        return ["convert", "--format", "jsonl", "--input", str(input_path(w, tmp)),
                "--out", str(dest), *extra]  # fmt: skip

    return build


# ---- inputs the rows need ------------------------------------------------------------------
def _annotations(w: World, tmp: Path) -> Path:
    rows = [{"video": f"v{i}", "question": "q?", "answer": "a"} for i in range(4)]
    path = tmp / "ann.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _clashing_ids(w: World, tmp: Path) -> Path:
    rows = [{"id": "same", "video": v, "question": "q?", "answer": "a"} for v in ("v1", "v2")]
    path = tmp / "ann.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _a_file(w: World, tmp: Path) -> Path:
    path = tmp / "a_file"
    path.write_text("not a folder\n")
    return path


def _colliding_videos(w: World, tmp: Path) -> Path:
    root = tmp / "vids"
    (root / "a").mkdir(parents=True)
    clip = sorted(w["videos"].glob("*.mp4"))[0]
    shutil.copy(clip, root / "a" / "b.mp4")
    shutil.copy(clip, root / "a_b.mp4")
    return root


def _empty_dir(w: World, tmp: Path) -> Path:
    (tmp / "empty").mkdir()
    return tmp / "empty"


def _binary_file(w: World, tmp: Path) -> Path:
    path = tmp / "list.bin"
    path.write_bytes(bytes(range(256)) * 4)
    return path


def _ckpt_copy(edit: Callable[[Path], None]) -> Callable[[World, Path], Path]:
    def build(w: World, tmp: Path) -> Path:
        dest = tmp / "ckpt_copy"
        shutil.copytree(w["ckpt"], dest, ignore=shutil.ignore_patterns("checkpoint-*"))
        edit(dest)
        return dest

    return build


def _garbage_weights(d: Path) -> None:
    (d / WEIGHTS_FILE).write_bytes(b"\x00garbage" * 64)


def _truncated_weights(d: Path) -> None:
    blob = (d / WEIGHTS_FILE).read_bytes()
    (d / WEIGHTS_FILE).write_bytes(blob[: len(blob) // 2])


def _empty_weights(d: Path) -> None:
    (d / WEIGHTS_FILE).write_bytes(b"")


def _missing_llm(d: Path) -> None:
    cfg = json.loads((d / CONFIG_FILE).read_text())
    cfg["model"]["llm"] = str(d / "gone" / "llm")
    (d / CONFIG_FILE).write_text(json.dumps(cfg))


def _resume_copy(w: World, tmp: Path) -> Path:
    dest = tmp / "resume"
    shutil.copytree(w["ckpt"], dest)
    return dest


def _tampered_features(w: World, tmp: Path) -> None:
    """A features copy whose first file no longer matches its manifest line."""
    dest = tmp / "tampered"
    shutil.copytree(w["features"], dest)
    video = json.loads((w["records"] / "train.jsonl").read_text().splitlines()[0])["video"]
    first = dest / f"{video}.safetensors"
    tensor, meta = load_features(first)
    save_features(first, tensor + 1, meta)
    w["tampered"] = dest  # the row's builder reads it under this key


def _mixed_features(w: World, tmp: Path) -> None:
    """A features copy (no manifest) in which one video has another width than the rest."""
    dest = tmp / "mixed"
    shutil.copytree(w["features"], dest)
    (dest / MANIFEST_NAME).unlink()
    last = sorted(dest.glob("*.safetensors"))[-1]
    shutil.copy(w["narrow"] / last.name, last)
    w["mixed"] = dest


def _text_video(w: World, tmp: Path) -> Path:
    return write_text_as_video(tmp / "notes.mp4")


@dataclass(frozen=True)
class Case:
    """One bad input: the command line, the exit code, words the message must hold."""

    name: str
    args: Args
    needles: tuple[str, ...]
    code: int = EXIT_ERROR
    prepare: Callable[[World, Path], None] | None = None


CASES = [
    # convert
    Case("convert-input-is-folder", _convert(_empty_dir), ("input", "is a folder")),
    Case("convert-out-is-file", _convert(_annotations, out=_a_file), ("a_file", "existing file")),
    Case("convert-input-missing", _convert(lambda w, t: t / "nope.jsonl"), ("nope.jsonl",)),
    Case("convert-id-on-two-videos", _convert(_clashing_ids), ("'same'", "several videos")),
    Case("convert-bad-repeat", _convert(_annotations, "--repeat", "qa=x"), ("qa=x", "TASK=N")),
    Case(
        "convert-val-fraction", _convert(_annotations, "--val-fraction", "1.5"), ("val_fraction",)
    ),
    Case(
        "convert-unknown-format",
        lambda w, t: ["convert", "--format", "csv", "--input", "x", "--out", "y"],
        ("csv",),
        code=2,
    ),
    # extract
    Case("extract-ids-collide", _extract(_colliding_videos), ("b.mp4", "a_b.mp4", "'a_b'")),
    Case("extract-zero-frames", _extract(None, "--num-frames", "0"), ("num_frames", ">= 1")),
    Case("extract-negative-frames", _extract(None, "--num-frames", "-3"), ("num_frames", "-3")),
    Case("extract-too-many-frames", _extract(None, "--num-frames", "100000"), ("max_num_frames",)),
    Case("extract-zero-batch", _extract(None, "--batch-size", "0"), ("batch_size", ">= 1")),
    Case("extract-negative-workers", _extract(None, "--num-workers", "-1"), ("num_workers",)),
    Case(
        "extract-encoder-missing",
        _extract(None, "--encoder", "./no/such/encoder"),
        ("encoder", "./no/such/encoder", "does not exist"),
    ),
    Case(
        "extract-encoder-not-vision",
        lambda w, t: [*_extract()(w, t), "--encoder", str(w["llm"])],
        ("encoder", "not a vision encoder"),
    ),
    Case(
        "extract-out-is-file",
        lambda w, t: [*_extract()(w, t), "--out", str(_a_file(w, t))],
        ("a_file", "existing file"),
    ),
    Case("extract-empty-folder", _extract(_empty_dir), ("no videos found", "empty")),
    Case("extract-videos-missing", _extract(lambda w, t: t / "nope"), ("nope", "does not exist")),
    Case("extract-videos-binary", _extract(_binary_file), ("list.bin", "neither a folder")),
    # train
    Case(
        "train-batch-not-multiple",
        _train("train.global_batch_size=3", "train.micro_batch_size=2"),
        ("global_batch_size=3", "micro_batch_size=2"),
    ),
    Case("train-negative-lr", _train("optim.lr=-1"), ("optim.lr", "-1")),
    Case("train-nan-lr", _train("optim.lr=.nan"), ("optim.lr", "finite")),
    Case(
        "train-llm-missing",
        lambda w, t: [*_train()(w, t), "--llm", "./no/such/llm"],
        ("model.llm", "./no/such/llm", "does not exist"),
    ),
    Case(
        "train-llm-not-on-hub",
        lambda w, t: [*_train()(w, t), "--llm", "nobody/no-such-llm"],
        ("model.llm", "nobody/no-such-llm"),
    ),
    Case("train-out-is-file", _train(out=_a_file), ("a_file", "existing file")),
    Case(
        "train-out-is-features",
        _train(out=lambda w, t: w["features"]),
        ("not a videollm checkpoint", "extract"),
    ),
    Case(
        "train-resume-other-feature-width",
        _train("model.train_mode=projector", features="narrow", out=_resume_copy),
        ("model.safetensors", "another width"),
    ),
    Case(
        "train-mixed-feature-widths",
        lambda w, t: _train(features="mixed")(w, t),
        ("(24, 16)", "(24, 32)", "other settings"),
        prepare=_mixed_features,
    ),
    Case(
        "train-features-tampered",
        lambda w, t: _train(features="tampered")(w, t),
        ("does not match its manifest",),
        prepare=_tampered_features,
    ),
    Case("train-max-length-too-small", _train("model.max_length=16"), ("model.max_length=16",)),
    Case(
        "train-records-missing",
        lambda w, t: [*_train()(w, t), "--records", str(t / "r.jsonl")],
        ("r.jsonl",),
    ),
    # evaluate
    Case(
        "evaluate-garbage-weights",
        _evaluate(_ckpt_copy(_garbage_weights)),
        ("model.safetensors", "not a readable safetensors"),
    ),
    Case(
        "evaluate-truncated-weights",
        _evaluate(_ckpt_copy(_truncated_weights)),
        ("model.safetensors", "not a readable safetensors"),
    ),
    Case(
        "evaluate-empty-weights",
        _evaluate(_ckpt_copy(_empty_weights)),
        ("model.safetensors", "not a readable safetensors"),
    ),
    Case(
        "evaluate-llm-gone", _evaluate(_ckpt_copy(_missing_llm)), ("model.llm", "no longer exists")
    ),
    Case(
        "evaluate-feature-width",
        _evaluate(None, "records/val.jsonl", "narrow"),
        ("width 16", "takes 32"),
    ),
    Case(
        "evaluate-empty-records", _evaluate(None, "empty.jsonl"), ("no questions", "--allow-empty")
    ),
    Case(
        "evaluate-zero-batch",
        _evaluate(None, "records/val.jsonl", "features", "--batch-size", "0"),
        ("batch_size",),
    ),
    # chat
    Case("chat-empty-question", _chat(question="   "), ("question", "empty")),
    Case("chat-negative-temperature", _chat("--temperature", "-1"), ("temperature", ">= 0")),
    Case("chat-nan-temperature", _chat("--temperature", "nan"), ("temperature", "finite")),
    Case("chat-inf-temperature", _chat("--temperature", "inf"), ("temperature", "finite")),
    Case("chat-huge-temperature", _chat("--temperature", "1e30"), ("temperature", "<= 100")),
    Case("chat-zero-new-tokens", _chat("--max-new-tokens", "0"), ("max_new_tokens", ">= 1")),
    Case("chat-video-missing", _chat(video=lambda w, t: t / "gone.mp4"), ("gone.mp4",)),
    Case("chat-video-is-text", _chat(video=_text_video), ("notes.mp4",)),
    # the config system
    Case(
        "config-file-missing",
        lambda w, t: [*_train()(w, t), "--config", str(t / "r.yaml")],
        ("r.yaml",),
    ),
    Case("config-unknown-key", _train("optim.lrr=1"), ("optim.lrr",)),
    Case("config-not-key-value", _train("optim.lr"), ("optim.lr", "key=value")),
    Case("config-wrong-type", _train("train.epochs=many"), ("train.epochs", "many")),
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
    if case.code == EXIT_ERROR:
        assert len([ln for ln in err.splitlines() if ": error: " in ln]) == 1, err
    after = _snapshot(world["root"])
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"earlier outputs changed: {changed}"


def test_debug_shows_the_traceback(world, tmp_path):
    argv = ["--debug", *_extract(None, "--num-frames", "0")(world, tmp_path)]
    with pytest.raises(ValueError, match="num_frames"):
        main(argv)
