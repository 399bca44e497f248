"""``videollm demo``: the whole flow on one machine, offline.

Builds tiny random CLIP and Llama models (or uses ``VIDEOLLM_ENCODER`` / ``VIDEOLLM_LLM`` when
set to real ones), writes synthetic videos whose background colour is the answer, then runs
extract → convert → train → evaluate → chat and reports where everything went. Each step is
recorded in MLflow (``MLFLOW_TRACKING_URI``, or ``mlflow.db`` in the working directory).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from videollm.chat import chat
from videollm.data.convert import ConvertConfig
from videollm.demo.tiny_models import build_tiny_clip, build_tiny_llm
from videollm.demo.videos import SyntheticVideo, make_synthetic_videos
from videollm.eval.evaluate import EvalConfig
from videollm.features.extract import ExtractConfig
from videollm.steps import run_convert, run_evaluate, run_extract, run_train
from videollm.tracking import select_champion, tracking_uri
from videollm.train.recipe import load_train_config
from videollm.video.paths import video_id

logger = logging.getLogger(__name__)

COLOUR_QUESTION = "What colour is the video?"


def write_colour_annotations(videos: list[SyntheticVideo], root: Path, path: Path) -> Path:
    """Generic-JSONL annotations: one colour question per synthetic video."""
    lines = [
        json.dumps(
            {"video": video_id(v.path, root), "question": COLOUR_QUESTION, "answer": v.colour}
        )
        for v in videos
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def run_demo(
    out: str | Path, n_per_class: int = 8, overrides: list[str] | None = None
) -> dict[str, Any]:
    """Run every step into ``out`` and return a summary of paths and metrics.

    Args:
        out: Folder for models, videos, features, records, checkpoint and evaluation.
        n_per_class: Synthetic videos per colour.
        overrides: Extra ``key=value`` overrides for the ``demo`` training recipe.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    encoder = os.environ.get("VIDEOLLM_ENCODER") or str(build_tiny_clip(out / "models" / "clip"))
    llm = os.environ.get("VIDEOLLM_LLM") or str(build_tiny_llm(out / "models" / "llm"))
    real = "VIDEOLLM_ENCODER" in os.environ

    videos_dir = out / "videos"
    videos = make_synthetic_videos(videos_dir, n_per_class=n_per_class)
    annotations = write_colour_annotations(videos, videos_dir, out / "annotations.jsonl")

    features = out / "features"
    run_extract(
        str(videos_dir),
        str(features),
        ExtractConfig(encoder=encoder, num_frames=100 if real else 8),
    )

    records = out / "records"
    run_convert(
        ConvertConfig(format="jsonl", input=str(annotations), out=str(records), val_fraction=0.25)
    )

    ckpt = out / "checkpoint"
    flags = {
        "records": str(records),
        "features": str(features),
        "out": str(ckpt),
        "model": {"llm": llm},
    }
    result = run_train(load_train_config("demo", overrides or [], flags=flags))

    eval_dir = out / "eval"
    metrics = run_evaluate(
        EvalConfig(
            checkpoint=str(ckpt),
            records=str(records / "val.jsonl"),
            features=str(features),
            out=str(eval_dir),
        )
    )
    answer = chat(ckpt, videos[0].path, COLOUR_QUESTION)
    experiment = os.environ.get("MLFLOW_EXPERIMENT_NAME", "videollm")
    champion = select_champion(experiment, "val/exact_match", "max", "videollm")
    return {
        "models": {"encoder": encoder, "llm": llm},
        "videos": str(videos_dir),
        "features": str(features),
        "records": str(records),
        "checkpoint": str(ckpt),
        "train": {
            "steps": result.global_step,
            "first_loss": result.first_loss,
            "last_loss": result.last_loss,
        },
        "eval": {"dir": str(eval_dir), "metrics": metrics},
        "mlflow": tracking_uri(),
        "champion": f"models:/videollm@champion (version {champion.champion_version})",
        "serve": "videollm serve --model-uri models:/videollm@champion --port 3000",
        "ask": (
            f'curl -F "video=@{videos[0].path};type=video/mp4" '
            f'-F "question={COLOUR_QUESTION}" http://127.0.0.1:3000/chat'
        ),
        "chat": {
            "video": str(videos[0].path),
            "question": COLOUR_QUESTION,
            "answer": answer,
            "truth": videos[0].colour,
        },
    }
