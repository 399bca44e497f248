"""What the bad-input table runs: argv builders and the broken inputs the rows need.

Each builder takes the ``world`` of earlier outputs (see ``test_bad_inputs.py``) and a scratch
folder, and returns the ``videollm`` argv (or the input path) for one row.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

from broken_videos import write_text_as_video

from videollm.demo.tiny_models import build_tiny_clip
from videollm.features.store import MANIFEST_NAME, load_features, save_features
from videollm.model.model_config import CONFIG_FILE, WEIGHTS_FILE

World = dict[str, Path]
Args = Callable[[World, Path], list[str]]


# ---- argument builders: (world, scratch dir) -> argv ------------------------------------------
def extract(videos: Callable[[World, Path], Path] | None = None, *extra: str) -> Args:
    def build(w: World, tmp: Path) -> list[str]:
        src = videos(w, tmp) if videos else w["videos"]
        return ["extract", "--videos", str(src), "--out", str(tmp / "f"),
                "--encoder", str(w["clip"]), "--num-frames", "8", *extra]  # fmt: skip

    return build


def train(*extra: str, features: str = "features", out: Callable | None = None) -> Args:
    def build(w: World, tmp: Path) -> list[str]:
        dest = out(w, tmp) if out else tmp / "ckpt"
        return ["train", "--config", "demo", "--records", str(w["records"]),
                "--features", str(w[features]), "--llm", str(w["llm"]), "--out", str(dest),
                "train.max_steps=1", *extra]  # fmt: skip

    return build


def evaluate(
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


def chat(
    *extra: str,
    question: str = "What colour?",
    video: Callable | None = None,
    ckpt: Callable[[World, Path], Path] | None = None,
) -> Args:
    def build(w: World, tmp: Path) -> list[str]:
        clip = video(w, tmp) if video else sorted(w["videos"].glob("*.mp4"))[0]
        path = ckpt(w, tmp) if ckpt else w["ckpt"]
        return ["chat", "--checkpoint", str(path), "--video", str(clip),
                "--question", question, "--max-new-tokens", "2", *extra]  # fmt: skip

    return build


def convert(input_path: Callable[[World, Path], Path], *extra: str, out: Callable | None = None):
    def build(w: World, tmp: Path) -> list[str]:
        dest = out(w, tmp) if out else tmp / "records"
        return ["convert", "--format", "jsonl", "--input", str(input_path(w, tmp)),
                "--out", str(dest), *extra]  # fmt: skip

    return build


# ---- inputs the rows need ------------------------------------------------------------------
def annotations(w: World, tmp: Path) -> Path:
    rows = [{"video": f"v{i}", "question": "q?", "answer": "a"} for i in range(4)]
    path = tmp / "ann.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def clashing_ids(w: World, tmp: Path) -> Path:
    rows = [{"id": "same", "video": v, "question": "q?", "answer": "a"} for v in ("v1", "v2")]
    path = tmp / "ann.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def a_file(w: World, tmp: Path) -> Path:
    path = tmp / "a_file"
    path.write_text("not a folder\n")
    return path


def colliding_videos(w: World, tmp: Path) -> Path:
    root = tmp / "vids"
    (root / "a").mkdir(parents=True)
    clip = sorted(w["videos"].glob("*.mp4"))[0]
    shutil.copy(clip, root / "a" / "b.mp4")
    shutil.copy(clip, root / "a_b.mp4")
    return root


def empty_dir(w: World, tmp: Path) -> Path:
    (tmp / "empty").mkdir()
    return tmp / "empty"


def binary_file(w: World, tmp: Path) -> Path:
    path = tmp / "list.bin"
    path.write_bytes(bytes(range(256)) * 4)
    return path


def ckpt_copy(edit: Callable[[Path], None]) -> Callable[[World, Path], Path]:
    def build(w: World, tmp: Path) -> Path:
        dest = tmp / "ckpt_copy"
        shutil.copytree(w["ckpt"], dest, ignore=shutil.ignore_patterns("checkpoint-*"))
        edit(dest)
        return dest

    return build


def garbage_weights(d: Path) -> None:
    (d / WEIGHTS_FILE).write_bytes(b"\x00garbage" * 64)


def truncated_weights(d: Path) -> None:
    blob = (d / WEIGHTS_FILE).read_bytes()
    (d / WEIGHTS_FILE).write_bytes(blob[: len(blob) // 2])


def empty_weights(d: Path) -> None:
    (d / WEIGHTS_FILE).write_bytes(b"")


def missing_llm(d: Path) -> None:
    cfg = json.loads((d / CONFIG_FILE).read_text())
    cfg["model"]["llm"] = str(d / "gone" / "llm")
    (d / CONFIG_FILE).write_text(json.dumps(cfg))


def narrow_encoder(d: Path) -> None:
    """Point the checkpoint at an encoder 16 wide: its features cannot feed the projector."""
    cfg = json.loads((d / CONFIG_FILE).read_text())
    cfg["extract"]["encoder"] = str(build_tiny_clip(d / "clip16", hidden_size=16))
    (d / CONFIG_FILE).write_text(json.dumps(cfg))


def resume_copy(w: World, tmp: Path) -> Path:
    dest = tmp / "resume"
    shutil.copytree(w["ckpt"], dest)
    return dest


def tampered_features(w: World, tmp: Path) -> None:
    """A features copy whose first file no longer matches its manifest line."""
    dest = tmp / "tampered"
    shutil.copytree(w["features"], dest)
    video = json.loads((w["records"] / "train.jsonl").read_text().splitlines()[0])["video"]
    first = dest / f"{video}.safetensors"
    tensor, meta = load_features(first)
    save_features(first, tensor + 1, meta)
    w["tampered"] = dest  # the row's builder reads it under this key


def mixed_features(w: World, tmp: Path) -> None:
    """A features copy (no manifest) in which one video has another width than the rest."""
    dest = tmp / "mixed"
    shutil.copytree(w["features"], dest)
    (dest / MANIFEST_NAME).unlink()
    last = sorted(dest.glob("*.safetensors"))[-1]
    shutil.copy(w["narrow"] / last.name, last)
    w["mixed"] = dest


def text_video(w: World, tmp: Path) -> Path:
    return write_text_as_video(tmp / "notes.mp4")
